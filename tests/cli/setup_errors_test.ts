import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openQueue } from "../../src/queue/queue.ts";
import { CLUSTER_TASKS, startKvq, tempDir } from "../cluster/_process.ts";

/** Runs `kvq cluster` (under its sentinel on Deno) and resolves with its exit, output and time. */
async function cluster(kv: string) {
  const t0 = performance.now();
  const kvq = startKvq(["cluster", "--kv", kv, "--tasks", CLUSTER_TASKS, "--workers", "1"]);
  const exit = await kvq.exited;
  return { exit, output: kvq.output(), ms: performance.now() - t0 };
}

test("kvq cluster exits 2 at once, without restarts, for a KV path that is a folder or a damaged file", async () => {
  using dir = tempDir();
  const folder = join(dir.path, "folder.sqlite3");
  mkdirSync(folder);
  const a = await cluster(folder);
  assert.deepEqual(a.exit, { code: 2, signal: null }, a.output);
  assert.match(a.output, /it is a folder/);
  assert.doesNotMatch(a.output, /restarting/);
  assert.ok(a.ms < 10_000, `${a.ms} ms`);

  // A store of a few hundred KiB, cut in half.
  const whole = join(dir.path, "whole.sqlite3");
  {
    await using queue = await openQueue({ kv: whole });
    await queue.enqueueMany(
      Array.from({ length: 300 }, (_, i) => ({ func: "add", args: [i, "x".repeat(500)] })),
    );
  }
  const bytes = readFileSync(whole);
  const half = join(dir.path, "half.sqlite3");
  writeFileSync(half, bytes.subarray(0, Math.floor(bytes.length / 2)));
  const b = await cluster(half);
  assert.deepEqual(b.exit, { code: 2, signal: null }, b.output);
  assert.match(b.output, /the file is damaged/);
  assert.doesNotMatch(b.output, /writable|restarting/);
  assert.equal(readFileSync(half).length, Math.floor(bytes.length / 2), "left as it is");
});
