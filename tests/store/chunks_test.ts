import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { runInline } from "../../src/cluster/inline.ts";
import { PayloadTooLargeError } from "../../src/store/chunks.ts";
import { storeTasks } from "../fixtures/store_tasks.ts";
import { tally, tempQueue } from "./_helpers.ts";

const tasks = storeTasks as ReadonlyMap<string, (...args: unknown[]) => unknown>;

test("enqueueTasks() refuses args over maxPayloadBytes and stores nothing", async () => {
  await using t = await tempQueue({ maxPayloadBytes: 100_000 });
  await assert.rejects(t.queue.enqueue("echo", "é".repeat(60_000)), (error: Error) => {
    assert.ok(error instanceof PayloadTooLargeError);
    assert.match(error.message, /Arguments of echo is 117\.2 KiB, over the 97\.7 KiB limit/);
    return true;
  });
  await assert.rejects(
    t.queue.enqueueMany([
      { func: "echo", args: ["small"] },
      { func: "echo", args: ["x".repeat(100_001)] },
    ]),
    PayloadTooLargeError,
  );
  // Nothing but the layout version the open wrote.
  const left = await Array.fromAsync(t.queue.store.kv.list({ prefix: [] }));
  assert.deepEqual(left.map((e) => e.key), [["kvq_schema"]]);
});

test("enqueueTasks() stores a 200 KiB args payload in chunks and it round-trips", async () => {
  await using t = await tempQueue();
  const text = "kvq ✓ ".repeat(200 * 1024 / 8);
  const { id, record } = await t.queue.enqueue("echo", text, { n: 1 });
  assert.equal(record.args, null);
  assert.ok(record.argsChunks >= 4);
  assert.deepEqual((await t.queue.fetch(id))!.args, [text, { n: 1 }]);
  const report = await runInline(t.queue.store, { tasks, burst: true });
  assert.equal(report.succeeded, 1);
  assert.deepEqual(await t.queue.result(id), [text, { n: 1 }], "a 200 KiB result round-trips");
  const stored = await t.queue.store.kv.get(t.queue.store.keys.task(id));
  assert.ok((stored.value as Uint8Array).length < 4096, "the record holds neither payload");
  await t.queue.delete(id);
  const blobs = await Array.fromAsync(
    t.queue.store.kv.list({ prefix: [...t.queue.store.keys.prefix, "blob"] }),
  );
  assert.deepEqual(blobs, [], "delete removes the chunks");
  assert.deepEqual(await t.queue.counts(), await tally(t.queue));
});

test("completeTasks() fails a result over maxPayloadBytes without a retry", async () => {
  await using t = await tempQueue({ maxPayloadBytes: 50_000 });
  const { id } = await t.queue.enqueue({ func: "repeat", args: ["yz", 30_000], maxAttempts: 3 });
  await runInline(t.queue.store, { tasks, burst: true });
  const r = (await t.queue.fetch(id))!;
  assert.equal(r.state, "failed");
  assert.equal(r.error!.name, "PayloadTooLargeError");
  assert.match(r.error!.message, /Result of repeat is 58\.6 KiB, over the 48\.8 KiB limit/);
  assert.equal(r.attempt, 1, "no retry can make it fit");
});
