/**
 * Leases don't depend on clocks agreeing: a cluster whose clock is ten minutes fast sees another
 * cluster's heartbeat change (versionstamps, judged on its own monotonic clock) and leaves its
 * running task alone.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { Cluster } from "../../src/cluster/cluster.ts";
import { openQueue } from "../../src/queue/queue.ts";

const tasks = new URL("../../examples/tasks.ts", import.meta.url).pathname;

test("Cluster with a clock ten minutes fast does not steal a live cluster's lease", async () => {
  const dir = mkdtempSync(join(tmpdir(), "kvq-skew-"));
  const kv = join(dir, "kv.sqlite3");
  const honest = new Cluster({
    kv,
    tasks: [tasks],
    workers: 1,
    heartbeat: 200,
    leaseTimeout: 1000,
  });
  const skewed = new Cluster({
    kv,
    tasks: [tasks],
    workers: 1,
    heartbeat: 200,
    leaseTimeout: 1000,
    clock: () => Date.now() + 10 * 60_000,
  });
  let recovered = 0;
  skewed.on("cluster:recovered", (e) => recovered += e.tasks);
  await using queue = await openQueue({ kv });
  try {
    await honest.start();
    const started = honest.once("task:start");
    const { id } = await queue.enqueue("sleep", 2500);
    await started;
    await skewed.start();
    // Many lease timeouts and heartbeats of the skewed cluster pass while the task runs.
    const record = await queue.wait(id, { wait: 10_000 });
    assert.equal(record.state, "succeeded");
    assert.equal(record.attempt, 1, "the task ran once, on the cluster that claimed it");
    assert.equal(record.cluster, honest.id);
    assert.equal(recovered, 0, "the skewed cluster requeued nothing");
  } finally {
    await skewed.stop();
    await honest.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
