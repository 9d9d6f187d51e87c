import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { UniqueTaskError } from "../../src/store/enqueue.ts";
import { claimTasks } from "../../src/store/claim.ts";
import { promoteDue } from "../../src/store/promote.ts";
import { recoverCluster } from "../../src/store/recover.ts";
import { KV_MAX_KEY_BYTES } from "../../src/store/limits.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { spawnFixture, succeeded, tempQueue } from "../store/_helpers.ts";
import { drain } from "./_helpers.ts";

test("unique keep returns the task that holds the key", async () => {
  await using t = await tempQueue();
  const { queue } = t;
  const a = await queue.enqueue({ func: "add", args: [1, 2], unique: "k" });
  const b = await queue.enqueue({ func: "add", args: [3, 4], unique: { key: "k", mode: "keep" } });
  assert.equal(a.existing, false);
  assert.equal(b.existing, true);
  assert.equal(b.id, a.id);
  assert.equal((await queue.tasks()).tasks.length, 1);
  assert.equal((await queue.fetch(a.id))!.unique, "k");
});

test("unique reject throws UniqueTaskError naming the key and the holder", async () => {
  await using t = await tempQueue();
  const a = await t.queue.enqueue({ func: "add", args: [1, 2], unique: "k" });
  await assert.rejects(
    t.queue.enqueue({ func: "add", args: [1, 2], unique: { key: "k", mode: "reject" } }),
    (e: Error) =>
      e instanceof UniqueTaskError && e.key === "k" && e.holder === a.id &&
      e.message.includes(a.id) && e.message.includes('"k"'),
  );
});

test("unique replace cancels a waiting holder and enqueues the new task; a running holder is kept", async () => {
  await using t = await tempQueue();
  const { queue } = t;
  const a = await queue.enqueue({ func: "add", args: [1, 2], unique: "k", delay: 60_000 });
  const b = await queue.enqueue({
    func: "add",
    args: [5, 5],
    unique: { key: "k", mode: "replace" },
  });
  assert.equal(b.existing, false);
  assert.notEqual(b.id, a.id);
  const old = (await queue.fetch(a.id))!;
  assert.equal(old.state, "cancelled");
  assert.equal(old.error?.name, "TaskReplacedError");
  assert.equal((await queue.counts()).cancelled, 1);
  assert.equal((await queue.counts()).queued, 1);
  assert.equal((await queue.counts()).scheduled, 0);
  // b runs: while it runs, replace keeps it.
  const [claimed] = await claimTasks(queue.store, { cluster: "c", workers: ["w"] });
  assert.equal(claimed!.record.id, b.id);
  const c = await queue.enqueue({
    func: "add",
    args: [0, 0],
    unique: { key: "k", mode: "replace" },
  });
  assert.equal(c.existing, true);
  assert.equal(c.id, b.id);
});

test("a unique key is released with the task's final outcome: success, cancel, delete, lease recovery", async () => {
  await using t = await tempQueue();
  const { queue } = t;
  const fresh = async () => {
    const task = await queue.enqueue({
      func: "add",
      args: [1, 1],
      unique: { key: "k", mode: "reject" },
    });
    assert.equal(task.existing, false);
    return task;
  };
  const a = await fresh();
  await drain(queue);
  assert.equal((await queue.fetch(a.id))!.state, "succeeded");
  const b = await fresh();
  await queue.cancel(b.id);
  const c = await fresh();
  await queue.delete(c.id);
  const d = await fresh();
  // Its cluster dies while it runs: a crash, retried, and it still holds the key. Run alone,
  // it takes down the next one too: poison, failed for good, and the key is free.
  await claimTasks(queue.store, { cluster: "dead", workers: ["w"] });
  await assert.rejects(
    queue.enqueue({ func: "add", unique: { key: "k", mode: "reject" } }),
    UniqueTaskError,
  );
  await recoverCluster(queue.store, "dead", { reason: "gone", maxCrashes: 1 });
  assert.equal((await queue.fetch(d.id))!.state, "scheduled");
  await promoteDue(queue.store);
  await claimTasks(queue.store, { cluster: "dead2", workers: ["w"], alone: true });
  await recoverCluster(queue.store, "dead2", { reason: "gone", maxCrashes: 1 });
  assert.equal((await queue.fetch(d.id))!.error?.name, "PoisonTaskError");
  assert.equal((await queue.fetch(d.id))!.state, "failed");
  const e = await fresh();
  // A retried task takes its key again; while another holds it, the retry is refused.
  await queue.cancel(e.id);
  await queue.retry(e.id);
  await assert.rejects(fresh(), UniqueTaskError);
  await queue.cancel(e.id);
  await fresh();
  await assert.rejects(queue.retry(e.id), UniqueTaskError);
});

