import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { tempQueue } from "../store/_helpers.ts";
import { drain, withCluster } from "./_helpers.ts";

test("hook runs after a task succeeds, given the finished record with its result", async () => {
  await using t = await tempQueue();
  const { queue } = t;
  const { id } = await queue.enqueue({ func: "add", args: [1, 2], hook: "onDone", save: false });
  await drain(queue);
  const hooks = (await queue.tasks({ func: "onDone" })).tasks;
  assert.equal(hooks.length, 1);
  const arg = hooks[0]!.args![0] as { id: string; state: string; result: number };
  assert.equal(arg.id, id);
  assert.equal(arg.state, "succeeded");
  assert.equal(arg.result, 3, "the hook sees the result even with save: false");
  assert.deepEqual(await queue.result(hooks[0]!.id), { id, state: "succeeded", result: 3 });
});

test("onFailure runs only after a final failure, hook after any end", async () => {
  await using t = await tempQueue();
  const { queue } = t;
  await queue.enqueue({ func: "add", args: [1, 2], onFailure: "onDone" });
  const failed = await queue.enqueue({
    func: "fail",
    args: ["x"],
    maxAttempts: 2,
    backoff: { type: "fixed", delay: 0 },
    onFailure: "onDone",
    hook: "onDone",
  });
  await drain(queue);
  const hooks = (await queue.tasks({ func: "onDone" })).tasks;
  assert.equal(hooks.length, 2, "hook and onFailure, once each");
  for (const h of hooks) {
    const arg = h.args![0] as { id: string; state: string; errors: unknown[] };
    assert.equal(arg.id, failed.id);
    assert.equal(arg.state, "failed");
    assert.equal(arg.errors.length, 2, "the hooks ran only after the second, final attempt");
  }
});

test("a hook that throws is a failed task, and the cluster goes on", async () => {
  await withCluster({ workers: 1 }, async (_cluster, queue) => {
    const { id } = await queue.enqueue({ func: "add", args: [1, 1], hook: "badHook" });
    assert.equal(await queue.result(id, { wait: 10_000 }), 2);
    let hook = (await queue.tasks({ func: "badHook" })).tasks[0]!;
    hook = await queue.wait(hook.id, { wait: 10_000 });
    assert.equal(hook.state === "failed" || hook.state === "scheduled", true, hook.state);
    assert.match(hook.error!.message, /the hook broke/);
    const next = await queue.enqueue("add", 2, 2);
    assert.equal(await queue.result(next.id, { wait: 10_000 }), 4);
  });
});

test("onTimeout runs after a task times out for good on a real cluster", async () => {
  await withCluster({ workers: 1, abortGrace: 100 }, async (_cluster, queue) => {
    const { id } = await queue.enqueue({
      func: "hang",
      timeout: 200,
      maxAttempts: 1,
      onTimeout: "onDone",
      onFailure: "onDone",
    });
    const record = await queue.wait(id, { wait: 10_000 });
    assert.equal(record.error?.name, "TaskTimeoutError");
    const hooks = (await queue.tasks({ func: "onDone" })).tasks;
    assert.equal(hooks.length, 2, "onTimeout and onFailure");
    for (const h of hooks) {
      const done = await queue.wait(h.id, { wait: 10_000 });
      assert.deepEqual(done.result, { id, state: "failed", result: null });
    }
  });
});

test("hook options are validated", async () => {
  await using t = await tempQueue();
  await assert.rejects(t.queue.enqueue({ func: "add", onFailure: "no name" }), /onFailure/);
  await assert.rejects(t.queue.enqueue({ func: "add", onTimeout: 3 as never }), /onTimeout/);
});
