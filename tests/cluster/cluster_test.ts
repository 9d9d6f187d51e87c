import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { Cluster } from "../../src/cluster/cluster.ts";
import type { ClusterEventMap } from "../../src/cluster/events.ts";
import { openQueue, type Queue } from "../../src/queue/queue.ts";
import { listClaims } from "../../src/store/leases.ts";
import { CLUSTER_TASKS, tempDir } from "./_process.ts";

type Spawn = ClusterEventMap["worker:spawn"];

/** Runs `fn` with a started two-worker cluster and a queue on a fresh KV file. */
async function withCluster(
  fn: (cluster: Cluster, queue: Queue, spawns: Spawn[]) => Promise<void>,
): Promise<void> {
  using dir = tempDir();
  const queue = await openQueue({ kv: dir.kv });
  const cluster = new Cluster({ kv: dir.kv, tasks: [CLUSTER_TASKS], workers: 2, heartbeat: 200 });
  const spawns: Spawn[] = [];
  cluster.on("worker:spawn", (e) => spawns.push(e));
  try {
    await cluster.start();
    await fn(cluster, queue, spawns);
  } finally {
    await cluster.stop({ grace: 0 });
    queue.close();
  }
}

test("Cluster runs tasks in its workers, stores their results and emits task and worker events", async () => {
  await withCluster(async (cluster, queue, spawns) => {
    assert.deepEqual(
      spawns.map((s) => [s.worker, s.slot, s.generation]).sort(),
      [["kvq-w1.g1", 1, 1], ["kvq-w2.g1", 2, 1]],
    );
    const started = new Set<string>();
    const finished = new Map<string, string>();
    cluster.on("task:start", (e) => started.add(e.record.id));
    const allFinished = new Promise<void>((resolve) => {
      const off = cluster.on("task:finish", (e) => {
        finished.set(e.id, e.kind);
        if (finished.size < 20) return;
        off();
        resolve();
      });
    });
    const tasks = await queue.enqueueMany(
      Array.from({ length: 20 }, (_, i) => ({ func: "add", args: [i, 1] })),
    );
    for (const [i, t] of tasks.entries()) {
      assert.equal(await queue.result(t.id, { wait: 10_000 }), i + 1);
    }
    // task:finish follows the commit of its batch, so wait() may see a result a little earlier.
    await allFinished;
    for (const t of tasks) {
      assert.ok(started.has(t.id), `task:start for ${t.id}`);
      assert.equal(finished.get(t.id), "success", t.id);
    }
    const records = await Promise.all(tasks.map((t) => queue.fetch(t.id)));
    const workers = new Set(records.map((r) => r!.worker));
    assert.ok([...workers].every((w) => /^kvq-w[12]\.g1$/.test(w!)), [...workers].join());
    assert.equal((await queue.counts()).succeeded, 20);
  });
});

test("Cluster fails the attempt of a task that throws, closes or crashes its worker, and respawns the worker", async () => {
  await withCluster(async (cluster, queue, spawns) => {
    const exits: ClusterEventMap["worker:exit"][] = [];
    cluster.on("worker:exit", (e) => exits.push(e));
    const respawned = (n: number) =>
      new Promise<void>((resolve) => {
        const check = () => spawns.filter((s) => s.generation > 1).length >= n;
        if (check()) return resolve();
        const off = cluster.on("worker:spawn", () => {
          if (!check()) return;
          off();
          resolve();
        });
      });
    const expected = {
      fail: "RangeError",
      closeSelf: "WorkerCrashError",
      asyncCrash: "WorkerCrashError",
    };
    for (const [func, errorName] of Object.entries(expected)) {
      const reborn = respawned(exits.length + (func === "fail" ? 0 : 1));
      const { id } = await queue.enqueue({ func, maxAttempts: 1 });
      const record = await queue.wait(id, { wait: 10_000 });
      assert.equal(record.state, "failed", `${func}: ${record.state}`);
      assert.equal(record.error?.name, errorName, `${func}: ${JSON.stringify(record.error)}`);
      assert.equal(record.attempt, 1);
      await reborn;
    }
    // Two workers died (closeSelf, asyncCrash); each came back as its slot's next generation.
    assert.equal(exits.length, 2, JSON.stringify(exits));
    const reborn = spawns.filter((s) => s.generation > 1);
    assert.equal(reborn.length, 2);
    for (const s of reborn) assert.equal(s.worker, `kvq-w${s.slot}.g${s.generation}`);
    assert.ok(reborn.some((s) => s.generation === 2));
    assert.deepEqual(exits.map((e) => e.inFlight.length), [1, 1]);
    assert.equal(cluster.stats().reincarnations, 2);
    // The cluster goes on serving, on both slots.
    const more = await queue.enqueueMany(
      Array.from({ length: 6 }, (_, i) => ({ func: "add", args: [i, i] })),
    );
    for (const [i, t] of more.entries()) {
      assert.equal(await queue.result(t.id, { wait: 10_000 }), 2 * i);
    }
    assert.equal(cluster.stats().workers.length, 2);
  });
});

