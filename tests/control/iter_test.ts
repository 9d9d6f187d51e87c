import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { IterFailedError } from "../../src/queue/queue.ts";
import { tempQueue } from "../store/_helpers.ts";
import { drain, withCluster } from "./_helpers.ts";

test("Queue.iter() runs one task per argument set and iterResult() collates in input order", async () => {
  await using t = await tempQueue();
  const { queue } = t;
  const id = await queue.iter("add", [[1, 2], [3, 4], [5, 6]], { save: false, group: "sums" });
  assert.equal(await queue.iterResult(id), undefined, "not finished yet");
  assert.deepEqual(await queue.iterStatus(id), {
    id,
    total: 3,
    done: 0,
    failed: 0,
    finished: false,
  });
  assert.equal(await queue.countGroup("sums", { failures: true }), 0);
  await drain(queue);
  assert.deepEqual(await queue.iterResult(id), [3, 7, 11]);
  assert.equal((await queue.iterStatus(id)).finished, true);
  // A non-array item is the single argument.
  const single = await queue.iter("double", new Set([1, 2, 3]));
  await drain(queue);
  assert.deepEqual(await queue.iterResult(single), [2, 4, 6]);
});

test("Queue.iterResult() throws IterFailedError for a failed member, or gives null with failures", async () => {
  await using t = await tempQueue();
  const id = await t.queue.iter("fail", [["a"], ["b"]], { maxAttempts: 1 });
  const ok = await t.queue.iter("double", [[1]]);
  await drain(t.queue);
  await assert.rejects(
    t.queue.iterResult(id),
    (e: Error) => e instanceof IterFailedError && e.index === 0 && /failed: a/.test(e.message),
  );
  assert.deepEqual(await t.queue.iterResult(id, { failures: true }), [null, null]);
  assert.deepEqual(await t.queue.iterResult(ok), [2]);
});

test("Queue.iter() refuses what is not iterable, naming it, and stores nothing", async () => {
  await using t = await tempQueue();
  for (const bad of [42, null, undefined, "abc", { length: 2 }]) {
    await assert.rejects(
      t.queue.iter("add", bad as never),
      (e: Error) => e instanceof TypeError && /iter\(\) takes an iterable/.test(e.message),
    );
  }
  await assert.rejects(t.queue.iter("add", [[1], [() => 1]]), /not JSON/);
  await assert.rejects(t.queue.iter("add", []), RangeError);
  assert.equal((await t.queue.tasks()).tasks.length, 0);
  await assert.rejects(t.queue.iterResult("0190a0a0-0000-7000-8000-000000000000"), /No iter/);
});

test("Queue.iterResult() waits for an iter running in parallel on a real cluster", async () => {
  await withCluster({ workers: 3 }, async (_cluster, queue) => {
    const id = await queue.iter("add", Array.from({ length: 12 }, (_, i) => [i, i]));
    const results = await queue.iterResult(id, { wait: 20_000 });
    assert.deepEqual(results, Array.from({ length: 12 }, (_, i) => 2 * i));
  });
});
