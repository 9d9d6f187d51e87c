import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { openQueue } from "../../src/queue/queue.ts";
import { killAll, type Kvq, linesReached, startCluster, tempDir } from "./_process.ts";

test("Cluster never holds a short task behind a long one while another cluster is idle", async () => {
  using dir = tempDir();
  const log = join(dir.path, "long.log");
  await using queue = await openQueue({ kv: dir.kv });
  const started: Kvq[] = [];
  try {
    const first = await startCluster(dir.kv, ["--workers", "1", "--no-sentinel"]);
    started.push(first);
    // Short tasks teach the cluster that tasks are short, so it claims the rest ahead: the
    // last add is held (or sent to the worker early) behind the long task.
    const warm = await queue.enqueue("add", 0, 0);
    await queue.result(warm.id, { wait: 20_000 });
    const [, , , long, last] = await queue.enqueueMany([
      { func: "add", args: [1, 1] },
      { func: "add", args: [2, 2] },
      { func: "add", args: [3, 3] },
      { func: "record", args: [log, 60_000] },
      { func: "add", args: [4, 1] },
    ]);
    await linesReached(log, 1, 20_000);
    // An idle cluster joins: the short task must reach it instead of waiting a minute.
    const second = await startCluster(dir.kv, ["--workers", "1", "--no-sentinel"]);
    started.push(second);
    const t0 = performance.now();
    assert.equal(await queue.result(last!.id, { wait: 15_000 }), 5);
    const waited = performance.now() - t0;
    assert.equal((await queue.fetch(long!.id))?.state, "running");
    assert.ok(waited < 15_000, `the short task waited ${waited.toFixed(0)} ms`);
  } finally {
    killAll(started);
  }
});
