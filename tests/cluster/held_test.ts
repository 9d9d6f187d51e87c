import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { Cluster } from "../../src/cluster/cluster.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { CLUSTER_TASKS, tempDir } from "./_process.ts";

test("Cluster arms short held tasks in their claims, not in writes of the started list that keep them waiting", async () => {
  using dir = tempDir();
  const queue = await openQueue({ kv: dir.kv });
  // The cluster borrows the queue's handle: count the commits that write its started list.
  const kv = queue.store.handle.kv;
  const atomic = kv.atomic.bind(kv);
  let startedWrites = 0;
  kv.atomic = () => {
    const op = atomic();
    const set = op.set.bind(op);
    op.set = (key, value, options) => {
      if (key[2] === "started") startedWrites++;
      return set(key, value, options);
    };
    return op;
  };
  const cluster = new Cluster({
    kv: queue.store.handle,
    tasks: [CLUSTER_TASKS],
    workers: 2,
    heartbeat: 200,
    burst: true,
  });
  try {
    const n = 3000;
    await queue.enqueueMany(Array.from({ length: n }, (_, i) => ({ func: "add", args: [i, 1] })));
    let finished = 0;
    cluster.on("task:finish", () => finished++);
    const idle = new Promise<void>((resolve) => cluster.on("cluster:idle", () => resolve()));
    await cluster.start();
    await idle;
    assert.equal(finished, n);
    assert.equal((await queue.counts()).succeeded, n);
    // Until the first tasks end, their duration is unknown (and the first ones are slow while
    // the workers warm up), so a claim arms only what the workers take at once: a few writes
    // (5 to 22 seen, more on a busy machine, where durations vary). After that, a claim arms
    // all it holds (at most the prefetch, about 1 ms of these tasks). Before, the list was
    // written once for every claim or so: 51 to 57 times.
    assert.ok(startedWrites <= 30, `the started list was written ${startedWrites} times`);
  } finally {
    await cluster.stop({ grace: 0 });
    queue.close();
  }
});