test("Cluster times out a task that never settles and ignores its signal, then serves others", async () => {
  await withCluster(async (cluster, queue) => {
    const { id } = await queue.enqueue({ func: "hang", timeout: 500, maxAttempts: 1 });
    const exited = cluster.once("worker:exit", (e) => e.inFlight.includes(id));
    const t0 = performance.now();
    const record = await queue.wait(id, { wait: 10_000 });
    const elapsed = performance.now() - t0;
    assert.equal(record.state, "failed");
    assert.equal(record.error?.name, "TaskTimeoutError", JSON.stringify(record.error));
    // timeout 500 ms + abort grace 1000 ms, then terminate; a few seconds at most.
    assert.ok(elapsed >= 500 && elapsed < 500 + 4000, `failed after ${elapsed} ms`);
    const exit = await exited;
    assert.equal(exit.reason, "terminated");
    const { id: next } = await queue.enqueue("add", 2, 3);
    assert.equal(await queue.result(next, { wait: 10_000 }), 5);
  });
});

test("Cluster claims by priority, lowest first and FIFO within one, and burst mode stops when idle", async () => {
  using dir = tempDir();
  const queue = await openQueue({ kv: dir.kv });
  try {
    const priorities = [5, -1, 3, 0, -1, 10, 2, 0, 3, -5];
    const tasks = [];
    for (const [i, priority] of priorities.entries()) {
      tasks.push(await queue.enqueue({ func: "add", args: [i, 0], priority }));
    }
    const cluster = new Cluster({
      kv: dir.kv,
      tasks: [CLUSTER_TASKS],
      workers: 1,
      heartbeat: 200,
      burst: true,
    });
    const order: string[] = [];
    cluster.on("task:start", (e) => order.push(e.record.id));
    const idle = cluster.once("cluster:idle");
    await cluster.start();
    await cluster.stopped;
    await idle;
    assert.equal(cluster.state, "stopped");
    const want = tasks
      .map((t, i) => ({ id: t.id, priority: priorities[i]!, i }))
      .sort((a, b) => a.priority - b.priority || a.i - b.i)
      .map((t) => t.id);
    assert.deepEqual(order, want);
    const counts = await queue.counts();
    assert.equal(counts.succeeded, priorities.length);
    assert.equal(counts.running + counts.queued, 0);
  } finally {
    queue.close();
  }
});

