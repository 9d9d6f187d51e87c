/**
 * Push-back (`this.rateLimited(ms)`, `RateLimitedError`): the task waits again without using an
 * attempt, and its queue starts nothing for `ms` on every cluster, through a hold stored on the
 * queue's pause key; a bad `ms` is an ordinary failure that names it.
 */
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Cluster } from "../../src/cluster/cluster.ts";
import { runInline } from "../../src/cluster/inline.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { delay } from "../../src/runtime/delay.ts";
import { storeTasks } from "../fixtures/store_tasks.ts";
import { tempQueue } from "../store/_helpers.ts";
import { CLUSTER_TASKS, tempDir } from "./_process.ts";

const tasks = storeTasks as ReadonlyMap<string, (...args: unknown[]) => unknown>;

test("rateLimited(500) in a cluster: re-run after 500 ms, attempt unchanged, its queue starts nothing meanwhile", async () => {
  using dir = tempDir();
  const log = join(dir.path, "starts.txt");
  await using queue = await openQueue({ kv: dir.kv });
  const cluster = new Cluster({ kv: dir.kv, tasks: [CLUSTER_TASKS], workers: 2 });
  await cluster.start();
  try {
    const limited = await queue.enqueue("pushBackOnce", log, 500);
    // Once it was pushed back: a task enqueued before could start beside it, in the other
    // worker, before the push-back reached the cluster.
    for (let i = 0; i < 500 && (await queue.fetch(limited.id))?.state !== "scheduled"; i++) {
      await delay(10);
    }
    const others = await queue.enqueueMany(
      Array.from({ length: 8 }, () => ({ func: "stamp", args: [log] })),
    );
    let hold = await queue.paused();
    for (let i = 0; i < 100 && hold === null; i++) {
      hold = await delay(10).then(() => queue.paused());
    }
    assert.ok(hold !== null && hold.until !== null, "the queue is held for a time");
    assert.match(hold.reason ?? "", new RegExp(`rate limited by task ${limited.id}`));
    const done = await queue.wait(limited.id, { wait: 10_000 });
    assert.equal(done.state, "succeeded");
    assert.equal(done.attempt, 1, "the push-back used no attempt");
    for (const o of others) {
      assert.equal((await queue.wait(o.id, { wait: 10_000 })).state, "succeeded");
    }
    const starts = readFileSync(log, "utf8").trim().split("\n").map((l) => {
      const [id, , at] = l.split(" ");
      return { id: id!, at: Number(at) };
    });
    const mine = starts.filter((s) => s.id === limited.id).map((s) => s.at);
    assert.equal(mine.length, 2);
    assert.ok(mine[1]! - mine[0]! >= 500, `re-run ${mine[1]! - mine[0]!} ms later`);
    for (const s of starts.filter((s) => s.id !== limited.id)) {
      assert.ok(
        s.at >= mine[0]! + 500,
        `task ${s.id} started ${s.at - mine[0]!} ms after the push-back`,
      );
    }
    assert.equal(await queue.paused(), null, "the hold is over");
  } finally {
    await cluster.stop();
  }
});

test("a RateLimitedError thrown by a task holds its queue until its time; a manual pause is kept", async () => {
  let now = 1_800_000_000_000;
  await using t = await tempQueue({ clock: () => now });
  const { id } = await t.queue.enqueue("limitedOnce", 2_000);
  const other = await t.queue.enqueue("add", 1, 2);
  const first = await runInline(t.queue.store, { tasks, burst: true, batch: 1 });
  assert.deepEqual(first, { processed: 1, succeeded: 0, failed: 0 }, "pushed back, not failed");
  const waiting = (await t.queue.fetch(id))!;
  assert.equal(waiting.state, "scheduled");
  assert.equal(waiting.attempt, 0);
  assert.equal(waiting.runAt, now + 2_000);
  assert.equal(waiting.error?.name, "RateLimitedError");
  assert.equal(waiting.error?.retryAfter, 2_000);
  assert.equal((await t.queue.paused())?.until, now + 2_000);
  assert.equal((await t.queue.fetch(other.id))!.state, "queued", "nothing else started");
  now += 2_000;
  assert.equal(await t.queue.paused(), null);
  await runInline(t.queue.store, { tasks, burst: true });
  assert.equal(await t.queue.result(id), "ok");
  assert.equal((await t.queue.fetch(id))!.attempt, 1);
  assert.equal(await t.queue.result(other.id), 3);
  // A push-back never lifts a pause made by hand.
  await t.queue.pause("maintenance");
  const again = await t.queue.enqueue("limitedOnce", 1_000);
  await t.queue.resume();
  await runInline(t.queue.store, { tasks, burst: true, batch: 1 });
  await t.queue.pause("maintenance");
  assert.equal((await t.queue.paused())?.until, null);
  assert.equal((await t.queue.fetch(again.id))!.state, "scheduled");
});

test("rateLimited() with a bad value fails the attempt with a RangeError naming it", async () => {
  await using t = await tempQueue();
  for (const bad of [-1, 0, null, "soon"]) {
    const { id } = await t.queue.enqueue({ func: "pushBack", args: [bad], maxAttempts: 1 });
    await runInline(t.queue.store, { tasks, burst: true });
    const r = (await t.queue.fetch(id))!;
    assert.equal(r.state, "failed");
    assert.equal(r.error?.name, "RangeError");
    assert.match(r.error!.message, /rateLimited\(\) needs milliseconds from 1 to \d+: received/);
  }
  assert.equal(await t.queue.paused(), null);
});
