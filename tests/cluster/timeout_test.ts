import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { openQueue } from "../../src/queue/queue.ts";
import { runtime } from "../../src/runtime/mod.ts";
import { readClusters } from "../../src/web/data.ts";
import {
  descendants,
  killAll,
  type Kvq,
  startCluster,
  tempDir,
  treeCpuPercent,
} from "./_process.ts";
import { report } from "../_report.ts";

test(
  "kvq cluster --timeout fails a CPU-bound and a never-settling task with TaskTimeoutError, then serves others with its CPU back at idle",
  { skip: !existsSync("/proc/self/task") && "needs Linux /proc" },
  async () => {
    using dir = tempDir();
    const queue = await openQueue({ kv: dir.kv });
    const started: Kvq[] = [];
    try {
      const cluster = await startCluster(dir.kv, [
        "--workers",
        "2",
        "--timeout",
        "500",
        "--max-attempts",
        "1",
      ]);
      started.push(cluster);
      const t0 = performance.now();
      const [spin, hang] = await queue.enqueueMany([{ func: "spin" }, { func: "hang" }]);
      for (const task of [spin!, hang!]) {
        const record = await queue.wait(task.id, { wait: 15_000 });
        const elapsed = performance.now() - t0;
        assert.equal(record.state, "failed", `${record.func}: ${record.state}`);
        assert.equal(record.error?.name, "TaskTimeoutError", JSON.stringify(record.error));
        // timeout 500 ms, abort grace 1000 ms, then terminate: a few seconds at most.
        assert.ok(elapsed < 500 + 4000, `${record.func} failed after ${elapsed} ms`);
      }
      if (!runtime.terminateStopsCpu) {
        // Deno: the spinning thread outlives terminate(); the host hands back its work and exits
        // to be recycled, and the sentinel starts a fresh one.
        await cluster.line(/keeps burning CPU after terminate/);
        await cluster.line(/sentinel: recycling the cluster host/);
      }
      const { id } = await queue.enqueue("add", 20, 22);
      assert.equal(await queue.result(id, { wait: 20_000 }), 42);
      if (!runtime.terminateStopsCpu) {
        // The fresh host counts the recycle: kvq info shows the service's reincarnations.
        const beats = await readClusters([queue.store]);
        const newest = beats.sort((a, b) => b.stat.startedAt - a.stat.startedAt)[0]!;
        assert.ok(newest.stat.reincarnations >= 1, JSON.stringify(newest.stat.reincarnations));
      }
      const cpu = await treeCpuPercent(cluster.pid, 2000);
      const tree = [cluster.pid, ...descendants(cluster.pid)];
      report(`idle CPU of the cluster tree (${tree.join(", ")}): ${cpu.toFixed(1)}%`);
      assert.ok(cpu < 20, `the cluster's process tree used ${cpu.toFixed(1)}% of a core`);
      const exit = await cluster.stop("SIGTERM");
      assert.equal(exit.code, 0, cluster.output());
    } finally {
      killAll(started);
      queue.close();
    }
  },
);
