import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openQueue } from "../../src/queue/queue.ts";
import { runtime } from "../../src/runtime/mod.ts";
import {
  decodeKeyPart,
  encodeEntry,
  encodeKeyPart,
  EXPORT_HEADER,
  ExportLineError,
  parseExportLine,
} from "../../src/store/export.ts";
import { CLI_TASKS, kvq, tempDir } from "./_helpers.ts";

const EXOTIC_KEYS: Deno.KvKey[] = [
  ["kvq", "odd", "bigint", 12345678901234567890n, -5n],
  ["kvq", "odd", "bytes", new Uint8Array([0, 1, 254, 255])],
  ["kvq", "odd", "numbers", 0, -0, 1.5, -1e300, NaN, Infinity, -Infinity],
  ["kvq", "odd", "bool", true, false],
  ["kvq", "odd", "unicode", "snow ☃ and \u0000 nul"],
];

/** A store with tasks in two queues, results, a failure, a schedule, a chunked payload and keys of every part type. */
async function fillStore(kv: string): Promise<void> {
  const big = "x".repeat(70_000); // chunked: more than one value can hold
  for (
    const argv of [
      ["enqueue", "add", "--args", "[1, 2]"],
      ["enqueue", "add", "--args", JSON.stringify([big, 1])],
      ["enqueue", "fail", "--max-attempts", "1"],
      ["enqueue", "add", "--queue", "mail", "--priority=-3"],
      ["enqueue", "add", "--delay", "3600000", "--group", "later"],
      ["schedule", "add", "nightly", "add", "--type", "daily", "--args", "[5, 6]"],
    ]
  ) {
    const r = await kvq([...argv, "--kv", kv]);
    assert.equal(r.code, 0, `${argv.join(" ")}: ${r.err}`);
  }
  assert.equal((await kvq(["work", "--tasks", CLI_TASKS, "--kv", kv, "--burst"])).code, 0);
  await using queue = await openQueue({ kv });
  const store = queue.store.kv;
  for (const key of EXOTIC_KEYS) await store.set(key, new Uint8Array([1, 2, 3]));
  await store.set(["kvq", "odd", "counter"], runtime.u64(18446744073709551615n));
  await store.set(["kvq", "odd", "empty"], new Uint8Array());
  // Enough bytes that an import needs several commits under the 800 KiB limit.
  for (let i = 0; i < 40; i++) {
    await store.set(["kvq", "bulk", "blob", i], new Uint8Array(60_000).fill(i));
  }
  await store.set(["outside"], new Uint8Array([9])); // not under ["kvq"]: not exported
}

test("kvq export → import into an empty store → export gives the same bytes", async () => {
  using dir = tempDir();
  await fillStore(dir.kv);
  const a = join(dir.path, "a.ndjson");
  const b = join(dir.path, "b.ndjson");
  const kv2 = join(dir.path, "restored.sqlite3");
  const ex = await kvq(["export", "--kv", dir.kv, "--out", a]);
  assert.equal(ex.code, 0, ex.err);
  assert.match(ex.err, /Exported \d+ keys/);
  const im = await kvq(["import", a, "--kv", kv2]);
  assert.equal(im.code, 0, im.err);
  assert.match(im.out, /Imported \d+ keys/);
  assert.equal((await kvq(["export", "--kv", kv2, "--out", b])).code, 0);
  const first = readFileSync(a);
  assert.ok(first.length > 2_400_000, `export is ${first.length} bytes`);
  assert.deepEqual(readFileSync(b), first);

  // To stdout: the same lines.
  const stdout = await kvq(["export", "--kv", kv2]);
  assert.equal(`${stdout.out}\n`, first.toString("utf8"));
  const lines = first.toString("utf8").trimEnd().split("\n");
  assert.equal(lines[0], EXPORT_HEADER);
  assert.ok(lines.every((l) => !l.includes('"outside"')));
  assert.ok(lines.some((l) => l.includes('{"bigint":"12345678901234567890"}')));
  assert.ok(lines.some((l) => l.includes('"u64":"18446744073709551615"')));

  // The restored store works: counts, results, a chunked payload, the schedule.
  await using queue = await openQueue({ kv: kv2 });
  const counts = await queue.counts();
  assert.equal(counts.succeeded, 2);
  assert.equal(counts.failed, 1);
  assert.equal(counts.scheduled, 1);
  const page = await queue.tasks({ state: "succeeded" });
  const bigTask = page.tasks.find((t) => t.argsChunks > 0);
  assert.ok(bigTask);
  const fetched = await queue.fetch(bigTask.id);
  assert.equal((fetched!.args![0] as string).length, 70_000);
  for (const key of EXOTIC_KEYS) {
    const value = (await queue.store.kv.get<Uint8Array>(key)).value;
    assert.deepEqual([...value!], [1, 2, 3]); // on Bun a Buffer, on Deno a Uint8Array
  }
  const info = JSON.parse((await kvq(["info", "--kv", kv2, "--json"])).out);
  assert.equal(info.queues.find((q: { name: string }) => q.name === "default").schedules, 1);
});

