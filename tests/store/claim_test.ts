import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { runInline } from "../../src/cluster/inline.ts";
import { claimTasks } from "../../src/store/claim.ts";
import { completeTasks } from "../../src/store/complete.ts";
import { recoverCluster } from "../../src/store/recover.ts";
import { CorruptRecordError } from "../../src/task/record.ts";
import { TaskId } from "../../src/task/task_id.ts";
import { storeTasks } from "../fixtures/store_tasks.ts";
import { tally, tempQueue } from "./_helpers.ts";

const tasks = storeTasks as ReadonlyMap<string, (...args: unknown[]) => unknown>;

test("claimTasks() takes a priority -1 task enqueued behind 1,000 normal ones next", async () => {
  await using t = await tempQueue();
  await t.queue.enqueueMany(
    Array.from({ length: 1_000 }, (_, i) => ({ func: "add", args: [i, 0] })),
  );
  const urgent = await t.queue.enqueue({ func: "add", args: [-1, 0], priority: -1 });
  const low = await t.queue.enqueue({ func: "add", args: [-2, 0], priority: 5 });
  const [first] = await claimTasks(t.queue.store, { cluster: "c", workers: ["w"] });
  assert.equal(first!.record.id, urgent.id);
  assert.equal(first!.record.state, "running");
  let last = "";
  for (
    let c;
    (c = await claimTasks(t.queue.store, { cluster: "c", workers: ["w", "w"] })).length;
  ) {
    last = c.at(-1)!.record.id;
  }
  assert.equal(last, low.id, "a higher number runs last");
});

test("claimTasks() hands out tasks FIFO within a priority", async () => {
  await using t = await tempQueue();
  const ids: string[] = [];
  for (let i = 0; i < 30; i++) ids.push((await t.queue.enqueue("add", i, 0)).id);
  const got: string[] = [];
  // Batches of several sizes (a batch past the KV's check limit is cut to it).
  for (let i = 0; got.length < ids.length; i++) {
    const batch = [1, 7, 3, 19][i % 4]!;
    const claimed = await claimTasks(t.queue.store, {
      cluster: "c",
      workers: Array(batch).fill("w"),
    });
    assert.ok(claimed.length > 0 && claimed.length <= batch);
    got.push(...claimed.map((c) => c.record.id));
  }
  assert.deepEqual(got, ids);
  assert.deepEqual(await claimTasks(t.queue.store, { cluster: "c", workers: ["w"] }), []);
  assert.deepEqual(await t.queue.counts(), await tally(t.queue));
  assert.equal((await t.queue.counts()).running, 30);
});

test("claimTasks() never claims a delayed task before its time", async () => {
  let now = 1_800_000_000_000;
  await using t = await tempQueue({ clock: () => now });
  const { id } = await t.queue.enqueue({ func: "add", args: [1, 1], delay: 10_000 });
  const eta = await t.queue.enqueue({ func: "add", args: [2, 2], eta: new Date(now + 20_000) });
  assert.equal(eta.record.state, "scheduled");
  assert.equal((await runInline(t.queue.store, { tasks, burst: true })).processed, 0);
  assert.deepEqual(await claimTasks(t.queue.store, { cluster: "c", workers: ["w"] }), []);
  now += 10_000;
  const report = await runInline(t.queue.store, { tasks, burst: true });
  assert.equal(report.processed, 1);
  assert.equal(await t.queue.result(id), 2);
  assert.equal((await t.queue.fetch(eta.id))!.state, "scheduled");
  assert.deepEqual(await t.queue.counts(), await tally(t.queue));
});

