/**
 * Quarantine in the store: lease recovery counts a crash apart from attempts, a claim runs a
 * suspect (a task that was running at a crash) only alone, and a suspect that was alone at
 * `maxCrashes` crashes fails as poison.
 */
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { claimTasks } from "../../src/store/claim.ts";
import { listLeases } from "../../src/store/leases.ts";
import { promoteDue } from "../../src/store/promote.ts";
import { recoverCluster } from "../../src/store/recover.ts";
import { retryTime } from "../../src/task/backoff.ts";
import { DEFAULT_RETRY } from "../../src/task/backoff.ts";
import { tally, tempQueue } from "./_helpers.ts";
import { Cluster } from "../../src/cluster/cluster.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { CLUSTER_TASKS, tempDir } from "../cluster/_process.ts";

test("a crash is counted apart from attempts, and a suspect is claimed only alone", async () => {
  await using t = await tempQueue();
  const store = t.queue.store;
  const [a, b, c] = await t.queue.enqueueMany([
    { func: "add", args: [1, 1], maxAttempts: 1 },
    { func: "add", args: [2, 2] },
    { func: "add", args: [3, 3] },
  ]);
  await claimTasks(store, { cluster: "dead", workers: ["w", "w"] });
  await recoverCluster(store, "dead", { reason: "gone" });
  const crashed = (await t.queue.fetch(a!.id))!;
  assert.equal(crashed.state, "scheduled", "retried, though it had one attempt: a crash uses none");
  assert.deepEqual(crashed.crashedOn, ["dead"]);
  assert.equal(crashed.error?.name, "WorkerCrashError");
  assert.equal(retryTime(crashed, "Error", DEFAULT_RETRY, 0) === null, false);
  await promoteDue(store);
  // A claim that is not alone stops before the suspects at the head.
  let met = 0;
  const none = await claimTasks(store, {
    cluster: "c1",
    workers: ["w", "w", "w"],
    onSuspect: () => met++,
  });
  assert.deepEqual(none, []);
  assert.ok(met > 0);
  // Alone, it takes one suspect and nothing after it, and its claim entry says so.
  const [alone, ...more] = await claimTasks(store, {
    cluster: "c1",
    workers: ["w", "w", "w"],
    alone: true,
  });
  assert.equal(more.length, 0);
  assert.equal(alone!.record.id, a!.id);
  assert.equal(alone!.alone, true);
  const { leases } = await listLeases(store, "c1");
  assert.deepEqual(leases.map((l) => [l.id, l.alone]), [[a!.id, true]]);
  // Its cluster dies too, with it running alone: at the default 2 crashes, poison.
  await recoverCluster(store, "c1", { reason: "gone" });
  const poison = (await t.queue.fetch(a!.id))!;
  assert.equal(poison.state, "failed");
  assert.equal(poison.error?.name, "PoisonTaskError");
  assert.match(poison.error!.message, /2 times \(clusters dead, c1\)/);
  // The other suspect runs alone and ends as usual; the task behind it is claimed after it.
  await promoteDue(store);
  const [next] = await claimTasks(store, { cluster: "c2", workers: ["w", "w"], alone: true });
  assert.equal(next!.record.id, b!.id);
  // (Holding other claims back while it runs is its cluster's part: see pump.ts.)
  const [after] = await claimTasks(store, { cluster: "c2", workers: ["w"] });
  assert.equal(after!.record.id, c!.id);
  assert.equal(after!.alone, undefined);
  assert.deepEqual(await t.queue.counts(), await tally(t.queue));
  // Retried by hand, the poison starts over: no crashes, so it is no suspect.
  const again = await t.queue.retry(a!.id);
  assert.equal(again.crashes, 0);
});

test("a task that keeps crashing without ever running alone fails as poison at twice maxCrashes", async () => {
  await using t = await tempQueue();
  const store = t.queue.store;
  const { id } = await t.queue.enqueue("add", 1, 1);
  for (let i = 1; i <= 4; i++) {
    await promoteDue(store);
    const claimed = await claimTasks(store, { cluster: `k${i}`, workers: ["w"], alone: true });
    assert.equal(claimed.length, 1);
    // Drop the alone mark, as a claim entry of an older release would have none.
    for await (const e of store.kv.list({ prefix: store.keys.claimsOf(`k${i}`) })) {
      const v = JSON.parse(new TextDecoder().decode(e.value as Uint8Array));
      delete v.alone;
      await store.kv.set(e.key, new TextEncoder().encode(JSON.stringify(v)));
    }
    await recoverCluster(store, `k${i}`, { reason: "gone" });
    const r = (await t.queue.fetch(id))!;
    assert.equal(r.crashes, i);
    assert.equal(r.state, i < 4 ? "scheduled" : "failed", `after crash ${i}`);
  }
  assert.equal((await t.queue.fetch(id))!.error?.name, "PoisonTaskError");
});

test("a cluster serving two queues runs a suspect of its second queue while the first has work", async () => {
  using dir = tempDir();
  await using a = await openQueue({ kv: dir.kv, name: "a" });
  await using b = await openQueue({ kv: dir.kv, name: "b" });
  // A suspect in b: it was running when cluster "ghost" died.
  const { id } = await b.enqueue("add", 1, 1);
  await claimTasks(b.store, { cluster: "ghost", workers: ["w"] });
  await recoverCluster(b.store, "ghost", { reason: "gone" });
  await promoteDue(b.store);
  assert.equal((await b.fetch(id))!.crashes, 1);
  const work = await a.enqueueMany(
    Array.from({ length: 400 }, () => ({ func: "add", args: [2, 2] })),
  );
  const cluster = new Cluster({
    kv: dir.kv,
    tasks: [CLUSTER_TASKS],
    queues: ["a", "b"],
    workers: 1,
  });
  await cluster.start();
  try {
    const suspect = await b.wait(id, { wait: 20_000 });
    assert.equal(suspect.state, "succeeded");
    for (const t of work) await a.wait(t.id, { wait: 20_000 });
    const last = Math.max(
      ...(await Promise.all(work.map((t) => a.fetch(t.id)))).map((r) => r!.stoppedAt!),
    );
    assert.ok(
      suspect.stoppedAt! < last,
      "the suspect ran while queue a still had tasks, not after all of them",
    );
  } finally {
    await cluster.stop();
  }
});
