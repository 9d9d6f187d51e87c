import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { openQueue } from "../../src/queue/queue.ts";
import { kvq, tempDir } from "./_helpers.ts";

test("main() refuses a KV file that does not exist for commands that only read, and creates nothing", async () => {
  using dir = tempDir();
  const kv = join(dir.path, "missing", "kv.sqlite3");
  const reads = [
    ["info"],
    ["tasks"],
    ["task", "some-name"],
    ["result", "some-name"],
    ["monitor", "--once"],
    ["memory"],
    ["export"],
    ["schedule", "list"],
    ["schedule", "show", "nightly"],
    ["dashboard", "--listen", "127.0.0.1:0"],
  ];
  for (const argv of reads) {
    const r = await kvq([...argv, "--kv", kv]);
    assert.equal(r.code, 2, `${argv.join(" ")}: ${r.err}`);
    assert.match(
      r.err,
      new RegExp(`There is no KV store at ${kv.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`),
    );
    assert.match(r.err, /Check --kv/);
    assert.equal(
      existsSync(join(dir.path, "missing")),
      false,
      `${argv.join(" ")} created the folder`,
    );
  }
});

test("main() lets the commands that write create the KV file", async () => {
  using dir = tempDir();
  const kv = join(dir.path, "new", "kv.sqlite3");
  const r = await kvq(["enqueue", "add", "--args", "[1, 2]", "--kv", kv]);
  assert.equal(r.code, 0, r.err);
  assert.ok(existsSync(kv));
  const info = await kvq(["info", "--kv", kv]);
  assert.equal(info.code, 0, info.err);
  await using queue = await openQueue({ kv });
  assert.equal((await queue.counts()).queued, 1);
});

test("main() exit codes follow the README: 2 for a bad value, 4 for what does not exist", async () => {
  using dir = tempDir();
  const kv = ["--kv", dir.kv];
  assert.equal((await kvq(["enqueue", "add", "--args", "[1, 2]", ...kv])).code, 0);
  const cases: [string[], number, RegExp][] = [
    [["schedule", "add", "n", "add", "--type", "cron", "--cron", "bad cron"], 2, /cron/],
    [
      ["schedule", "add", "n", "add", "--cron", "0 * * * *", "--tz", "Mars/Olympus"],
      2,
      /time zone/,
    ],
    [["enqueue", "add", "--eta", "not a date"], 2, /eta/],
    [["schedule", "rm", "nosuch"], 4, /No schedule "nosuch"/],
    [["schedule", "show", "nosuch"], 4, /No schedule "nosuch"/],
    [["result", "no-such-name"], 4, /No task can be called "no-such-name"/],
    [["task", "no-such-name"], 4, /No task can be called/],
    [["cancel", "no-such-name"], 4, /No task can be called/],
    [["result", "01a230ea-d3b6-7562-bc33-ceba20926712"], 4, /No task "01a230ea/],
  ];
  for (const [argv, code, message] of cases) {
    const r = await kvq([...argv, ...kv]);
    assert.equal(r.code, code, `${argv.join(" ")}: ${r.err}`);
    assert.match(r.err, message, argv.join(" "));
  }
});

test("main() accepts negative numbers after a flag without '='", async () => {
  using dir = tempDir();
  const r = await kvq([
    "enqueue",
    "add",
    "--priority",
    "-1",
    "--args",
    "[1, 2]",
    "--kv",
    dir.kv,
    "--json",
  ]);
  assert.equal(r.code, 0, r.err);
  await using queue = await openQueue({ kv: dir.kv });
  assert.equal((await queue.fetch(JSON.parse(r.out).id))?.priority, -1);
  const limit = await kvq(["tasks", "--limit", "-5", "--kv", dir.kv]);
  assert.equal(limit.code, 2);
  assert.match(limit.err, /--limit must be a whole number \(at least 1\): received "-5"/);
  // A flag whose value is missing is still reported as such.
  const missing = await kvq(["enqueue", "add", "--priority", "--kv", dir.kv]);
  assert.equal(missing.code, 2);
});

test("kvq enqueue --args must be a JSON array: anything else exits 2 naming the flag and stores nothing", async () => {
  using dir = tempDir();
  for (const bad of ["5", '{"a":1}', '"text"', "null", "[1,"]) {
    const r = await kvq(["enqueue", "add", "--args", bad, "--kv", dir.kv]);
    assert.equal(r.code, 2, bad);
    assert.match(r.err, /--args must be a JSON array of the arguments/, bad);
  }
  const ok = await kvq(["enqueue", "add", "--args", "[5]", "--kv", dir.kv]);
  assert.equal(ok.code, 0, ok.err);
  await using queue = await openQueue({ kv: dir.kv });
  assert.equal((await queue.counts()).queued, 1);
});

test("kvq result of a chain or iter id points at --chain or --iter; enqueue --wait says how to wait longer", async () => {
  using dir = tempDir();
  const kv = ["--kv", dir.kv];
  const iter = await kvq(["iter", "add", "--args-list", "[[1, 2], [3, 4]]", ...kv]);
  assert.equal(iter.code, 0, iter.err);
  const r = await kvq(["result", iter.out.trim(), ...kv]);
  assert.equal(r.code, 4);
  assert.match(r.err, new RegExp(`It is an iter: kvq result --iter ${iter.out.trim()}`));
  const chain = await kvq(["chain", "--step", "add [1, 2]", ...kv]);
  const c = await kvq(["result", chain.out.trim(), ...kv]);
  assert.equal(c.code, 4);
  assert.match(c.err, /It is a chain: kvq result --chain/);
  // No cluster runs: the wait runs out.
  const waited = await kvq(["enqueue", "add", "--args", "[1, 2]", "--wait", "50", ...kv]);
  assert.equal(waited.code, 3);
  assert.match(
    waited.err,
    /^Task \S+ is still queued after waiting 50 ms\. Wait longer with: kvq result \S+ --wait MS$/,
  );
});
