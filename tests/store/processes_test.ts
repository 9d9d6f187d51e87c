import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { runInline } from "../../src/cluster/inline.ts";
import { bigText } from "../fixtures/store_child.ts";
import { storeTasks } from "../fixtures/store_tasks.ts";
import { type Child, onDeno, spawnFixture, succeeded, tally, tempQueue } from "./_helpers.ts";

const tasks = storeTasks as ReadonlyMap<string, (...args: unknown[]) => unknown>;

test("claimTasks() never hands one task to two processes racing on one file", {
  timeout: 120_000,
}, async () => {
  await using t = await tempQueue();
  const total = 2_000;
  await t.queue.enqueueMany(Array.from({ length: total }, (_, i) => ({ func: "mark", args: [i] })));
  const children: Child[] = [1, 4, 10, 32].map((batch) =>
    spawnFixture("self", "store_child.ts", ["claim", t.path, String(batch)])
  );
  await Promise.all(children.map((c) => c.line((l) => l === "ready")));
  for (const c of children) c.child.stdin!.end("go\n");
  const outputs = await Promise.all(children.map(succeeded));
  const ran = outputs.map((o) => JSON.parse(o.trim().split("\n").at(-1)!).ran as number[]);
  const all = ran.flat();
  assert.equal(all.length, total, `ran ${all.length} attempts for ${total} tasks`);
  assert.equal(new Set(all).size, total, "every task ran exactly once");
  assert.ok(ran.filter((r) => r.length > 0).length >= 2, "the processes really raced");
  const counts = await t.queue.counts();
  assert.deepEqual(counts, await tally(t.queue));
  assert.equal(counts.succeeded, total);
  assert.equal(counts.queued + counts.running, 0);
});

test("Queue.result() wakes when another process completes the task", {
  timeout: 120_000,
}, async () => {
  await using t = await tempQueue();
  const { id } = await t.queue.enqueue("add", 40, 2);
  const started = Date.now();
  const waiting = t.queue.result(id, { wait: 20_000 });
  const child = spawnFixture("self", "store_child.ts", ["run", t.path]);
  const [value, exit] = await Promise.all([waiting, child.exited]);
  assert.equal(exit.code, 0, exit.stderr);
  assert.equal(value, 42);
  assert.ok(Date.now() - started < 15_000, "woken by the change, not by the end of the wait");
});

test("Queue reads a KV file the other runtime wrote, and the other way round", {
  timeout: 120_000,
}, async () => {
  const other = onDeno ? "bun" : "deno";
  {
    await using t = await tempQueue();
    const wrote = JSON.parse(
      await succeeded(spawnFixture("other", "store_child.ts", ["write", t.path])),
    );
    const add = (await t.queue.fetch(wrote.add))!;
    assert.equal(add.state, "succeeded", `written by ${other}`);
    assert.equal(add.group, "cross");
    assert.equal(await t.queue.result(wrote.add), 42);
    assert.deepEqual(await t.queue.result(wrote.big), [bigText()]);
    assert.deepEqual((await t.queue.fetch(wrote.big))!.args, [bigText()]);
    assert.equal((await t.queue.fetch(wrote.failed))!.error!.message, "from afar");
    assert.equal((await t.queue.fetch(wrote.waiting))!.state, "scheduled");
    const counts = await t.queue.counts();
    assert.deepEqual(counts, await tally(t.queue));
    assert.deepEqual([counts.succeeded, counts.failed, counts.scheduled], [2, 1, 1]);
    // And this runtime can go on working on it.
    const more = await t.queue.enqueue("add", 1, 2);
    await runInline(t.queue.store, { tasks, burst: true });
    assert.equal(await t.queue.result(more.id), 3);
  }
  {
    await using t = await tempQueue();
    const add = await t.queue.enqueue({ func: "add", args: [2, 3], group: "cross" });
    const big = await t.queue.enqueue("echo", bigText());
    const bad = await t.queue.enqueue({ func: "boom", args: ["here"], maxAttempts: 1 });
    await runInline(t.queue.store, { tasks, burst: true });
    const queued = await t.queue.enqueue("add", 0, 0);
    t.queue.close();
    const read = JSON.parse(
      await succeeded(spawnFixture("other", "store_child.ts", ["read", t.path])),
    );
    assert.deepEqual(read.tasks[add.id], {
      name: add.name,
      state: "succeeded",
      func: "add",
      argsLength: 5,
      bigArgs: false,
      result: 5,
      error: null,
      group: "cross",
    });
    assert.equal(read.tasks[big.id].bigArgs, true, `${other} read the chunked args`);
    assert.equal(read.tasks[big.id].result[0], bigText());
    assert.equal(read.tasks[bad.id].error, "here");
    assert.equal(read.tasks[queued.id].state, "queued");
    assert.deepEqual(
      [read.counts.succeeded, read.counts.failed, read.counts.queued],
      [2, 1, 1],
    );
  }
});
