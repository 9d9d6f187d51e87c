import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { claimTasks } from "../../src/store/claim.ts";
import { completeTasks } from "../../src/store/complete.ts";
import { commitStats } from "../../src/store/commit.ts";
import { listClaims } from "../../src/store/leases.ts";
import { queuesIdle } from "../../src/store/queues.ts";
import { recoverCluster, releaseTasks } from "../../src/store/recover.ts";
import { tally, tempQueue } from "./_helpers.ts";

const success = (claimed: Awaited<ReturnType<typeof claimTasks>>[number]) => ({
  kind: "success" as const,
  claimed,
  resultJson: "2",
});

test("a claim commit writes one claim entry, and the commit that stores its last task deletes it", async () => {
  await using t = await tempQueue();
  const store = t.queue.store;
  await t.queue.enqueueMany(Array.from({ length: 5 }, (_, i) => ({ func: "add", args: [i, 1] })));
  const claimed = await claimTasks(store, { cluster: "c", workers: ["w", "w", "w", "w", "w"] });
  assert.equal(claimed.length, 5);
  const [entry, ...more] = await listClaims(store);
  assert.deepEqual(more, []);
  assert.equal(entry!.cluster, "c");
  assert.deepEqual(entry!.value!.ids, claimed.map((c) => c.record.id));
  // No key per task marks it running: the record is the lease.
  for await (const e of store.kv.list({ prefix: store.keys.leases })) {
    assert.deepEqual(e.key, entry!.key);
  }
  await completeTasks(store, claimed.slice(0, 3).map(success));
  assert.equal((await listClaims(store)).length, 1);
  await completeTasks(store, claimed.slice(3).map(success));
  assert.deepEqual(await listClaims(store), []);
  assert.equal((await t.queue.counts()).succeeded, 5);
});

test("outcomes of one claim stored side by side leave no claim entry behind", async () => {
  await using t = await tempQueue();
  const store = t.queue.store;
  await t.queue.enqueueMany(Array.from({ length: 2 }, (_, i) => ({ func: "add", args: [i, 1] })));
  const [a, b] = await claimTasks(store, { cluster: "c", workers: ["w", "w"] });
  // Each commit sees the other task still held, so neither deletes the entry in its commit.
  await Promise.all([completeTasks(store, [success(a!)]), completeTasks(store, [success(b!)])]);
  assert.deepEqual(await listClaims(store), []);
  assert.equal(await queuesIdle([store]), true);
});

test("recoverCluster() finds a dead cluster's tasks from their records when its claim entry is damaged", async () => {
  await using t = await tempQueue();
  const store = t.queue.store;
  await t.queue.enqueueMany(Array.from({ length: 3 }, (_, i) => ({ func: "add", args: [i, 1] })));
  const claimed = await claimTasks(store, { cluster: "dead", workers: ["w", "w"] });
  await claimTasks(store, { cluster: "alive", workers: ["w"] });
  const [entry] = await listClaims(store, "dead");
  await store.kv.set(entry!.key, new TextEncoder().encode("{not json"));
  assert.equal(await queuesIdle([store]), false);
  const { records } = await recoverCluster(store, "dead", { reason: "gone" });
  assert.deepEqual(
    records.map((r) => [r.id, r.state]).sort(),
    claimed.map((c) => [c.record.id, "scheduled"]).sort(),
  );
  // The other cluster's task and claim are left alone.
  assert.deepEqual((await listClaims(store)).map((c) => c.cluster), ["alive"]);
  assert.equal((await t.queue.counts()).running, 1);
  assert.deepEqual(await t.queue.counts(), await tally(t.queue));
});

test("a claim entry whose tasks all ended does not keep the queue busy", async () => {
  await using t = await tempQueue();
  const store = t.queue.store;
  await t.queue.enqueue("add", 1, 1);
  const [c] = await claimTasks(store, { cluster: "c", workers: ["w"] });
  const entry = (await listClaims(store))[0]!;
  await completeTasks(store, [success(c!)]);
  // Left behind, as by a cluster killed between its result commit and the entry's delete.
  await store.kv.set(entry.key, new TextEncoder().encode(JSON.stringify(entry.value)));
  assert.equal(await queuesIdle([store]), true);
  const { records } = await recoverCluster(store, "c", { reason: "gone" });
  assert.deepEqual(records, []);
  assert.deepEqual(await listClaims(store), []);
  assert.equal((await t.queue.fetch(c!.record.id))!.state, "succeeded");
});