test("claimTasks() reports and skips a corrupt record, and the runner goes on", async () => {
  await using t = await tempQueue();
  const before = await t.queue.enqueue("add", 1, 2);
  const badId = TaskId.create().id;
  const after = await t.queue.enqueue("add", 3, 4);
  const k = t.queue.store.keys;
  const garbage = new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0xff, 0x00, 0x7b]);
  await t.queue.store.kv.atomic()
    .set(k.task(badId), garbage)
    .set(k.ready(0, badId), new Uint8Array())
    .commit();
  const corrupt: Error[] = [];
  const page = await t.queue.tasks({ onCorrupt: (e) => corrupt.push(e) });
  assert.equal(page.tasks.length, 2, "list skips it");
  assert.equal(corrupt.length, 1, "list reports it");
  const claimed = await claimTasks(t.queue.store, {
    cluster: "c",
    workers: ["w", "w", "w"],
    onCorrupt: (e) => corrupt.push(e),
  });
  assert.deepEqual(claimed.map((c) => c.record.id), [before.id, after.id]);
  assert.equal(corrupt.length, 2, "claim reports it");
  assert.ok(corrupt[1] instanceof CorruptRecordError);
  assert.match(corrupt[1]!.message, new RegExp(badId));
  await completeTasks(
    t.queue.store,
    claimed.map((c) => ({ kind: "success" as const, claimed: c, resultJson: "1" })),
  );
  // The runner, with the same garbage in place again, runs the others and does not crash.
  await t.queue.store.kv.set(k.ready(0, badId), new Uint8Array());
  const third = await t.queue.enqueue("add", 5, 6);
  const errors: unknown[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => errors.push(args);
  try {
    const report = await runInline(t.queue.store, { tasks, burst: true });
    assert.equal(report.processed, 1);
  } finally {
    console.error = original;
  }
  assert.equal(errors.length, 1);
  assert.equal(await t.queue.result(third.id), 11);
  const left = await t.queue.store.kv.get<Uint8Array>(k.task(badId));
  assert.deepEqual(new Uint8Array(left.value!), garbage, "the bad value is kept for inspection");
});

/** Counts the `getMany` calls made through `kv` (the claim's record reads). */
function countGetMany(kv: Deno.Kv): { calls: number } {
  const counted = { calls: 0 };
  const getMany = kv.getMany.bind(kv);
  (kv as unknown as Record<string, unknown>).getMany = (
    ...args: Parameters<Deno.Kv["getMany"]>
  ) => {
    counted.calls++;
    return getMany(...args);
  };
  return counted;
}

test("claimTasks() reads small tasks from their ready entries, with no getMany", async () => {
  await using t = await tempQueue();
  // As many as a claim that checks each record takes (`@deno/kv` on Bun: 10).
  const n = Math.min(25, t.queue.store.handle.maxChecks);
  const ids = (await t.queue.enqueueMany(
    Array.from({ length: n }, (_, i) => ({ func: "add", args: [i, 1] })),
  )).map((r) => r.id);
  const big = await t.queue.enqueue({ func: "size", args: ["y".repeat(8 * 1024)] });
  const reads = countGetMany(t.queue.store.kv);
  const claimed = await claimTasks(t.queue.store, { cluster: "c", workers: Array(n).fill("w") });
  assert.deepEqual(claimed.map((c) => c.record.id), ids);
  assert.deepEqual(claimed.map((c) => JSON.parse(c.argsJson)[0]), [...Array(n).keys()]);
  assert.equal(reads.calls, 0, "the copies in the ready entries sufficed");
  // A record too large to copy is read.
  const [large] = await claimTasks(t.queue.store, { cluster: "c", workers: ["w"] });
  assert.equal(large!.record.id, big.id);
  assert.equal(reads.calls, 1);
  assert.equal((await t.queue.fetch(ids[0]!))!.state, "running");
  assert.deepEqual(await t.queue.counts(), await tally(t.queue));
});

test("claimTasks() commits nothing once the queue is paused after its pause key was read", async () => {
  await using t = await tempQueue();
  const [a, b] = await t.queue.enqueueMany([{ func: "add", args: [1, 1] }, {
    func: "add",
    args: [2, 2],
  }]);
  const store = t.queue.store;
  // Read open (absent): claimed.
  const [claimed] = await claimTasks(store, { cluster: "c", workers: ["w"], open: null });
  assert.equal(claimed!.record.id, a!.id);
  // Paused after that read: the commit's check fails, and nothing is claimed, in a commit of
  // the batch or one a task.
  await t.queue.pause("maintenance");
  for (const workers of [["w"], Array(30).fill("w")]) {
    assert.deepEqual(await claimTasks(store, { cluster: "c", workers, open: null }), []);
  }
  assert.equal((await t.queue.fetch(b!.id))!.state, "queued");
  // Read paused, then resumed: the claim checks a key that changed again.
  const paused = (await store.kv.get(store.keys.paused)).versionstamp;
  await t.queue.resume();
  assert.deepEqual(await claimTasks(store, { cluster: "c", workers: ["w"], open: paused }), []);
  assert.equal(
    (await claimTasks(store, { cluster: "c", workers: ["w"], open: null }))[0]!.record.id,
    b!.id,
  );
  assert.deepEqual(await t.queue.counts(), await tally(t.queue));
});

