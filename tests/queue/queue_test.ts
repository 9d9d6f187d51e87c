import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { runInline } from "../../src/cluster/inline.ts";
import { claimTasks } from "../../src/store/claim.ts";
import { completeTasks } from "../../src/store/complete.ts";
import { NoSuchTaskError, TaskStateError } from "../../src/store/errors.ts";
import { TaskFailedError } from "../../src/queue/queue.ts";
import { TaskNotFoundError } from "../../src/task/errors.ts";
import { storeTasks } from "../fixtures/store_tasks.ts";
import { tally, tempQueue } from "../store/_helpers.ts";

const tasks = storeTasks as ReadonlyMap<string, (...args: unknown[]) => unknown>;

test("Queue.enqueue() stores a queued task that runInline() runs to success", async () => {
  await using t = await tempQueue();
  const { queue } = t;
  const { id, name, record } = await queue.enqueue("add", 2, 3);
  assert.equal(record.state, "queued");
  assert.equal((await queue.fetch(id))!.state, "queued");
  assert.equal((await queue.fetch(name))!.id, id, "found by its human name");
  assert.deepEqual(await queue.counts(), await tally(queue));
  assert.equal(await queue.queueSize(), 1);
  const report = await runInline(queue.store, { tasks, burst: true });
  assert.deepEqual(report, { processed: 1, succeeded: 1, failed: 0 });
  assert.equal(await queue.result(id), 5);
  const done = (await queue.fetch(id))!;
  assert.equal(done.state, "succeeded");
  assert.equal(done.attempt, 1);
  assert.deepEqual(await queue.counts(), await tally(queue));
  assert.equal((await queue.counts()).succeeded, 1);
});

test("Queue.enqueue() takes a function, a name, or an options object", async () => {
  await using t = await tempQueue();
  const { add } = await import("../fixtures/store_tasks.ts");
  const a = await t.queue.enqueue(add, 1, 2);
  const b = await t.queue.enqueue({ func: "add", args: [3, 4], priority: 2, group: "g" });
  assert.equal(a.record.func, "add");
  assert.deepEqual(a.record.args, [1, 2]);
  assert.equal(b.record.priority, 2);
  assert.equal(b.record.group, "g");
  await assert.rejects(t.queue.enqueue("not a name"), TypeError);
  await assert.rejects(
    t.queue.enqueue({ func: "add", args: [], priority: 1.5 }),
    /Option priority of add must be an integer/,
  );
  await assert.rejects(t.queue.enqueue({ func: "add", args: [], colour: 1 } as never), /colour/);
  await assert.rejects(t.queue.enqueue("add", () => 1), /Argument 1 of add is not JSON/);
});

test("Queue.enqueue() keeps a copy of the arguments", async () => {
  await using t = await tempQueue();
  const arg = { list: [1] };
  const { id } = await t.queue.enqueue("echo", arg);
  arg.list.push(2);
  assert.deepEqual((await t.queue.fetch(id))!.args, [{ list: [1] }]);
});

test("Queue.enqueueMany() stores nothing when one call is invalid", async () => {
  await using t = await tempQueue();
  const calls = Array.from({ length: 500 }, (_, i) => ({ func: "add", args: [i, 1] }));
  calls[321] = { func: "add", args: [10n as unknown as number, 1] };
  await assert.rejects(t.queue.enqueueMany(calls), /Argument 1 of add \(task 321 of the batch\)/);
  const keys = await Array.fromAsync(t.queue.store.kv.list({ prefix: ["kvq"] }));
  assert.equal(keys.length, 0);
});

test("Queue.enqueueMany() stores thousands of tasks in order with matching counters", async () => {
  await using t = await tempQueue();
  const calls = Array.from({ length: 3_000 }, (_, i) => ({
    func: "add",
    args: [i, 1],
    ...(i % 3 === 0 ? { group: "thirds" } : {}),
  }));
  const enqueued = await t.queue.enqueueMany(calls);
  assert.equal(enqueued.length, 3_000);
  assert.deepEqual((await t.queue.counts()).queued, 3_000);
  assert.deepEqual(await t.queue.counts(), await tally(t.queue));
  assert.equal((await t.queue.fetchGroup("thirds")).length, 1_000);
  const claimed = await claimTasks(t.queue.store, { cluster: "c", workers: ["w", "w", "w"] });
  assert.deepEqual(claimed.map((c) => c.record.args), [[0, 1], [1, 1], [2, 1]]);
});

