/**
 * The `done` index of layout 5: one batch entry per state per outcome commit, read beside the
 * per-task entries of single finishes (cancel) and older layouts, by listing, delete, retry,
 * purge and retention.
 */
import assert from "node:assert/strict";
import { test } from "../_deadline.ts";
import { claimTasks } from "../../src/store/claim.ts";
import { completeTasks, type Outcome } from "../../src/store/complete.ts";
import { isBatchKey, readDoneEntry } from "../../src/store/done_index.ts";
import { commitStats } from "../../src/store/commit.ts";
import { purgeFinished } from "../../src/store/purge.ts";
import type { Queue } from "../../src/queue/queue.ts";
import type { TaskState } from "../../src/store/keys.ts";
import { tally, tempQueue } from "./_helpers.ts";

/** Claims `n` queued tasks and stores their outcomes (`kind` each) in one completeTasks call. */
async function finishInOneCall(queue: Queue, n: number, kind: "success" | "failure" | "cancelled") {
  const claimed = await claimTasks(queue.store, {
    cluster: "c",
    workers: Array.from({ length: n }, (_, i) => `w${i}`),
  });
  assert.equal(claimed.length, n);
  const error = { name: "Error", message: "no" };
  // As a cluster's: no progress or cancel key was written.
  const sideKeys = { progress: false, cancel: false };
  const outcomes: Outcome[] = claimed.map((c) =>
    kind === "success"
      ? { kind, claimed: c, resultJson: "1", sideKeys }
      : kind === "failure"
      ? { kind, claimed: c, error, retryAt: null, sideKeys }
      : { kind, claimed: c, error, sideKeys }
  );
  const before = commitStats.mutations;
  await completeTasks(queue.store, outcomes);
  return { ids: claimed.map((c) => c.record.id), mutations: commitStats.mutations - before };
}

async function doneEntries(queue: Queue, state: TaskState) {
  const prefix = queue.store.keys.doneState(state);
  return (await Array.fromAsync(queue.store.kv.list({ prefix }))).map(readDoneEntry);
}

/** Every page of `state` at `limit`, as ids. */
async function allPages(queue: Queue, state: TaskState, limit: number): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 100; i++) {
    const page = await queue.tasks({ state, limit, ...(cursor ? { cursor } : {}) });
    pages.push(page.tasks.map((r) => r.id));
    if (page.cursor === null) return pages;
    cursor = page.cursor;
  }
  throw new Error("no last page");
}

test("an outcome commit names its finished tasks in one done entry per state, not one each", async () => {
  await using t = await tempQueue();
  const { queue } = t;
  await queue.enqueueMany(Array.from({ length: 12 }, (_, i) => ({ func: "add", args: [i, 0] })));
  const { ids, mutations } = await finishInOneCall(queue, 12, "success");
  const entries = await doneEntries(queue, "succeeded");
  assert.equal(entries.length, 1);
  assert.ok(isBatchKey(entries[0]!.key));
  assert.deepEqual(entries[0]!.members.map((m) => m.id).sort(), [...ids].sort());
  assert.ok(entries[0]!.members.every((m) => m.func === "add" && m.attempt === 1));
  // The records, and a few entries and counters for the whole commit (a done entry per task
  // made it 24 and more).
  assert.ok(mutations - 12 < 12, `${mutations} mutations for 12 outcomes`);
  assert.equal((await queue.counts()).succeeded, 12);
});

test("a finished state lists newest first across batch and per-task entries, each task once, at any page size", async () => {
  let now = Date.parse("2026-06-01T00:00:00Z");
  await using t = await tempQueue({ clock: () => now });
  const { queue } = t;
  await queue.enqueueMany(Array.from({ length: 40 }, (_, i) => ({ func: "add", args: [i, 0] })));
  const order: string[] = [];
  for (const n of [15, 15, 7]) {
    now += 1_000;
    order.push(...(await finishInOneCall(queue, n, "cancelled")).ids);
  }
  // Three more cancelled one by one, each with a done entry of its own.
  for (const r of (await queue.tasks({ state: "queued" })).tasks) {
    now += 1_000;
    await queue.cancel(r.id);
    order.push(r.id);
  }
  const entries = await doneEntries(queue, "cancelled");
  assert.equal(entries.filter((e) => isBatchKey(e.key)).length, 3);
  assert.equal(entries.filter((e) => !isBatchKey(e.key)).length, 3);
  const newest = (await Promise.all(order.map((id) => queue.fetch(id))))
    .map((r) => r!)
    .sort((a, b) => b.stoppedAt! - a.stoppedAt!);
  for (const limit of [1, 2, 7, 15, 16, 40, 50]) {
    const pages = await allPages(queue, "cancelled", limit);
    const ids = pages.flat();
    assert.equal(ids.length, 40, `limit ${limit}`);
    assert.equal(new Set(ids).size, 40, `limit ${limit}: each once`);
    assert.ok(pages.every((p) => p.length <= limit && p.length > 0), `limit ${limit}`);
    // Stop times never rise down the list.
    const stops = await Promise.all(ids.map(async (id) => (await queue.fetch(id))!.stoppedAt!));
    assert.ok(stops.every((s, i) => i === 0 || s <= stops[i - 1]!), `limit ${limit}`);
    assert.equal(stops[0], newest[0]!.stoppedAt);
  }
});

