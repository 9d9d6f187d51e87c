import { test } from "node:test";
import assert from "node:assert/strict";
import { claimTasks } from "../../src/store/claim.ts";
import { completeTasks } from "../../src/store/complete.ts";
import { listClaims } from "../../src/store/leases.ts";
import { queuesIdle } from "../../src/store/queues.ts";
import { recoverCluster } from "../../src/store/recover.ts";
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
  const { records } = await recoverCluster(store, "dead", { maxAttempts: 3, reason: "gone" });
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
  const { records } = await recoverCluster(store, "c", { maxAttempts: 3, reason: "gone" });
  assert.deepEqual(records, []);
  assert.deepEqual(await listClaims(store), []);
  assert.equal((await t.queue.fetch(c!.record.id))!.state, "succeeded");
});