test("claimTasks() claims the stored record, not a copy that is out of date", async () => {
  await using t = await tempQueue();
  const a = await t.queue.enqueue("add", 1, 1);
  const b = await t.queue.enqueue("add", 2, 2);
  const k = t.queue.store.kv;
  // The record changes behind its ready entry's back: its copy is stale.
  const stored = await k.get<Uint8Array>(t.queue.store.keys.task(b.id));
  const raw = JSON.parse(new TextDecoder().decode(stored.value!));
  raw.args = [20, 20];
  await k.set(t.queue.store.keys.task(b.id), new TextEncoder().encode(JSON.stringify(raw)));
  const claimed = await claimTasks(t.queue.store, { cluster: "c", workers: ["w", "w"] });
  assert.deepEqual(claimed.map((c) => c.record.id).sort(), [a.id, b.id].sort());
  const got = claimed.find((c) => c.record.id === b.id)!;
  assert.equal(got.argsJson, "[20,20]", "the record as stored runs");
  assert.deepEqual((await t.queue.fetch(b.id))!.args, [20, 20]);
  assert.deepEqual(await t.queue.counts(), await tally(t.queue));
});

test("claimTasks() does not bring back a damaged or deleted task from its ready entry's copy", async () => {
  await using t = await tempQueue();
  const broken = await t.queue.enqueue("add", 1, 1);
  const gone = await t.queue.enqueue("add", 2, 2);
  const kept = await t.queue.enqueue("add", 3, 3);
  const keys = t.queue.store.keys;
  await t.queue.store.kv.set(keys.task(broken.id), new Uint8Array([0xde, 0xad, 0x7b]));
  await t.queue.store.kv.delete(keys.task(gone.id));
  const corrupt: Error[] = [];
  const claimed = await claimTasks(t.queue.store, {
    cluster: "c",
    workers: ["w", "w", "w"],
    onCorrupt: (e) => corrupt.push(e),
  });
  assert.deepEqual(claimed.map((c) => c.record.id), [kept.id]);
  assert.equal(corrupt.length, 1);
  assert.match(corrupt[0]!.message, new RegExp(broken.id));
  assert.equal((await t.queue.store.kv.get(keys.task(gone.id))).versionstamp, null);
  assert.deepEqual(await claimTasks(t.queue.store, { cluster: "c", workers: ["w"] }), []);
  const left = [];
  for await (const e of t.queue.store.kv.list({ prefix: keys.readyPrefix })) left.push(e.key);
  assert.deepEqual(left, [], "their ready entries are dropped");
});

test("claimTasks() with a big batch of large records stays within one commit's limits", async () => {
  await using t = await tempQueue();
  const big = "x".repeat(45 * 1024); // inline, just under the chunking threshold
  await t.queue.enqueueMany(
    Array.from({ length: 40 }, (_, i) => ({ func: "size", args: [big + i] })),
  );
  const report = await runInline(t.queue.store, { tasks, burst: true, batch: 40 });
  assert.deepEqual(report, { processed: 40, succeeded: 40, failed: 0 });
  assert.deepEqual(await t.queue.counts(), await tally(t.queue));
});

test("completeTasks() refuses an outcome whose lease was lost", async () => {
  await using t = await tempQueue();
  const { id } = await t.queue.enqueue("add", 1, 1);
  const [claimed] = await claimTasks(t.queue.store, { cluster: "c", workers: ["w"] });
  // Another cluster's recovery took it (the attempt failed, and waits for its retry).
  await recoverCluster(t.queue.store, "c", { reason: "gone" });
  const [stored] = await completeTasks(t.queue.store, [{
    kind: "success",
    claimed: claimed!,
    resultJson: "2",
  }]);
  assert.equal(stored!.record, null);
  assert.equal((await t.queue.fetch(id))!.state, "scheduled");
});
