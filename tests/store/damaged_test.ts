import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { runInline } from "../../src/cluster/inline.ts";
import { listDamaged } from "../../src/store/damaged.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { kvq, tempDir } from "../cli/_helpers.ts";
import { withDashboard } from "../web/_helpers.ts";

const add = (a: number, b: number) => a + b;

test("a task record that can't be decoded is set aside once; everything else runs, and every tool copes", async () => {
  await withDashboard({}, async ({ queue, client, dir }) => {
    const kv = ["--kv", join(dir, "kv.sqlite3")];
    const tasks = await queue.enqueueMany(
      Array.from({ length: 5 }, (_, i) => ({ func: "add", args: [i, 1] })),
    );
    const bad = tasks[2]!.id;
    // Another program overwrites one record with garbage.
    await queue.store.kv.set(queue.store.keys.task(bad), new Uint8Array(randomBytes(150)));
    const report = await runInline(queue.store, {
      tasks: new Map([["add", add]]),
      burst: true,
      onCorrupt: () => {},
    });
    assert.equal(report.succeeded, 4, "the other tasks ran, and the run ended");
    const damaged = await listDamaged(queue.store);
    assert.deepEqual(damaged.map((d) => [d.id, d.bytes]), [[bad, 150]]);
    assert.match(damaged[0]!.reason, /not UTF-8 JSON/);

    const list = await kvq(["tasks", ...kv]);
    assert.equal(list.code, 0, list.err);
    assert.equal(list.out.trim().split("\n").length, 4);
    assert.match(list.err, new RegExp(`${bad}.*not a valid kvq record`));
    const one = await kvq(["task", bad, ...kv]);
    assert.equal(one.code, 1);
    assert.match(one.err, /150 bytes stored, starting [0-9a-f]{64}/);
    const info = await kvq(["info", ...kv]);
    assert.match(info.out, /damaged {4}1 record\(s\) set aside; 'kvq doctor' lists them/);
    const metrics = await client.page("/metrics");
    assert.match(metrics.body, /^kvq_damaged_records\{queue="default"\} 1$/m);
    for (const path of ["/", "/tasks", "/queues"]) {
      assert.equal((await client.page(path)).status, 200, path);
    }
    const out = join(dir, "backup.ndjson");
    assert.equal((await kvq(["export", "--out", out, ...kv])).code, 0);
    assert.match(readFileSync(out, "utf8"), new RegExp(`"task","${bad}"`), "export keeps it raw");
    const doctor = await kvq(["doctor", ...kv]);
    assert.equal(doctor.code, 1);
    assert.match(doctor.out, new RegExp(`${bad} {2}set aside`));

    const deleted = await kvq(["delete", bad, ...kv]);
    assert.equal(deleted.code, 0, deleted.err);
    assert.equal((await kvq(["doctor", ...kv])).code, 0);
    assert.equal(await queue.fetch(bad).catch(() => "gone"), null);
  });
});

test("kvq doctor --scan finds a damaged record no claim meets (a finished one) and --delete removes it", async () => {
  await withDashboard({}, async ({ queue, dir }) => {
    const kv = ["--kv", join(dir, "kv.sqlite3")];
    const { id } = await queue.enqueue("add", 1, 2);
    await runInline(queue.store, {
      tasks: new Map([["add", add]]),
      burst: true,
      onCorrupt: () => {},
    });
    await queue.store.kv.set(queue.store.keys.task(id), new Uint8Array(randomBytes(64)));
    assert.equal((await kvq(["doctor", ...kv])).code, 0, "no claim met it");
    const scan = await kvq(["doctor", "--scan", ...kv]);
    assert.equal(scan.code, 1);
    assert.match(scan.out, /1 damaged record\(s\) \(1 records read\)/);
    const fix = await kvq(["doctor", "--delete", ...kv]);
    assert.match(fix.out, /deleted 1/);
    assert.equal(fix.code, 0);
  });
});

test("a value the KV engine itself can't decode stalls nothing: claims, listings, doctor, delete and export go on", async () => {
  using dir = tempDir();
  const kv = ["--kv", dir.kv];
  let bad: string;
  {
    await using queue = await openQueue({ kv: dir.kv });
    const tasks = await queue.enqueueMany(
      Array.from({ length: 5 }, (_, i) => ({ func: "add", args: [i, 1] })),
    );
    bad = tasks[1]!.id;
    // Its ready entry as an older release wrote it, with no copy of the record: the claim
    // reads the record. (With a copy, a record damaged in place, its versionstamp kept, runs
    // from the copy.)
    await queue.store.kv.set(queue.store.keys.ready(0, bad), new Uint8Array());
  }
  const before = join(dir.path, "before.ndjson");
  assert.equal((await kvq(["export", "--out", before, ...kv])).code, 0);
  // As another program would: the row becomes a V8 value that isn't one. (The KV handle of this
  // process is closed first: closing a second descriptor of the file would drop its locks.)
  const { DatabaseSync } = await import("node:sqlite");
  const db = new DatabaseSync(dir.kv);
  const hex = (s: string) => Buffer.from(s).toString("hex").toUpperCase();
  const changed = db.prepare(
    "update kv set v = randomblob(150), v_encoding = 1 where hex(k) like ?",
  ).run(`%${hex("task")}0002${hex(bad)}%`);
  db.close();
  assert.equal(changed.changes, 1);

  // The export goes past it and keeps its bytes as stored; every other line is as before.
  const exported = join(dir.path, "a.ndjson");
  const exporting = await kvq(["export", "--out", exported, ...kv]);
  assert.equal(exporting.code, 0, exporting.err);
  assert.match(exporting.err, new RegExp(`kept 1 value raw.*"task","${bad}"`));
  const lines = (file: string) => readFileSync(file, "utf8").trim().split("\n");
  const isBad = (line: string) => line.includes(`"task","${bad}"]`);
  const raw = lines(exported).filter(isBad);
  assert.equal(raw.length, 1);
  assert.match(raw[0]!, /"raw":"[A-Za-z0-9+/=]{200}","encoding":1\}$/);
  assert.deepEqual(
    lines(exported).filter((l) => !isBad(l)),
    lines(before).filter((l) => !isBad(l)),
  );
  const restored = await kvq(["import", exported, "--kv", join(dir.path, "restored.sqlite3")]);
  assert.equal(restored.code, 0, restored.err);
  assert.match(restored.err, new RegExp(`left out 1 value that the export kept raw.*${bad}`));
  assert.match(restored.out, new RegExp(`Imported ${lines(before).length - 2} keys`));

  await using queue = await openQueue({ kv: dir.kv });
  const report = await runInline(queue.store, {
    tasks: new Map([["add", add]]),
    burst: true,
    onCorrupt: () => {},
  });
  assert.equal(report.succeeded, 4, "the others ran and the run ended");
  assert.deepEqual((await listDamaged(queue.store)).map((d) => d.id), [bad]);
  const list = await kvq(["tasks", ...kv]);
  assert.equal(list.code, 0, list.err);
  assert.equal(list.out.trim().split("\n").length, 4);
  assert.match((await kvq(["task", bad, ...kv])).err, /KV can't decode the stored value/);
  const scan = await kvq(["doctor", "--scan", ...kv]);
  assert.match(scan.out, /1 damaged record\(s\) \(5 records read\)/);
  assert.equal((await kvq(["delete", bad, ...kv])).code, 0);
  assert.equal((await kvq(["export", "--out", join(dir.path, "b.ndjson"), ...kv])).code, 0);
});
