import { test } from "node:test";
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