test("Queue.result() throws TaskFailedError for a failed task and NoSuchTaskError for none", async () => {
  await using t = await tempQueue();
  const { id } = await t.queue.enqueue({ func: "boom", args: ["bad input"], maxAttempts: 1 });
  await runInline(t.queue.store, { tasks, burst: true });
  await assert.rejects(t.queue.result(id), (error: Error) => {
    assert.ok(error instanceof TaskFailedError);
    assert.match(error.message, /bad input/);
    assert.equal(error.record.state, "failed");
    assert.equal((error.cause as Error).name, "RangeError");
    return true;
  });
  await assert.rejects(t.queue.result("0193a7c2-5b1e-7f00-8a3b-1c2d3e4f5a6b"), NoSuchTaskError);
  await assert.rejects(t.queue.result("tango-alpha-nine-river"), NoSuchTaskError);
  await assert.rejects(t.queue.result("nonsense!"), TypeError);
});

test("Queue.result() returns undefined when the task has not finished after the wait", async () => {
  await using t = await tempQueue();
  const { id } = await t.queue.enqueue("add", 1, 1);
  assert.equal(await t.queue.result(id), undefined);
  assert.equal(await t.queue.result(id, { wait: 30 }), undefined);
  const controller = new AbortController();
  const waiting = t.queue.result(id, { wait: 60_000, signal: controller.signal });
  controller.abort();
  assert.equal(await waiting, undefined);
});

test("Queue.result() wakes when this process completes the task", async () => {
  await using t = await tempQueue();
  const { id } = await t.queue.enqueue("add", 20, 22);
  const waiting = t.queue.result(id, { wait: 60_000 });
  const started = Date.now();
  await runInline(t.queue.store, { tasks, burst: true });
  assert.equal(await waiting, 42);
  assert.ok(Date.now() - started < 30_000);
});

test("runInline() retries a failed attempt after its backoff, then fails it for good", async () => {
  let now = 1_800_000_000_000;
  await using t = await tempQueue({ clock: () => now });
  const { id } = await t.queue.enqueue({
    func: "boom",
    args: [],
    maxAttempts: 2,
    backoff: { type: "fixed", delay: 5_000 },
  });
  let report = await runInline(t.queue.store, { tasks, burst: true });
  assert.deepEqual(report, { processed: 1, succeeded: 0, failed: 1 });
  let r = (await t.queue.fetch(id))!;
  assert.equal(r.state, "scheduled");
  assert.equal(r.runAt, now + 5_000);
  assert.equal(r.errors.length, 1);
  assert.deepEqual(await t.queue.counts(), await tally(t.queue));
  now += 4_999;
  report = await runInline(t.queue.store, { tasks, burst: true });
  assert.equal(report.processed, 0, "not before its time");
  now += 1;
  report = await runInline(t.queue.store, { tasks, burst: true });
  assert.equal(report.processed, 1);
  r = (await t.queue.fetch(id))!;
  assert.equal(r.state, "failed");
  assert.equal(r.attempt, 2);
  assert.equal(r.errors.length, 2);
  const counts = await t.queue.counts();
  assert.deepEqual(counts, await tally(t.queue));
  assert.equal(counts.failed, 1);
  assert.equal(counts.scheduled, 0);
});

test("runInline() fails an unknown task with TaskNotFoundError and runs the others", async () => {
  await using t = await tempQueue();
  const missing = await t.queue.enqueue("noSuchTask", 1);
  const ok = await t.queue.enqueue("add", 1, 2);
  const report = await runInline(t.queue.store, { tasks, burst: true });
  assert.equal(report.processed, 2, "an unknown name is final: no retry");
  assert.equal(await t.queue.result(ok.id), 3);
  const r = (await t.queue.fetch(missing.id))!;
  assert.equal(r.state, "failed");
  assert.equal(r.error!.name, new TaskNotFoundError("x", []).name);
  assert.match(r.error!.message, /"noSuchTask" not found/);
  assert.deepEqual(await t.queue.counts(), await tally(t.queue));
});