test("unique key over the KV key size limit is a RangeError naming the limit; bad options are refused", async () => {
  await using t = await tempQueue();
  await assert.rejects(
    t.queue.enqueue({ func: "add", unique: "x".repeat(KV_MAX_KEY_BYTES) }),
    (e: Error) => e instanceof RangeError && e.message.includes(`${KV_MAX_KEY_BYTES}-byte`),
  );
  await assert.rejects(t.queue.enqueue({ func: "add", unique: "" }), TypeError);
  await assert.rejects(
    t.queue.enqueue({ func: "add", unique: { key: "k", mode: "merge" as never } }),
    /unique.mode/,
  );
  assert.equal((await t.queue.tasks()).tasks.length, 0);
});

test("Queue.enqueueIn() with a unique key: the app's commit fails while the key is held", async () => {
  await using t = await tempQueue();
  const { queue } = t;
  const kv = queue.store.kv;
  const first = kv.atomic().set(["app", 1], "one");
  queue.enqueueIn(first, [{ func: "add", args: [1, 2], unique: "order-1" }]);
  assert.equal((await first.commit()).ok, true);
  const second = kv.atomic().set(["app", 2], "two");
  queue.enqueueIn(second, [{ func: "add", args: [1, 2], unique: "order-1" }]);
  assert.equal((await second.commit()).ok, false);
  assert.equal((await kv.get(["app", 2])).versionstamp, null);
  assert.throws(
    () => queue.enqueueIn(kv.atomic(), [{ func: "add", unique: { key: "x", mode: "replace" } }]),
    /replace/,
  );
  assert.equal((await queue.tasks()).tasks.length, 1);
});

for (const mode of ["keep", "reject", "replace"] as const) {
  test(`unique ${mode}: enqueuers racing in separate processes leave exactly one task`, {
    timeout: 120_000,
  }, async () => {
    await using t = await tempQueue();
    const children = Array.from(
      { length: 4 },
      () => spawnFixture("self", "unique_racer.ts", [t.path, "race", mode]),
    );
    const lines = (await Promise.all(children.map(succeeded))).map((out) =>
      JSON.parse(out.trim().split("\n").pop()!)
    );
    const reader = await openQueue({ kv: t.path });
    try {
      const all = (await reader.tasks()).tasks;
      const live = all.filter((r) => !r.finished);
      assert.equal(live.length, 1, JSON.stringify(lines));
      const holder = live[0]!.id;
      if (mode === "keep") {
        assert.equal(all.length, 1);
        assert.ok(lines.every((l) => l.id === holder), JSON.stringify(lines));
        assert.equal(lines.filter((l) => !l.existing).length, 1);
      } else if (mode === "reject") {
        assert.equal(all.length, 1);
        assert.equal(lines.filter((l) => l.id === holder).length, 1);
        assert.ok(lines.filter((l) => l.error).every((l) => l.holder === holder));
      } else {
        // Each replace cancelled the one before it; one is left waiting.
        assert.ok(all.filter((r) => r.finished).every((r) => r.state === "cancelled"));
      }
    } finally {
      reader.close();
    }
  });
}