test("Cluster prefetches short tasks, and a graceful stop hands the held ones back uncounted", async () => {
  using dir = tempDir();
  const queue = await openQueue({ kv: dir.kv });
  const cluster = new Cluster({ kv: dir.kv, tasks: [CLUSTER_TASKS], workers: 1, heartbeat: 200 });
  try {
    const tasks = await queue.enqueueMany(
      Array.from({ length: 2000 }, (_, i) => ({ func: "add", args: [i, 1] })),
    );
    let finished = 0;
    const enough = new Promise<void>((resolve) => {
      cluster.on("task:finish", () => {
        if (++finished === 300) resolve();
      });
    });
    // Short tasks: the one worker's next tasks are claimed ahead of it, as held. Look at the
    // claim entries as tasks start (one look at a time) until two held ones show.
    let looking = false;
    const held = new Promise<number>((resolve) => {
      const off = cluster.on("task:start", async () => {
        if (looking) return;
        looking = true;
        let n = 0;
        for (const c of await listClaims(queue.store)) n += c.value?.held.length ?? 0;
        looking = false;
        if (n > 1) {
          off();
          resolve(n);
        }
      });
    });
    await cluster.start();
    const heldSeen = await held;
    await enough;
    await cluster.stop();
    assert.ok(heldSeen > 1, `${heldSeen} held leases seen while busy`);
    const counts = await queue.counts();
    assert.equal(counts.running, 0, JSON.stringify(counts));
    assert.equal(counts.succeeded + counts.queued, 2000, JSON.stringify(counts));
    const records = await Promise.all(tasks.map((t) => queue.fetch(t.id)));
    for (const r of records) {
      if (r!.state === "queued") {
        assert.equal(r!.attempt, 0, `${r!.id} went back with its attempt counted`);
      } else assert.equal(r!.state, "succeeded", r!.id);
    }
    // Nothing of the stopped cluster is left behind.
    assert.equal(
      (await queue.store.kv.get(queue.store.keys.started(cluster.id))).versionstamp,
      null,
    );
  } finally {
    await cluster.stop({ grace: 0 });
    queue.close();
  }
});

test("Cluster with prefetch 0 holds no task ahead of its workers", async () => {
  using dir = tempDir();
  const queue = await openQueue({ kv: dir.kv });
  const cluster = new Cluster({
    kv: dir.kv,
    tasks: [CLUSTER_TASKS],
    workers: 1,
    prefetch: 0,
    heartbeat: 200,
  });
  try {
    await queue.enqueueMany(Array.from({ length: 500 }, (_, i) => ({ func: "add", args: [i, 1] })));
    let most = 0;
    cluster.on("task:start", () => {
      void queue.counts().then((c) => most = Math.max(most, c.running));
    });
    await cluster.start();
    await new Promise<void>((resolve) => {
      let n = 0;
      cluster.on("task:finish", () => {
        if (++n === 500) resolve();
      });
    });
    // One place, plus one task whose result is still being written.
    assert.ok(most <= 2, `${most} tasks running at once`);
    assert.throws(
      () => new Cluster({ tasks: [CLUSTER_TASKS], prefetch: 1001 }),
      /prefetch must be at most 1000/,
    );
  } finally {
    await cluster.stop({ grace: 0 });
    queue.close();
  }
});

test("Cluster never leaves a task waiting behind a long one while another worker is free", async () => {
  using dir = tempDir();
  const queue = await openQueue({ kv: dir.kv });
  const cluster = new Cluster({ kv: dir.kv, tasks: [CLUSTER_TASKS], workers: 2, heartbeat: 200 });
  try {
    await cluster.start();
    // Short tasks first, so the cluster learns they are short and sends them ahead.
    const warm = await queue.enqueueMany(
      Array.from({ length: 200 }, (_, i) => ({ func: "add", args: [i, 1] })),
    );
    await queue.wait(warm.at(-1)!.id, { wait: 10_000 });
    // Listening first: the task may start before enqueue() returns.
    const started = cluster.once("task:start", (e) => e.record.func === "hang");
    const long = await queue.enqueue({ func: "hang", maxAttempts: 1 });
    await started;
    const short = await queue.enqueueMany(
      Array.from({ length: 300 }, (_, i) => ({ func: "add", args: [i, 2] })),
    );
    for (const t of short) {
      const r = await queue.wait(t.id, { wait: 10_000 });
      assert.equal(r.state, "succeeded", `${t.id} is ${r.state}`);
    }
    assert.equal((await queue.fetch(long.id))!.state, "running");
  } finally {
    await cluster.stop({ grace: 0 });
    queue.close();
  }
});
