import { inPhase, test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { runInline } from "../../src/cluster/inline.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { KvHandle } from "../../src/store/store.ts";
import { tally, tempDir, tempQueue } from "../store/_helpers.ts";
import { drain, waitUntil, withCluster } from "./_helpers.ts";

test("Queue.prune() keeps the newest successes by count, all failures by default", async () => {
  await using t = await tempQueue({ keepSucceeded: { count: 3, minAge: 0 } });
  const { queue } = t;
  const ok = await queue.enqueueMany(
    Array.from({ length: 6 }, (_, i) => ({ func: "add", args: [i, 0] })),
  );
  await queue.enqueueMany(Array.from({ length: 4 }, () => ({ func: "fail", maxAttempts: 1 })));
  await drain(queue);
  assert.equal(await queue.prune(), 3);
  const counts = await queue.counts();
  assert.equal(counts.succeeded, 3);
  assert.equal(counts.failed, 4);
  assert.deepEqual(counts, await tally(queue));
  const left = (await queue.tasks({ state: "succeeded" })).tasks.map((r) => r.id).sort();
  assert.deepEqual(left, ok.slice(3).map((o) => o.id).sort(), "the newest are kept");
  assert.equal(await queue.prune(), 0);
});

test("Queue.prune() by ttl and per func, on a fake clock", async () => {
  let now = Date.parse("2026-01-01T00:00:00Z");
  await using t = await tempQueue({
    clock: () => now,
    keepSucceeded: { count: 2, minAge: 0 },
    keepFailed: { ttl: 60_000 },
    keepPer: "func",
  });
  const { queue } = t;
  await queue.enqueueMany([
    ...Array.from({ length: 4 }, (_, i) => ({ func: "add", args: [i, 0] })),
    ...Array.from({ length: 3 }, (_, i) => ({ func: "double", args: [i] })),
    { func: "fail", maxAttempts: 1 },
  ]);
  await drain(queue);
  now += 30_000;
  await queue.enqueue({ func: "fail", maxAttempts: 1 });
  await drain(queue);
  assert.equal(await queue.prune(), 3, "2 adds and 1 double over their per-func count");
  assert.equal((await queue.tasks({ func: "add" })).tasks.length, 2);
  assert.equal((await queue.tasks({ func: "double" })).tasks.length, 2);
  assert.equal((await queue.counts()).failed, 2);
  now += 45_000; // the first failure is 75 s old, the second 45 s
  assert.equal(await queue.prune(), 1);
  assert.equal((await queue.counts()).failed, 1);
  assert.deepEqual(await queue.counts(), await tally(queue));
});

test("the cluster heartbeat prunes finished tasks and never a running one", async () => {
  await withCluster(
    { workers: 2, heartbeat: 100, keepSucceeded: { count: 5, minAge: 0 } },
    async (cluster, queue) => {
      // Listening before the enqueue: its start cannot come first.
      const started = cluster.once("task:start", (e) => e.record.func === "waitForAbort");
      const running = await queue.enqueue({ func: "waitForAbort", maxAttempts: 1 });
      inPhase("the blocker's start");
      await started;
      inPhase("enqueue and prune");
      const g = await queue.enqueueMany(
        Array.from({ length: 30 }, (_, i) => ({ func: "add", args: [i, 0], group: "g" })),
      );
      // Done when only the blocker still runs (a prefetching cluster claims ahead, so "nothing
      // queued" alone does not mean every task of g ended).
      await waitUntil(queue, async () => {
        const counts = await queue.counts();
        return (await queue.countGroup("g")) <= 5 && counts.succeeded <= 5 &&
          counts.queued === 0 && counts.running === 1;
      }, "pruning");
      assert.equal((await queue.fetch(running.id))!.state, "running");
      const kept = await queue.fetchGroup("g");
      assert.ok(kept.every((r) => r.state === "succeeded"));
      assert.ok(kept.length <= 5 && g.length === 30);
      inPhase("cancel the blocker");
      await queue.cancel(running.id);
      await queue.wait(running.id, { wait: 10_000 });
    },
  );
});

test("cached: a finished task's record and index entries are written with expireIn", async () => {
  await using dir = tempDir();
  const path = `${dir.path}/kv.sqlite3`;
  const real = await KvHandle.open({ kv: path });
  // Record the options of every set in an atomic commit.
  const expiring: string[] = [];
  const kv = new Proxy(real.kv, {
    get(target, prop, receiver) {
      if (prop !== "atomic") {
        const v = Reflect.get(target, prop, receiver);
        return typeof v === "function" ? v.bind(target) : v;
      }
      return () => {
        const atomic = target.atomic();
        const set = atomic.set.bind(atomic);
        atomic.set = (key: Deno.KvKey, value: unknown, options?: { expireIn?: number }) => {
          if (options?.expireIn !== undefined) {
            expiring.push(`${key.slice(2, 3).join()}:${options.expireIn}`);
          }
          return set(key, value, options);
        };
        return atomic;
      };
    },
  });
  const handle = new KvHandle(kv, real.location);
  const queue = await openQueue({ kv: handle });
  try {
    const { id } = await queue.enqueue({ func: "add", args: [1, 2], cached: 5_000, group: "c" });
    assert.deepEqual(expiring, [], "nothing expires before it finishes");
    await drain(queue);
    assert.deepEqual(expiring.sort(), [
      "done:5000",
      "func:5000",
      "group:5000",
      "name:5000",
      "task:5000",
    ]);
    assert.equal(await queue.result(id), 3, "readable until it expires");
    assert.equal((await queue.counts()).succeeded, 0, "not counted once finished");
    await assert.rejects(queue.enqueue({ func: "add", cached: 0 }), /cached/);
  } finally {
    queue.close();
    real.close();
  }
});

test("Queue.prune() deletes tasks with groups, unique keys and long names within KV's commit limits", async () => {
  await using t = await tempQueue({ keepSucceeded: { count: 0, minAge: 0 }, keepPer: "group" });
  const { queue } = t;
  const func = `f${"x".repeat(60)}`;
  // The largest entries a task has: a 256-character group and unique key, a long func name.
  await queue.enqueueMany(
    Array.from({ length: 500 }, (_, i) => ({
      func,
      args: [i],
      group: `${"g".repeat(250)}${String(i % 3).padStart(6, "0")}`,
      unique: `${"u".repeat(250)}${String(i).padStart(6, "0")}`,
    })),
  );
  await runInline(queue.store, { tasks: new Map([[func, (i: number) => i]]), burst: true });
  assert.equal((await queue.counts()).succeeded, 500);
  let pruned = 0;
  for (let pass = 0; pass < 5 && pruned < 500; pass++) pruned += await queue.prune();
  assert.equal(pruned, 500);
  const counts = await queue.counts();
  assert.equal(counts.succeeded, 0);
  assert.deepEqual(counts, await tally(queue));
});