test("Queue.cancel() cancels waiting tasks and refuses finished ones", async () => {
  let now = 1_800_000_000_000;
  await using t = await tempQueue({ clock: () => now });
  const queued = await t.queue.enqueue("add", 1, 1);
  const delayed = await t.queue.enqueue({ func: "add", args: [1, 1], delay: 60_000 });
  assert.equal(delayed.record.state, "scheduled");
  assert.equal(await t.queue.cancel(queued.id), "cancelled");
  assert.equal(await t.queue.cancel(delayed.name), "cancelled");
  now += 120_000;
  assert.equal((await runInline(t.queue.store, { tasks, burst: true })).processed, 0);
  await assert.rejects(t.queue.result(queued.id), TaskFailedError);
  await assert.rejects(t.queue.cancel(queued.id), TaskStateError);
  const counts = await t.queue.counts();
  assert.deepEqual(counts, await tally(t.queue));
  assert.equal(counts.cancelled, 2);
  assert.equal(counts.queued + counts.scheduled, 0);
});

test("Queue.cancel() of a running task asks its runner to stop it", async () => {
  await using t = await tempQueue();
  const { id } = await t.queue.enqueue("add", 1, 1);
  const [claimed] = await claimTasks(t.queue.store, { cluster: "c", workers: ["w"] });
  assert.equal(claimed!.record.id, id);
  assert.equal(await t.queue.cancel(id), "cancelling");
  await completeTasks(t.queue.store, [{
    kind: "cancelled",
    claimed: claimed!,
    error: { name: "TaskCancelledError", message: "Task cancelled" },
  }]);
  assert.equal((await t.queue.fetch(id))!.state, "cancelled");
  assert.deepEqual(await t.queue.counts(), await tally(t.queue));
});

test("Queue.retry() requeues a finished task with a fresh attempt count", async () => {
  await using t = await tempQueue();
  const { id } = await t.queue.enqueue({ func: "boom", args: [], maxAttempts: 1 });
  await runInline(t.queue.store, { tasks, burst: true });
  await assert.rejects(t.queue.retry("0193a7c2-5b1e-7f00-8a3b-1c2d3e4f5a6b"), NoSuchTaskError);
  const again = await t.queue.retry(id);
  assert.equal(again.state, "queued");
  assert.equal(again.attempt, 0);
  await assert.rejects(t.queue.retry(id), TaskStateError);
  assert.deepEqual(await t.queue.counts(), await tally(t.queue));
  await runInline(t.queue.store, { tasks, burst: true });
  const r = (await t.queue.fetch(id))!;
  assert.equal(r.state, "failed");
  assert.equal(r.attempt, 1);
  assert.deepEqual(await t.queue.counts(), await tally(t.queue));
});

test("Queue.delete() removes a task and its index entries", async () => {
  await using t = await tempQueue();
  const a = await t.queue.enqueue({ func: "add", args: [1, 2], group: "g" });
  const b = await t.queue.enqueue("add", 3, 4);
  const [claimed] = await claimTasks(t.queue.store, { cluster: "c", workers: ["w"] });
  assert.equal(claimed!.record.id, a.id);
  await assert.rejects(t.queue.delete(a.id), /running; cancel it first/);
  await completeTasks(t.queue.store, [{ kind: "success", claimed: claimed!, resultJson: "3" }]);
  await t.queue.delete(a.id);
  await t.queue.delete(b.name);
  await assert.rejects(t.queue.delete(a.id), NoSuchTaskError);
  const left = await Array.fromAsync(t.queue.store.kv.list({ prefix: t.queue.store.keys.prefix }));
  assert.deepEqual(
    left.filter((e) => !["stat", "signal", "claim_seq"].includes(e.key[2] as string)).map((e) =>
      e.key
    ),
    [],
  );
  assert.deepEqual(await t.queue.counts(), await tally(t.queue));
});

