import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import {
  createTaskContext,
  runInTaskContext,
  type TaskContext,
  taskContext,
} from "../../src/task/context.ts";

function context(reports: Array<[number, string | undefined]> = []): TaskContext {
  return createTaskContext({
    id: "t1",
    name: "calm-otter",
    attempt: 1,
    queue: "default",
    signal: new AbortController().signal,
    onProgress: (fraction, message) => reports.push([fraction, message]),
  });
}

test("taskContext() throws outside a task and returns the context inside, across awaits", async () => {
  assert.throws(() => taskContext(), /outside a running kvq task/);
  const ctx = context();
  const seen = await runInTaskContext(ctx, async function () {
    await new Promise((resolve) => setTimeout(resolve, 0));
    return { self: this, current: taskContext() };
  });
  assert.equal(seen.self, ctx);
  assert.equal(seen.current, ctx);
  assert.throws(() => taskContext());
});

test('taskContext() storage is shared through Symbol.for("kvq.taskContext")', () => {
  const shared = (globalThis as unknown as Record<symbol, unknown>)[Symbol.for("kvq.taskContext")];
  assert.ok(shared !== undefined, "the storage lives on globalThis");
  const ctx = context();
  runInTaskContext(ctx, () => {
    const store = (shared as { getStore(): unknown }).getStore();
    assert.equal(store, ctx);
  });
});

test("TaskContext.progress() forwards fractions and validates its input", () => {
  const reports: Array<[number, string | undefined]> = [];
  const ctx = context(reports);
  ctx.progress(0);
  ctx.progress(0.5, "half");
  ctx.progress({ done: 3, total: 4 });
  ctx.progress({ done: 5, total: 4 });
  assert.deepEqual(reports, [[0, undefined], [0.5, "half"], [0.75, undefined], [1, undefined]]);
  for (const bad of [-0.1, 1.5, Number.NaN, Infinity]) {
    assert.throws(() => ctx.progress(bad), (error: Error) => {
      assert.ok(error instanceof RangeError);
      assert.ok(error.message.includes(String(bad)), error.message);
      return true;
    });
  }
  assert.throws(() => ctx.progress({ done: -1, total: 4 }), RangeError);
  assert.throws(() => ctx.progress({ done: 1, total: 0 }), RangeError);
  assert.throws(() => ctx.progress({ done: 1, total: Infinity }), RangeError);
  assert.throws(() => ctx.progress("half" as unknown as number), TypeError);
});
