/**
 * Start-by deadlines (`expireIn`): a task not started by then ends `cancelled` with a
 * `TaskExpiredError` and never runs, whether a claim meets it first or the deadline passes
 * while its queue is paused; one that started runs and retries as usual; bad values store
 * nothing.
 */
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Cluster } from "../../src/cluster/cluster.ts";
import { runInline } from "../../src/cluster/inline.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { claimTasks } from "../../src/store/claim.ts";
import { completeTasks } from "../../src/store/complete.ts";
import { expireDue } from "../../src/store/expire.ts";
import { storeTasks } from "../fixtures/store_tasks.ts";
import { CLUSTER_TASKS, tempDir } from "../cluster/_process.ts";
import { kvq } from "../cli/_helpers.ts";
import { tally, tempQueue } from "../store/_helpers.ts";

const tasks = storeTasks as ReadonlyMap<string, (...args: unknown[]) => unknown>;

test("a task not started by its deadline ends cancelled as expired, and never runs", async () => {
  let now = 1_800_000_000_000;
  await using t = await tempQueue({ clock: () => now });
  const late = await t.queue.enqueue({ func: "add", args: [1, 1], expireIn: 1_000 });
  const delayed = await t.queue.enqueue({
    func: "add",
    args: [2, 2],
    delay: 500,
    expireIn: 2_000,
  });
  const other = await t.queue.enqueue("add", 3, 3);
  assert.equal(late.record.expiresAt, now + 1_000);
  now += 2_500;
  const ran: string[] = [];
  const report = await runInline(t.queue.store, {
    tasks,
    burst: true,
    onDone: (o) => ran.push(o.claimed.record.id),
  });
  assert.deepEqual(ran, [other.id], "only the task without a deadline ran");
  assert.equal(report.processed, 1);
  for (const id of [late.id, delayed.id]) {
    const r = (await t.queue.fetch(id))!;
    assert.equal(r.state, "cancelled");
    assert.equal(r.attempt, 0);
    assert.equal(r.error?.name, "TaskExpiredError");
    assert.match(r.error!.message, /deadline \(expireIn\)/);
  }
  assert.deepEqual(await t.queue.counts(), await tally(t.queue));
  const left = [];
  for await (const e of t.queue.store.kv.list({ prefix: t.queue.store.keys.expiringPrefix })) {
    left.push(e.key);
  }
  assert.deepEqual(left, [], "their deadlines are gone");
  // Retried by hand, it has no deadline: it runs.
  const again = await t.queue.retry(late.id);
  assert.equal(again.expiresAt, null);
  await runInline(t.queue.store, { tasks, burst: true });
  assert.equal(await t.queue.result(late.id), 2);
});

test("a claim never starts a task past its deadline, even before the expiry pass ran", async () => {
  let now = 1_800_000_000_000;
  await using t = await tempQueue({ clock: () => now });
  const late = await t.queue.enqueue({ func: "add", args: [1, 1], expireIn: 1_000 });
  const next = await t.queue.enqueue("add", 2, 2);
  now += 1_000;
  let met = 0;
  const claimed = await claimTasks(t.queue.store, {
    cluster: "c",
    workers: ["w", "w"],
    onExpired: () => met++,
  });
  assert.deepEqual(claimed.map((c) => c.record.id), [next.id]);
  assert.ok(met > 0, "the claim says it met one");
  assert.equal((await t.queue.fetch(late.id))!.state, "queued", "left for the expiry pass");
  assert.equal((await expireDue(t.queue.store)).expired, 1);
  assert.equal((await t.queue.fetch(late.id))!.state, "cancelled");
});

test("a task that started before its deadline runs and retries past it", async () => {
  let now = 1_800_000_000_000;
  await using t = await tempQueue({ clock: () => now });
  const { id } = await t.queue.enqueue({
    func: "boom",
    args: [],
    expireIn: 1_000,
    maxAttempts: 2,
    backoff: { type: "fixed", delay: 5_000 },
  });
  const [claimed] = await claimTasks(t.queue.store, { cluster: "c", workers: ["w"] });
  assert.equal(claimed!.record.id, id);
  await completeTasks(t.queue.store, [{
    kind: "failure",
    claimed: claimed!,
    error: { name: "RangeError", message: "boom" },
    retryAt: now + 5_000,
  }]);
  now += 6_000;
  assert.deepEqual(await expireDue(t.queue.store), { expired: 0, nextAt: null });
  const report = await runInline(t.queue.store, { tasks, burst: true });
  assert.equal(report.processed, 1, "the retry ran");
  const r = (await t.queue.fetch(id))!;
  assert.equal(r.state, "failed");
  assert.equal(r.attempt, 2);
});

test("expireIn on a paused queue: a running cluster ends the task when its deadline passes", async () => {
  using dir = tempDir();
  const marker = join(dir.path, "ran.txt");
  await using queue = await openQueue({ kv: dir.kv });
  await queue.pause("maintenance");
  const cluster = new Cluster({ kv: dir.kv, tasks: [CLUSTER_TASKS], workers: 1 });
  await cluster.start();
  try {
    const { id } = await queue.enqueue({ func: "record", args: [marker], expireIn: 300 });
    const ended = await queue.wait(id, { wait: 5_000 });
    assert.equal(ended.state, "cancelled");
    assert.equal(ended.error?.name, "TaskExpiredError");
    assert.ok(ended.stoppedAt! >= ended.expiresAt!, "not before its deadline");
    assert.ok(ended.stoppedAt! - ended.expiresAt! < 2_000, "soon after it");
    await queue.resume();
    const after = await queue.enqueue("add", 1, 2);
    assert.equal(await queue.result(after.id, { wait: 10_000 }), 3);
    assert.equal(existsSync(marker), false, "the expired task never ran");
  } finally {
    await cluster.stop();
  }
});

test("bad expireIn values are refused with the option and the value, and nothing is stored", async () => {
  await using t = await tempQueue();
  const bad: [unknown, RegExp][] = [
    [0, /Option expireIn .* must be whole milliseconds from 1 .*: received 0/],
    [-5, /received -5/],
    [1.5, /received 1\.5/],
    ["soon", /received "soon"/],
    [Number.NaN, /received null/],
  ];
  for (const [expireIn, message] of bad) {
    await assert.rejects(
      t.queue.enqueue({ func: "add", args: [1, 1], expireIn: expireIn as number }),
      (e: Error) => e instanceof TypeError && message.test(e.message),
    );
  }
  await assert.rejects(
    t.queue.enqueue({ func: "add", args: [1, 1], delay: 1_000, expireIn: 1_000 }),
    /expireIn .* must end after the task may start \(delay 1000 ms\), or it could never run/,
  );
  assert.equal((await t.queue.tasks()).tasks.length, 0);
  const cli = await kvq(["enqueue", "add", "--expire-in", "soon", "--kv", t.path]);
  assert.equal(cli.code, 2);
  assert.match(cli.err, /--expire-in/);
  const shown = await kvq([
    "enqueue",
    "add",
    "--args",
    "[1,2]",
    "--expire-in",
    "60000",
    "--kv",
    t.path,
  ]);
  assert.equal(shown.code, 0, shown.err);
  const task = await kvq(["task", shown.out.trim().split(" ")[0]!, "--kv", t.path]);
  assert.match(task.out, /start by {4}\d{4}-/);
});