test("kvq import reports a malformed line by number and imports nothing", async () => {
  using dir = tempDir();
  await fillStore(dir.kv);
  const a = join(dir.path, "a.ndjson");
  await kvq(["export", "--kv", dir.kv, "--out", a]);
  const lines = readFileSync(a, "utf8").split("\n");
  lines[4] = lines[4]!.slice(0, 20); // line 5: cut short
  lines[7] = '{"key":["kvq","x"],"value":"not base64!"}'; // line 8
  const bad = join(dir.path, "bad.ndjson");
  writeFileSync(bad, lines.join("\n"));
  const kv2 = join(dir.path, "restored.sqlite3");

  const r = await kvq(["import", bad, "--kv", kv2]);
  assert.equal(r.code, 1);
  assert.match(r.err, /bad\.ndjson: Line 5: not JSON/);
  assert.match(r.err, /Line 8: value must be base64 text/);
  assert.match(r.err, /nothing was imported.*--continue/);
  assert.equal(existsSync(kv2), false, "the target store was not even created");

  const c = await kvq(["import", bad, "--kv", kv2, "--continue", "--json"]);
  assert.equal(c.code, 0, c.err);
  const report = JSON.parse(c.out);
  assert.deepEqual(report.skipped, [5, 8]);
  assert.equal(report.imported, lines.filter((l) => l.trim()).length - 3);

  // Into a store that holds kvq data: refused unless --force.
  const again = await kvq(["import", bad, "--kv", kv2, "--continue"]);
  assert.equal(again.code, 1);
  assert.match(again.err, /already holds kvq data.*--force/);
  assert.equal((await kvq(["import", bad, "--kv", kv2, "--continue", "--force"])).code, 0);

  // Not an export at all: refused, --continue or not.
  const notes = join(dir.path, "notes.txt");
  writeFileSync(notes, "hello\nworld\n");
  const n = await kvq(["import", notes, "--kv", join(dir.path, "x.sqlite3"), "--continue"]);
  assert.equal(n.code, 1);
  assert.match(n.err, /Line 1: not JSON/);
  assert.match(n.err, /not a file written by kvq export/);
  const missing = await kvq(["import", join(dir.path, "nope.ndjson"), "--kv", kv2]);
  assert.equal(missing.code, 4);
  assert.equal((await kvq(["import", "--kv", kv2])).code, 2);
  const empty = await kvq(["export", "--kv", join(dir.path, "none.sqlite3")]);
  assert.equal(empty.code, 2);
  assert.match(empty.err, /There is no KV store at/);
});

test("encodeKeyPart() and decodeKeyPart() keep every key part type", () => {
  for (const key of EXOTIC_KEYS) {
    const back = JSON.parse(JSON.stringify(key.map(encodeKeyPart))).map((p: unknown) =>
      decodeKeyPart(p, 2)
    );
    assert.deepEqual(back, key);
    back.forEach((p: unknown, i: number) =>
      assert.ok(Object.is(p, key[i]) || typeof p === "object")
    );
  }
  assert.throws(() => decodeKeyPart({ date: "2026" }, 9), ExportLineError);
  assert.throws(() => decodeKeyPart(null, 9), /Line 9: a key part must be/);
});

test("parseExportLine() checks the header, fields, limits and the kvq prefix", () => {
  assert.equal(parseExportLine(EXPORT_HEADER, 1), null);
  assert.throws(() => parseExportLine('{"kvq":"export","version":2}', 1), /version 2/);
  assert.throws(() => parseExportLine("", 1), /Line 1: not JSON/);
  assert.equal(parseExportLine("  ", 3), null);
  assert.deepEqual(parseExportLine('{"key":["kvq","a"],"u64":"7"}', 2), {
    key: ["kvq", "a"],
    value: 7n,
  });
  assert.throws(() => parseExportLine('{"key":["kvq","a"],"u64":"-1"}', 2), /u64 must be/);
  assert.throws(() => parseExportLine('{"key":["kvq"],"value":"","u64":"1"}', 2), /exactly one/);
  assert.throws(() => parseExportLine('{"key":["app"],"value":""}', 2), /not under \["kvq"\]/);
  assert.throws(() => parseExportLine('{"key":["kvq"],"value":"","ttl":1}', 2), /unknown field/);
  const huge = Buffer.alloc(70_000).toString("base64");
  assert.throws(() => parseExportLine(`{"key":["kvq"],"value":"${huge}"}`, 2), /larger than/);
  assert.throws(() => encodeEntry(["kvq", "x"], "text"), /not bytes or a KvU64/);
});
