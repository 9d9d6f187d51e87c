import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { claimTasks } from "../../src/store/claim.ts";
import { completeTasks } from "../../src/store/complete.ts";
import { CountDeltas } from "../../src/store/counters.ts";
import { listClaims } from "../../src/store/leases.ts";
import {
  listLeases,
  lostLeases,
  readStarted,
  recoverCluster,
  releaseTasks,
  writeStarted,
} from "../../src/store/recover.ts";
import { tally, tempQueue } from "./_helpers.ts";

test("claimTasks() marks the leases of held places, and only those", async () => {
  await using t = await tempQueue();
  await t.queue.enqueueMany(Array.from({ length: 5 }, (_, i) => ({ func: "add", args: [i, 1] })));
  const claimed = await claimTasks(t.queue.store, {
    cluster: "c",
    workers: ["w1", "w2", "w1", "w2", "w1"],
    held: [false, false, true, true, true],
  });
  assert.deepEqual(claimed.map((c) => c.held), [false, false, true, true, true]);
  const { leases } = await listLeases(t.queue.store);
  const held = new Map(leases.map((l) => [l.id, l.held]));
  for (const c of claimed) assert.equal(held.get(c.record.id), c.held, c.record.id);
  // Fewer tasks than places: the first places (the ones that start at once) are filled.
  await using u = await tempQueue();
  await u.queue.enqueue("add", 1, 1);
  const [one] = await claimTasks(u.queue.store, {
    cluster: "c",
    workers: ["w1", "w1"],
    held: [false, true],
  });
  assert.equal(one!.held, false);
  const [entry] = await listClaims(u.queue.store);
  assert.deepEqual(entry!.value, { ids: [one!.record.id], held: [] });
});

test("recoverCluster() puts a held task that never started back to queued without counting the attempt, and counts one that started", async () => {
  await using t = await tempQueue();
  const store = t.queue.store;
  await t.queue.enqueueMany(Array.from({ length: 3 }, (_, i) => ({ func: "add", args: [i, 1] })));
  const [direct, startedHeld, idleHeld] = await claimTasks(store, {
    cluster: "dead",
    workers: ["w", "w", "w"],
    held: [false, true, true],
  });
  await writeStarted(store, "dead", [startedHeld!.record.id]);
  assert.deepEqual([...(await readStarted(store, "dead"))!], [startedHeld!.record.id]);
  const { records: stored } = await recoverCluster(store, "dead", {
    reason: "gone",
    started: await readStarted(store, "dead"),
  });
  assert.equal(stored.length, 3);
  const byId = new Map(stored.map((r) => [r.id, r]));
  // Ran (or may have): a failed attempt, retried.
  for (const c of [direct!, startedHeld!]) {
    const r = byId.get(c.record.id)!;
    assert.equal(r.state, "scheduled", c.record.id);
    assert.equal(r.attempt, 1);
    assert.equal(r.error?.name, "WorkerCrashError");
  }
  // Never handed to a worker: back in the ready queue as if never claimed.
  const idle = byId.get(idleHeld!.record.id)!;
  assert.equal(idle.state, "queued");
  assert.equal(idle.attempt, 0);
  assert.equal(idle.error, null);
  assert.deepEqual(await listClaims(store), []);
  const again = await claimTasks(store, { cluster: "next", workers: ["w"] });
  assert.equal(again[0]!.record.id, idleHeld!.record.id);
  assert.equal(again[0]!.record.attempt, 1);
  const counts = await t.queue.counts();
  assert.deepEqual(counts, await tally(t.queue));
});

test("a damaged started list counts every held task as started (never runs one twice uncounted)", async () => {
  await using t = await tempQueue();
  const store = t.queue.store;
  await t.queue.enqueue("add", 1, 1);
  await claimTasks(store, { cluster: "dead", workers: ["w"], held: [true] });
  await store.kv.set(store.keys.started("dead"), new TextEncoder().encode("{not json"));
  assert.equal(await readStarted(store, "dead"), null);
  // Damaged means unknown: the held task may have run, so its attempt counts.
  const { records: [r] } = await recoverCluster(store, "dead", {
    reason: "gone",
    started: await readStarted(store, "dead"),
  });
  assert.equal(r!.state, "scheduled");
  assert.equal(r!.attempt, 1);
  assert.equal(r!.error?.name, "WorkerCrashError");
  await using u = await tempQueue();
  assert.deepEqual(await readStarted(u.queue.store, "nobody"), new Set());
});

