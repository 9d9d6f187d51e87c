/**
 * Partitions in the store: fair turns between them (weighted), per-partition limits at the
 * claim, their gauges, and the bad input they refuse.
 */
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { claimTasks } from "../../src/store/claim.ts";
import { completeTasks } from "../../src/store/complete.ts";
import { LimitError, readLimits } from "../../src/store/flow.ts";
import { readGate } from "../../src/store/gate.ts";
import { tempQueue } from "./_helpers.ts";
import { runInline } from "../../src/cluster/inline.ts";
import { recoverCluster } from "../../src/store/recover.ts";
import { storeTasks } from "../fixtures/store_tasks.ts";

const calls = (partition: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({ func: "add", args: [i, 0], partition }));

async function claimN(t: { queue: { store: Parameters<typeof claimTasks>[0] } }, n: number) {
  const out = [];
  while (out.length < n) {
    const got = await claimTasks(t.queue.store, {
      cluster: "c",
      workers: Array(Math.min(10, n - out.length)).fill("w"),
    });
    if (got.length === 0) break;
    out.push(...got);
  }
  return out;
}

test("partitions take turns: 10 tasks of B enqueued behind 2,000 of A start within the next 21", async () => {
  await using t = await tempQueue();
  await t.queue.enqueueMany(calls("A", 2000));
  const first = await claimN(t, 100);
  assert.ok(first.every((c) => c.record.partition === "A"));
  await t.queue.enqueueMany(calls("B", 10));
  const next = await claimN(t, 21);
  const b = next.filter((c) => c.record.partition === "B");
  assert.equal(b.length, 10, `B's tasks among the next 21: ${next.map((c) => c.record.partition)}`);
  // Within a partition, in enqueue order.
  assert.deepEqual(b.map((c) => c.record.args![0]), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const a = [...first, ...next].filter((c) => c.record.partition === "A");
  assert.deepEqual(a.map((c) => c.record.args![0]), a.map((_, i) => i), "A stays FIFO");
});

test("a partition of weight 3 takes three turns to another's one", async () => {
  await using t = await tempQueue();
  await t.queue.setLimits({ partitionWeights: { heavy: 3 } });
  await t.queue.enqueueMany([...calls("heavy", 60), ...calls("light", 60)]);
  const got = await claimN(t, 40);
  const heavy = got.filter((c) => c.record.partition === "heavy").length;
  assert.ok(heavy >= 28 && heavy <= 32, `heavy took ${heavy} of 40`);
});

test("partitionConcurrency 1: one task of each partition at a time, the next when one ends", async () => {
  await using t = await tempQueue();
  const limits = { partitionConcurrency: 1 };
  await t.queue.setLimits(limits);
  await t.queue.enqueueMany([...calls("p1", 3), ...calls("p2", 3), ...calls("p3", 3)]);
  const gate = () => readGate(t.queue.store, limits);
  const first = await claimTasks(t.queue.store, {
    cluster: "c",
    workers: Array(9).fill("w"),
    gate,
  });
  assert.deepEqual(first.map((c) => c.record.partition).sort(), ["p1", "p2", "p3"]);
  let gated: number | null | undefined;
  const none = await claimTasks(t.queue.store, {
    cluster: "c",
    workers: Array(9).fill("w"),
    gate,
    onGated: (at) => gated = at,
  });
  assert.deepEqual(none, []);
  assert.equal(gated, null, "full by concurrency: no time given");
  const counts = await t.queue.partitions();
  assert.deepEqual(counts.map((p) => [p.partition, p.queued, p.running]), [
    ["p1", 2, 1],
    ["p2", 2, 1],
    ["p3", 2, 1],
  ]);
  const done = first.find((c) => c.record.partition === "p2")!;
  await completeTasks(t.queue.store, [{ kind: "success", claimed: done, resultJson: "1" }]);
  const next = await claimTasks(t.queue.store, { cluster: "c", workers: Array(9).fill("w"), gate });
  assert.deepEqual(next.map((c) => c.record.partition), ["p2"]);
});

test("partitionRate 2/1m: two starts of each partition, then the time the next may start", async () => {
  await using t = await tempQueue();
  const limits = { partitionRate: { count: 2, ms: 60_000 } };
  await t.queue.setLimits(limits);
  await t.queue.enqueueMany([...calls("x", 5), ...calls("y", 1)]);
  const gate = () => readGate(t.queue.store, limits);
  const got = await claimTasks(t.queue.store, { cluster: "c", workers: Array(6).fill("w"), gate });
  assert.deepEqual(got.map((c) => c.record.partition).sort(), ["x", "x", "y"]);
  let gated: number | null | undefined;
  await claimTasks(t.queue.store, {
    cluster: "c",
    workers: ["w"],
    gate,
    onGated: (at) => gated = at,
  });
  assert.ok(typeof gated === "number" && gated > Date.now() + 50_000, `next at ${gated}`);
});

test("bad partitions and partition limits are refused by name, and nothing is stored", async () => {
  await using t = await tempQueue();
  for (
    const bad of [
      { partitionConcurrency: 0 },
      { partitionConcurrency: -1 },
      { partitionRate: "0/1s" },
      { partitionRate: "5/0s" },
      { partitionWeights: { a: 0 } },
      { partitionWeights: { a: 1.5 } },
      { partitionWeights: ["a"] },
    ]
  ) {
    await assert.rejects(
      t.queue.setLimits(bad as never),
      (e: Error) => e instanceof LimitError && /partition|rate/i.test(e.message),
      JSON.stringify(bad),
    );
  }
  assert.equal(await readLimits(t.queue.store), null);
  for (const partition of ["", 5, "x".repeat(257)]) {
    await assert.rejects(
      t.queue.enqueue({ func: "add", args: [1, 2], partition } as never),
      (e: Error) => e instanceof TypeError && e.message.includes("partition"),
    );
  }
  assert.equal((await t.queue.counts()).queued, 0);
});

test("runInline() obeys a queue's rate and partitionRate as a cluster does", async () => {
  await using t = await tempQueue();
  await t.queue.setLimits({ rate: "3/300ms", partitionRate: "1/300ms" });
  await t.queue.enqueueMany([...calls("x", 3), ...calls("y", 3)]);
  const t0 = Date.now();
  const report = await runInline(t.queue.store, { tasks: storeTasks as never, burst: true });
  assert.equal(report.succeeded, 6);
  const starts = (await t.queue.tasks({ state: "succeeded", limit: 10 })).tasks;
  for (const p of ["x", "y"]) {
    const mine = starts.filter((r) => r.partition === p).map((r) => r.startedAt!).sort();
    for (let i = 1; i < mine.length; i++) {
      assert.ok(mine[i]! - mine[i - 1]! >= 300, `${p}: starts ${mine.map((s) => s - t0)}`);
    }
  }
  assert.ok(Date.now() - t0 >= 600, `6 tasks, 1 per partition per 300 ms, took ${Date.now() - t0}`);
});

test("the places of a dead cluster's tasks, in all and per partition, free when its lease is recovered", async () => {
  await using t = await tempQueue();
  const limits = { concurrency: 1, partitionConcurrency: 1 };
  await t.queue.setLimits(limits);
  await t.queue.enqueueMany(calls("p", 2));
  const gate = () => readGate(t.queue.store, limits);
  const [taken] = await claimTasks(t.queue.store, { cluster: "dead", workers: ["w"], gate });
  assert.ok(taken);
  assert.deepEqual(
    await claimTasks(t.queue.store, { cluster: "live", workers: ["w"], gate }),
    [],
    "both places are held by the dead cluster's task",
  );
  await recoverCluster(t.queue.store, "dead", { reason: "gone" });
  const again = await claimTasks(t.queue.store, { cluster: "live", workers: ["w"], gate });
  assert.equal(again.length, 1, "recovery freed the places");
  // The dead cluster's task waits for its retry (a crash, counted apart); the other runs.
  assert.deepEqual(
    (await t.queue.partitions()).map((p) => [p.partition, p.running, p.queued, p.scheduled]),
    [["p", 1, 0, 1]],
  );
});

test("two claims from one reading of the limits can't both take a partition's last place", async () => {
  await using t = await tempQueue();
  for (
    const limits of [{ partitionConcurrency: 1 }, { partitionRate: "1/1m" }, { concurrency: 1 }]
  ) {
    await t.queue.setLimits(limits);
    await t.queue.enqueueMany(calls(`p-${JSON.stringify(limits)}`, 2));
    // Both claimers read the limits, and the partition's counters, before either commits (as
    // two clusters racing may).
    const partition = `p-${JSON.stringify(limits)}`;
    const reading = async () => {
      const gate = await readGate(t.queue.store, (await t.queue.limits())!);
      const picks = await gate.partitions?.open([partition]);
      const partitions = gate.partitions &&
        { ...gate.partitions, open: () => Promise.resolve(picks!) };
      return () => Promise.resolve({ ...gate, add: gate.add, partitions });
    };
    const [a, b] = [await reading(), await reading()];
    const first = await claimTasks(t.queue.store, { cluster: "a", workers: ["w"], gate: a });
    const second = await claimTasks(t.queue.store, { cluster: "b", workers: ["w"], gate: b });
    assert.equal(first.length, 1, JSON.stringify(limits));
    assert.deepEqual(second, [], `${JSON.stringify(limits)}: the second claim lost`);
    await completeTasks(t.queue.store, [{ kind: "success", claimed: first[0]!, resultJson: "1" }]);
    await t.queue.clearLimits();
    const rest = await claimTasks(t.queue.store, { cluster: "c", workers: ["w", "w"] });
    await completeTasks(
      t.queue.store,
      rest.map((c) => ({ kind: "success" as const, claimed: c, resultJson: "1" })),
    );
  }
});