test("a claim's outcomes go in one commit with one check, and after a recovery took them they are refused", async () => {
  await using t = await tempQueue();
  const store = t.queue.store;
  await t.queue.enqueueMany(Array.from({ length: 24 }, (_, i) => ({ func: "add", args: [i, 1] })));
  const claimed = [];
  while (claimed.length < 20) {
    claimed.push(
      ...await claimTasks(store, { cluster: "c", workers: Array(20 - claimed.length).fill("w") }),
    );
  }
  const before = commitStats.commits;
  const stored = await completeTasks(store, claimed.map(success));
  // More outcomes than a commit may hold checks on Bun (10): one commit all the same.
  assert.equal(commitStats.commits - before, 1);
  assert.ok(stored.every((s) => s.record?.state === "succeeded"));
  // Cluster d is judged dead while it runs two tasks; its results come in late.
  const late = await claimTasks(store, { cluster: "d", workers: ["w", "w"] });
  await recoverCluster(store, "d", { reason: "gone" });
  const refused = await completeTasks(store, late.map(success));
  assert.deepEqual(refused.map((s) => s.record), [null, null]);
  for (const c of late) assert.equal((await t.queue.fetch(c.record.id))!.state, "scheduled");
  assert.deepEqual(await t.queue.counts(), await tally(t.queue));
});

test("a claim wider than a commit's checks checks the claim sequence, and a cancel during it is never overwritten", async () => {
  await using t = await tempQueue();
  const store = t.queue.store;
  const n = store.handle.maxChecks + 20;
  const tasks = await t.queue.enqueueMany(
    Array.from({ length: n }, (_, i) => ({ func: "add", args: [i, 1] })),
  );
  // Between the claim's read of the records and its commit, one of the tasks is cancelled.
  const kv = store.kv as { getMany: typeof store.kv.getMany };
  const getMany = kv.getMany.bind(store.kv);
  let cancelled = false;
  kv.getMany = (async (keys: Deno.KvKey[], options?: { consistency?: Deno.KvConsistencyLevel }) => {
    const entries = await getMany(keys, options);
    if (!cancelled) {
      cancelled = true;
      await t.queue.cancel(tasks[3]!.id);
    }
    return entries;
  }) as typeof store.kv.getMany;
  const before = commitStats.commits;
  const claimed = await claimTasks(store, { cluster: "c", workers: Array(n).fill("w") });
  kv.getMany = getMany;
  assert.ok(commitStats.commits - before > 1, "the first commit must have failed its check");
  assert.equal((await t.queue.fetch(tasks[3]!.id))!.state, "cancelled");
  assert.ok(!claimed.some((c) => c.record.id === tasks[3]!.id));
  assert.ok(claimed.length > 0);
  assert.deepEqual(await t.queue.counts(), await tally(t.queue));
  // Undisturbed, one commit takes more tasks than a commit may hold checks.
  await t.queue.enqueueMany(Array.from({ length: n }, (_, i) => ({ func: "add", args: [i, 2] })));
  const at = commitStats.commits;
  const more = await claimTasks(store, { cluster: "c", workers: Array(n).fill("w") });
  assert.equal(commitStats.commits - at, 1);
  // (At most 100 a commit: on Deno, which takes 100 checks, that is as many as before.)
  assert.equal(more.length, Math.min(n, 100));
});

test("an outcome that arrives after its own cluster released the task is refused", async () => {
  await using t = await tempQueue();
  const store = t.queue.store;
  await t.queue.enqueueMany(Array.from({ length: 2 }, (_, i) => ({ func: "add", args: [i, 1] })));
  const [a, b] = await claimTasks(store, { cluster: "c", workers: ["w", "w"] });
  // A stop past its grace handed `a` back while its worker still ran it; another cluster took it.
  assert.equal(await releaseTasks(store, [a!]), 1);
  const [again] = await claimTasks(store, { cluster: "d", workers: ["w"] });
  assert.equal(again!.record.id, a!.record.id);
  const stored = await completeTasks(store, [success(a!), success(b!)]);
  assert.deepEqual(stored.map((s) => s.record?.state ?? null), [null, "succeeded"]);
  assert.equal((await t.queue.fetch(a!.record.id))!.state, "running");
  assert.deepEqual(await t.queue.counts(), await tally(t.queue));
});
