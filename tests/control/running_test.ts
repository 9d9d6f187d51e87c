import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import type { ClusterEventMap } from "../../src/cluster/events.ts";
import { kvq } from "../cli/_helpers.ts";
import { withCluster } from "./_helpers.ts";

/**
 * Resolves with the next `task:start` of a task of `func`. Call it before the enqueue: a task
 * may start before `enqueue()` returns (another connection's claim can commit while the
 * enqueuing one still finishes its commit), and an event has no replay.
 */
function started(cluster: Parameters<Parameters<typeof withCluster>[1]>[0], func: string) {
  return cluster.once("task:start", (e: ClusterEventMap["task:start"]) => e.record.func === func);
}

test("cancel of a running task aborts its signal and ends it cancelled (real cluster)", async () => {
  await withCluster({ workers: 1 }, async (cluster, queue) => {
    const start = started(cluster, "waitForAbort");
    const { id } = await queue.enqueue({ func: "waitForAbort", maxAttempts: 1 });
    await start;
    assert.equal(await queue.cancel(id), "cancelling");
    const record = await queue.wait(id, { wait: 10_000 });
    assert.equal(record.state, "cancelled");
    assert.equal(record.error?.name, "TaskCancelledError");
    assert.equal((await queue.counts()).cancelled, 1);
    assert.equal((await queue.counts()).running, 0);
  });
});

test("cancel of a running task that ignores its signal terminates its worker after the grace", async () => {
  await withCluster({ workers: 1, abortGrace: 200 }, async (cluster, queue) => {
    const start = started(cluster, "hang");
    const { id } = await queue.enqueue({ func: "hang", maxAttempts: 3 });
    await start;
    const exited = cluster.once("worker:exit", (e) => e.inFlight.includes(id));
    await queue.cancel(id);
    await exited;
    const record = await queue.wait(id, { wait: 10_000 });
    assert.equal(record.state, "cancelled", "cancelled, not retried");
    // The worker came back and the cluster serves on.
    const next = await queue.enqueue("add", 1, 1);
    assert.equal(await queue.result(next.id, { wait: 10_000 }), 2);
  });
});

test("kvq cancel: waiting and running tasks, --group, and what it says for unknown and finished ones", async () => {
  await withCluster({ workers: 1 }, async (cluster, queue, kv) => {
    const start = started(cluster, "waitForAbort");
    const running = await queue.enqueue({ func: "waitForAbort", group: "g", maxAttempts: 1 });
    await start;
    const waiting = await queue.enqueue({ func: "add", args: [1, 1], group: "g", delay: 60_000 });
    const other = await queue.enqueue({ func: "add", args: [1, 1], delay: 60_000 });
    const byGroup = await kvq(["cancel", "--kv", kv, "--group", "g", "--json"]);
    assert.equal(byGroup.code, 0, byGroup.err);
    assert.deepEqual(JSON.parse(byGroup.out), { cancelled: 2 });
    assert.equal((await queue.wait(running.id, { wait: 10_000 })).state, "cancelled");
    assert.equal((await queue.fetch(waiting.id))!.state, "cancelled");

    const one = await kvq(["cancel", "--kv", kv, other.name]);
    assert.equal(one.code, 0, one.err);
    assert.match(one.out, /cancelled/);
    const again = await kvq(["cancel", "--kv", kv, other.id]);
    assert.equal(again.code, 1);
    assert.match(again.err, /already cancelled; there is nothing to cancel/);
    const unknown = await kvq(["cancel", "--kv", kv, "0190a0a0-0000-7000-8000-000000000000"]);
    assert.equal(unknown.code, 4);
    assert.match(unknown.err, /No task "0190a0a0-0000-7000-8000-000000000000"/);
  });
});

test("progress reported by a running task is stored and shown by fetch() and kvq task", async () => {
  await withCluster({ workers: 1 }, async (cluster, queue, kv) => {
    // The only task: its progress may come before enqueue() returns.
    const reported = cluster.once("task:progress");
    const { id } = await queue.enqueue({ func: "halfway", maxAttempts: 1 });
    const progress = await reported;
    assert.equal(progress.id, id);
    assert.equal(progress.fraction, 0.5);
    const record = (await queue.fetch(id))!;
    assert.equal(record.state, "running");
    assert.equal(record.progress?.fraction, 0.5);
    assert.equal(record.progress?.message, "half");
    const shown = await kvq(["task", "--kv", kv, id]);
    assert.equal(shown.code, 0, shown.err);
    assert.match(shown.out, /progress +50% half/);
    await queue.cancel(id);
    await queue.wait(id, { wait: 10_000 });
  });
});

test("a priority -1 task enqueued behind 1,000 normal ones starts next (real cluster, 1 worker)", async () => {
  await withCluster({ workers: 1 }, async (cluster, queue) => {
    const start = started(cluster, "waitForAbort");
    const blocker = await queue.enqueue({ func: "waitForAbort", maxAttempts: 1 });
    await start;
    await queue.enqueueMany(
      Array.from({ length: 1000 }, (_, i) => ({ func: "add", args: [i, 0] })),
    );
    const urgent = await queue.enqueue({ func: "add", args: [-1, 0], priority: -1 });
    const next = cluster.once("task:start", (e) => e.record.id !== blocker.id);
    await queue.cancel(blocker.id);
    const first = await next;
    assert.equal(first.record.id, urgent.id);
  });
});