test("Queue.tasks() lists by state, group and function, page by page", async () => {
  await using t = await tempQueue();
  for (let i = 0; i < 7; i++) await t.queue.enqueue({ func: "add", args: [i, 0], group: "g" });
  for (let i = 0; i < 3; i++) await t.queue.enqueue("echo", i);
  const claimed = await claimTasks(t.queue.store, { cluster: "c", workers: ["w", "w"] });
  await completeTasks(
    t.queue.store,
    claimed.map((c) => ({ kind: "success" as const, claimed: c, resultJson: "0" })),
  );
  const queued = await t.queue.tasks({ state: "queued" });
  assert.equal(queued.tasks.length, 8);
  assert.deepEqual(queued.tasks.slice(0, 5).map((r) => r.args), [[2, 0], [3, 0], [4, 0], [5, 0], [
    6,
    0,
  ]]);
  assert.equal((await t.queue.tasks({ state: "succeeded" })).tasks.length, 2);
  assert.equal((await t.queue.tasks({ func: "echo" })).tasks.length, 3);
  assert.equal((await t.queue.tasks({ group: "g", state: "queued" })).tasks.length, 5);
  const seen: string[] = [];
  let page = await t.queue.tasks({ limit: 4 });
  seen.push(...page.tasks.map((r) => r.id));
  while (page.cursor) {
    page = await t.queue.tasks({ limit: 4, cursor: page.cursor });
    seen.push(...page.tasks.map((r) => r.id));
  }
  assert.equal(seen.length, 10);
  assert.equal(new Set(seen).size, 10);
  await assert.rejects(t.queue.tasks({ limit: 0 }), RangeError);
});

test("Queue group methods count, collect and delete a group's tasks", async () => {
  await using t = await tempQueue();
  for (let i = 0; i < 4; i++) await t.queue.enqueue({ func: "add", args: [i, 10], group: "g" });
  await t.queue.enqueue({ func: "boom", args: [], group: "g", maxAttempts: 1 });
  await t.queue.enqueue("add", 0, 0);
  assert.equal(await t.queue.countGroup("g"), 0);
  const waiting = t.queue.resultGroup("g", { count: 4, wait: 60_000 });
  await runInline(t.queue.store, { tasks, burst: true });
  assert.deepEqual(await waiting, [10, 11, 12, 13]);
  assert.equal(await t.queue.countGroup("g"), 4);
  assert.equal(await t.queue.countGroup("g", { failures: true }), 5);
  assert.deepEqual(await t.queue.deleteGroup("g", { tasks: true }), { deleted: 5, skipped: 0 });
  assert.deepEqual(await t.queue.fetchGroup("g"), []);
  assert.deepEqual(await t.queue.counts(), await tally(t.queue));
  assert.equal((await t.queue.counts()).succeeded, 1);
});

test("Queue.enqueueIn() commits tasks with the app's data, or not at all", async () => {
  await using t = await tempQueue();
  const { runtime } = await import("../../src/runtime/mod.ts");
  const { openQueue } = await import("../../src/queue/queue.ts");
  const kv = await runtime.openKv(t.path);
  try {
    await using queue = await openQueue({ kv });
    const order = ["app", "order", 1];
    const first = kv.atomic().check({ key: order, versionstamp: null }).set(order, "paid");
    const [ok] = queue.enqueueIn(first, [{ func: "add", args: [1, 2] }]);
    assert.equal((await first.commit()).ok, true);
    queue.notify();
    assert.equal((await queue.fetch(ok!.id))!.state, "queued");

    const second = kv.atomic().check({ key: order, versionstamp: null }).set(order, "again");
    const [lost] = queue.enqueueIn(second, [
      { func: "add", args: [3, 4] },
      { func: "add", args: [5, 6], delay: 1_000 },
    ]);
    assert.equal((await second.commit()).ok, false, "the app's check fails");
    assert.equal(await queue.fetch(lost!.id), null);
    assert.equal((await kv.get(order)).value, "paid");
    const counts = await queue.counts();
    assert.deepEqual(counts, await tally(queue));
    assert.equal(counts.queued + counts.scheduled, 1);
    assert.throws(
      () => queue.enqueueIn(kv.atomic(), [{ func: "echo", args: ["x".repeat(100_000)] }]),
      { name: "PayloadTooLargeError" },
    );
  } finally {
    kv.close();
  }
  const stillOpen = await t.queue.fetch("tango-alpha-nine-river");
  assert.equal(stillOpen, null, "the queue left the app's KV open for the app to close");
});
