import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { Cluster } from "../../src/cluster/cluster.ts";
import { openQueue, type Queue } from "../../src/queue/queue.ts";
import { readClusters } from "../../src/web/data.ts";
import {
  CLUSTER_TASKS,
  killAll,
  type Kvq,
  linesReached,
  readRuns,
  startCluster,
  tempDir,
} from "./_process.ts";
import { report } from "../_report.ts";

test("kvq cluster paused past its lease drops its late outcome and says so; it does not count it succeeded", async () => {
  using dir = tempDir();
  const log = join(dir.path, "runs.log");
  await using queue = await openQueue({ kv: dir.kv });
  const started: Kvq[] = [];
  const timing = ["--heartbeat", "200", "--lease-timeout", "1000", "--no-sentinel"];
  try {
    const first = await startCluster(dir.kv, ["--workers", "1", ...timing]);
    started.push(first);
    const { id } = await queue.enqueue({ func: "record", args: [log, 2500] });
    await linesReached(log, 1, 20_000);
    process.kill(first.pid, "SIGSTOP");
    // Another cluster sees the first one silent past its lease and runs the task again.
    const second = await startCluster(dir.kv, ["--workers", "1", ...timing]);
    started.push(second);
    await linesReached(log, 2, 20_000);
    process.kill(first.pid, "SIGCONT");
    const done = await queue.wait(id, { wait: 20_000 });
    assert.equal(done.state, "succeeded");
    assert.equal(
      done.cluster,
      await second.line(/^kvq: cluster \S+ /).then((l) => l.split(" ")[2]),
    );
    // A graceful stop lets the first cluster finish its copy and try to store it.
    const exit = await first.stop("SIGTERM");
    assert.equal(exit.code, 0, first.output());
    const stop = await first.line(/stopped:/);
    assert.match(
      stop,
      /0 attempts run \(0 succeeded, 0 failed; 1 outcome dropped, its lease lost\)/,
    );
  } finally {
    killAll(started);
  }
});

test("a cluster SIGKILLed on this host has its tasks running elsewhere within a second, with the default timings", async () => {
  using dir = tempDir();
  const log = join(dir.path, "runs.log");
  await using queue = await openQueue({ kv: dir.kv });
  const started: Kvq[] = [];
  try {
    const first = await startCluster(dir.kv, ["--workers", "1", "--no-sentinel"]);
    started.push(first);
    const second = await startCluster(dir.kv, ["--workers", "1", "--no-sentinel"]);
    started.push(second);
    // Both busy, so the task that matters runs on the first.
    await queue.enqueueMany([{ func: "record", args: [log, 60_000] }]);
    await linesReached(log, 1, 20_000);
    const runs = readRuns(log);
    const [id] = [...runs.keys()];
    const owner = (await queue.fetch(id!))!.cluster;
    const victim = owner === (await clusterId(first)) ? first : second;
    const t0 = performance.now();
    process.kill(victim.pid, "SIGKILL");
    await linesReached(log, 2, 20_000);
    const ms = performance.now() - t0;
    report(`recovered and running again ${ms.toFixed(0)} ms after the SIGKILL`);
    assert.ok(ms < 1500, `the task ran again ${ms.toFixed(0)} ms after the kill`);
    // The survivor removed the dead one's heartbeat with its leases: info lists only the living.
    const beats = await readClusters([queue.store]);
    assert.ok(
      !beats.some((b) => b.stat.pid === victim.pid),
      "the dead cluster's heartbeat is gone",
    );
    // The killed one could not remove its socket; the next cluster to start does.
    const socket = join(dir.path, ".kv.sqlite3.kvq-signal", `peer-${victim.pid}.sock`);
    assert.ok(existsSync(socket));
    started.push(await startCluster(dir.kv, ["--workers", "1", "--no-sentinel"]));
    assert.equal(existsSync(socket), false, "the dead cluster's socket is pruned");
  } finally {
    killAll(started);
  }
});

/** A one-worker cluster in this process, on the queue's own KV handle. */
function localCluster(queue: Queue): Cluster {
  return new Cluster({
    kv: queue.store.handle,
    tasks: [CLUSTER_TASKS],
    workers: 1,
    heartbeat: 200,
  });
}

async function clusterId(kvq: Kvq): Promise<string> {
  return (await kvq.line(/^kvq: cluster \S+ /)).split(" ")[2]!;
}

test("Cluster claims nothing from a queue paused in the commit that enqueued a task, though its last read found the queue open", async () => {
  using dir = tempDir();
  const queue = await openQueue({ kv: dir.kv });
  const cluster = localCluster(queue);
  let started = 0;
  cluster.on("task:start", () => started++);
  await cluster.start();
  try {
    // The pump has read the queue's pause keys and found it open.
    const first = await queue.enqueue("add", 1, 1);
    assert.equal((await queue.wait(first.id, { wait: 10_000 })).state, "succeeded");
    // One commit pauses the queue and enqueues a task, while the rounds that the first task's
    // outcome woke may still be under way: one that read the pause keys before this commit and
    // lists the ready tasks after it must not start the new one.
    const pause = { at: Date.now(), reason: "test", until: null };
    const atomic = queue.store.kv.atomic()
      .set(queue.store.keys.paused, new TextEncoder().encode(JSON.stringify(pause)));
    const [task] = queue.enqueueIn(atomic, [{ func: "add", args: [2, 2] }]);
    assert.ok((await atomic.commit()).ok);
    queue.notify();
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal((await queue.fetch(task!.id))!.state, "queued");
    assert.equal(started, 1, `started ${started}`);
    await queue.resume();
    assert.equal((await queue.wait(task!.id, { wait: 10_000 })).state, "succeeded");
  } finally {
    await cluster.stop();
    queue.close();
  }
});

test("Cluster starts none of the tasks it holds of a queue once it is paused, and gives them back unused", async () => {
  using dir = tempDir();
  const log = join(dir.path, "runs.log");
  const queue = await openQueue({ kv: dir.kv });
  const cluster = localCluster(queue);
  await cluster.start();
  try {
    // 10 ms tasks: the cluster holds a few claimed ahead of its one place.
    await queue.enqueueMany(
      Array.from({ length: 100 }, () => ({ func: "record", args: [log, 10] })),
    );
    const starts = () => [...readRuns(log).values()].flat().length;
    await linesReached(log, 5, 20_000);
    await queue.pause("deploy");
    // What started before the pause returned (and one that a worker may have been starting).
    const atPause = starts() + 1;
    await new Promise((resolve) => setTimeout(resolve, 500));
    const after = starts();
    assert.ok(after <= atPause, `${after - atPause + 1} tasks started after the pause`);
    // The held ones went back to ready without using an attempt.
    const counts = await queue.counts();
    assert.equal(counts.running, 0);
    assert.equal(counts.queued + counts.succeeded, 100);
    await queue.resume();
    for (let i = 0; i < 200 && (await queue.counts()).succeeded < 100; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal((await queue.counts()).succeeded, 100);
    assert.ok([...readRuns(log).values()].every((a) => a.length === 1 && a[0] === 1));
  } finally {
    await cluster.stop();
    queue.close();
  }
});