test("delete and retry take a task out of its batch entry; one whose record went meanwhile is skipped, then dropped by purge", async () => {
  await using t = await tempQueue();
  const { queue } = t;
  await queue.enqueueMany(Array.from({ length: 6 }, (_, i) => ({ func: "add", args: [i, 0] })));
  const ok = (await finishInOneCall(queue, 3, "success")).ids;
  const failed = (await finishInOneCall(queue, 3, "failure")).ids;
  await queue.delete(ok[0]!);
  assert.deepEqual(
    (await doneEntries(queue, "succeeded"))[0]!.members.map((m) => m.id).sort(),
    ok.slice(1).sort(),
  );
  await queue.retry(failed[0]!);
  assert.deepEqual(
    (await doneEntries(queue, "failed"))[0]!.members.map((m) => m.id).sort(),
    failed.slice(1).sort(),
  );
  assert.deepEqual(
    (await queue.tasks({ state: "failed" })).tasks.map((r) => r.id).sort(),
    failed.slice(1).sort(),
  );
  // It fails again: listed once, from its new entry.
  await finishInOneCall(queue, 1, "failure");
  assert.deepEqual(
    (await queue.tasks({ state: "failed" })).tasks.map((r) => r.id).sort(),
    [...failed].sort(),
  );
  // A record gone without its entry rewritten (a process killed between the two commits).
  await queue.store.kv.delete(queue.store.keys.task(ok[1]!));
  assert.deepEqual((await queue.tasks({ state: "succeeded" })).tasks.map((r) => r.id), [ok[2]]);
  const purged = await purgeFinished(queue.store, "succeeded");
  assert.equal(purged.deleted, 1);
  assert.deepEqual(await doneEntries(queue, "succeeded"), []);
});

test("retention by count deletes the oldest tasks across batch entries and rewrites the one it splits", async () => {
  let now = Date.parse("2026-06-01T00:00:00Z");
  await using t = await tempQueue({
    clock: () => now,
    keepSucceeded: { count: 20, minAge: 0 },
    keepFailed: { count: 1, minAge: 0 },
  });
  const { queue } = t;
  await queue.enqueueMany(Array.from({ length: 48 }, (_, i) => ({ func: "add", args: [i, 0] })));
  const batches: string[][] = [];
  for (let i = 0; i < 3; i++) {
    now += 1_000;
    batches.push((await finishInOneCall(queue, 15, "success")).ids);
  }
  now += 1_000;
  await finishInOneCall(queue, 3, "failure");
  now += 1_000;
  assert.equal(await queue.prune(), 25 + 2);
  const left = await doneEntries(queue, "succeeded");
  assert.deepEqual(left.map((e) => e.members.length), [5, 15]);
  const kept = (await queue.tasks({ state: "succeeded", limit: 100 })).tasks.map((r) => r.id);
  assert.equal(kept.length, 20);
  assert.ok(batches[2]!.every((id) => kept.includes(id)), "the newest batch is kept whole");
  assert.ok(batches[0]!.every((id) => !kept.includes(id)), "the oldest is gone");
  assert.equal((await queue.counts()).failed, 1);
  assert.deepEqual(await queue.counts(), await tally(queue));
  assert.equal(await queue.prune(), 0);
});

test("a damaged batch entry is skipped by listing and retention, and purge drops it", async () => {
  let now = Date.parse("2026-06-01T00:00:00Z");
  await using t = await tempQueue({ clock: () => now, keepSucceeded: { count: 1, minAge: 0 } });
  const { queue } = t;
  await queue.enqueueMany(Array.from({ length: 4 }, (_, i) => ({ func: "add", args: [i, 0] })));
  now += 1_000;
  const { ids } = await finishInOneCall(queue, 4, "success");
  const bad = queue.store.keys.doneBatch("succeeded", now - 500, ids[0]!);
  await queue.store.kv.set(bad, new TextEncoder().encode("{not json"));
  const listed = (await queue.tasks({ state: "succeeded" })).tasks.map((r) => r.id);
  assert.deepEqual(listed.sort(), [...ids].sort());
  now += 1_000;
  assert.equal(await queue.prune(), 3);
  assert.equal((await queue.counts()).succeeded, 1);
  await purgeFinished(queue.store, "succeeded");
  assert.deepEqual(await doneEntries(queue, "succeeded"), []);
  assert.deepEqual(await queue.counts(), await tally(queue));
});

test("a finished state listed since a time gives the tasks enqueued since, and stops at older entries", async () => {
  let now = Date.parse("2026-06-01T00:00:00Z");
  await using t = await tempQueue({ clock: () => now });
  const { queue } = t;
  await queue.enqueueMany(Array.from({ length: 5 }, (_, i) => ({ func: "add", args: [i, 0] })));
  now += 1_000;
  await finishInOneCall(queue, 5, "success");
  now += 4_000;
  const since = now;
  const late = await queue.enqueueMany(
    Array.from({ length: 5 }, (_, i) => ({ func: "add", args: [i, 1] })),
  );
  now += 1_000;
  await finishInOneCall(queue, 5, "success");
  const page = await queue.tasks({ state: "succeeded", since, limit: 3 });
  const next = await queue.tasks({ state: "succeeded", since, limit: 3, cursor: page.cursor! });
  assert.deepEqual(
    [...page.tasks, ...next.tasks].map((r) => r.id).sort(),
    late.map((e) => e.id).sort(),
  );
  assert.equal(next.cursor, null);
});