test("releaseTasks() and completeTasks() handle held tasks like any other, and the counters agree", async () => {
  await using t = await tempQueue();
  const store = t.queue.store;
  await t.queue.enqueueMany(Array.from({ length: 4 }, (_, i) => ({ func: "add", args: [i, 1] })));
  const claimed = await claimTasks(store, {
    cluster: "c",
    workers: ["w", "w", "w", "w"],
    held: [false, true, true, true],
  });
  assert.equal(await releaseTasks(store, claimed.slice(2)), 2);
  const stored = await completeTasks(
    store,
    claimed.slice(0, 2).map((c) => ({
      kind: "success",
      claimed: c,
      resultJson: "1",
      sideKeys: { progress: false, cancel: false },
    })),
  );
  assert.deepEqual(stored.map((s) => s.record?.state), ["succeeded", "succeeded"]);
  assert.deepEqual(await t.queue.counts(), await tally(t.queue));
  assert.equal((await t.queue.counts()).queued, 2);
});

test("CountDeltas sums each counter once per commit", () => {
  const c = new CountDeltas().add(["a"]).add(["a"], 2).add(["b"]).move("queued", "running");
  assert.deepEqual([...c.others.values()].map((o) => [o.key, o.n]), [[["a"], 3], [["b"], 1]]);
  assert.deepEqual(c.deltas, { queued: -1, running: 1 });
});

test("writeStarted() refuses to arm a held task whose lease another cluster took, and lostLeases() names it", async () => {
  await using t = await tempQueue();
  const store = t.queue.store;
  await t.queue.enqueueMany(Array.from({ length: 2 }, (_, i) => ({ func: "add", args: [i, 1] })));
  const [kept, taken] = await claimTasks(store, {
    cluster: "paused",
    workers: ["w", "w"],
    held: [true, true],
  });
  // The cluster was paused past its lease timeout: another one handed the task back.
  assert.equal(await releaseTasks(store, [taken!]), 1);
  assert.equal(
    await writeStarted(store, "paused", [kept!.record.id, taken!.record.id], [kept!, taken!]),
    false,
  );
  assert.equal((await store.kv.get(store.keys.started("paused"))).versionstamp, null);
  assert.deepEqual(await lostLeases(store, [kept!, taken!]), [taken!.record.id]);
  assert.equal(await writeStarted(store, "paused", [kept!.record.id], [kept!]), true);
  assert.deepEqual([...(await readStarted(store, "paused"))!], [kept!.record.id]);
});

test("held tasks a claim names as started count their attempt if the cluster dies; the other held ones do not", async () => {
  await using t = await tempQueue();
  const store = t.queue.store;
  await t.queue.enqueueMany(Array.from({ length: 3 }, (_, i) => ({ func: "add", args: [i, 1] })));
  const claimed = await claimTasks(store, {
    cluster: "dead",
    workers: ["w", "w", "w"],
    held: [true, true, true],
    armed: 2,
  });
  assert.deepEqual(claimed.map((c) => c.armed), [true, true, false]);
  const [entry] = await listClaims(store);
  assert.deepEqual(entry!.value!.started, claimed.slice(0, 2).map((c) => c.record.id));
  // No started list was written: only the claim entry says which may have started.
  const { records } = await recoverCluster(store, "dead", {
    reason: "gone",
    started: await readStarted(store, "dead"),
  });
  const byId = new Map(records.map((r) => [r.id, r]));
  for (const c of claimed.slice(0, 2)) {
    assert.equal(byId.get(c.record.id)!.state, "scheduled");
    assert.equal(byId.get(c.record.id)!.attempt, 1);
  }
  assert.equal(byId.get(claimed[2]!.record.id)!.state, "queued");
  assert.equal(byId.get(claimed[2]!.record.id)!.attempt, 0);
  assert.deepEqual(await t.queue.counts(), await tally(t.queue));
});
