import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { tempQueue } from "../store/_helpers.ts";
import { drain, withCluster } from "./_helpers.ts";

test("Queue.chain() runs steps in order, passing each result on, and keeps results with save: false", async () => {
  await using t = await tempQueue();
  const { queue } = t;
  const id = await queue.chain([
    { func: "add", args: [1, 2], save: false },
    { func: "double", args: [], save: false },
    { func: "double", args: [] },
  ], { passResult: true, group: "g" });
  let status = await queue.chainStatus(id);
  assert.equal(status.state, "running");
  assert.equal(status.current, 0);
  assert.deepEqual(status.results, [null, null, null]);
  assert.deepEqual(status.steps.map((s) => s.state), ["queued", "pending", "pending"]);
  // Only the first step exists until it succeeds.
  assert.equal((await queue.tasks()).tasks.length, 1);
  await drain(queue);
  status = await queue.chainStatus(id);
  assert.equal(status.state, "succeeded");
  assert.equal(status.current, 2);
  assert.deepEqual(status.results, [3, 6, 12]);
  assert.deepEqual(status.steps.map((s) => s.state), ["succeeded", "succeeded", "succeeded"]);
  const records = await Promise.all(status.steps.map((s) => queue.fetch(s.task!)));
  assert.deepEqual(records.map((r) => r!.args), [[1, 2], [3], [6]]);
  assert.deepEqual(records.map((r) => r!.group), ["g", "g", "g"]);
  assert.equal(records[0]!.result, undefined, "save: false keeps no result in the record");
  // Each step was created once the previous one had succeeded.
  for (let i = 1; i < records.length; i++) {
    assert.ok(records[i]!.enqueuedAt >= records[i - 1]!.stoppedAt!);
  }
});

test("Queue.chain() without passResult gives each step only its own arguments", async () => {
  await using t = await tempQueue();
  const id = await t.queue.chain([{ func: "echo", args: [1] }, { func: "echo", args: [2] }]);
  await drain(t.queue);
  assert.deepEqual((await t.queue.chainStatus(id)).results, [[1], [2]]);
});

test("Queue.chain() stops at a step that fails for good and reports the rest cancelled", async () => {
  await using t = await tempQueue();
  const { queue } = t;
  const id = await queue.chain([
    { func: "add", args: [1, 2] },
    { func: "fail", args: ["step 1 broke"], maxAttempts: 1 },
    { func: "add", args: [3, 4] },
  ]);
  await drain(queue);
  const status = await queue.chainStatus(id);
  assert.equal(status.state, "failed");
  assert.equal(status.current, 1);
  assert.deepEqual(status.results, [3, null, null]);
  assert.deepEqual(status.steps.map((s) => s.state), ["succeeded", "failed", "cancelled"]);
  assert.equal(status.steps[2]!.task, null, "the step after the failure is never created");
  assert.equal(status.error?.name, "RangeError");
  assert.match(status.error!.message, /step 1 broke/);
  assert.equal((await queue.tasks()).tasks.length, 2);
});

test("Queue.chain() goes on after a step's retry succeeds", async () => {
  await using t = await tempQueue();
  const id = await t.queue.chain([
    { func: "failFirst", args: [], maxAttempts: 2, backoff: { type: "fixed", delay: 0 } },
    { func: "add", args: [1, 1] },
  ]);
  await drain(t.queue);
  await drain(t.queue); // the retry was scheduled at once; a second pass runs it
  const status = await t.queue.chainStatus(id);
  assert.equal(status.state, "succeeded", JSON.stringify(status));
  assert.deepEqual(status.results, [2, 2]);
});

test("Queue.chain() stops at a step naming an unknown task, with TaskNotFoundError", async () => {
  await using t = await tempQueue();
  const id = await t.queue.chain([{ func: "add", args: [1, 2] }, { func: "noSuchTask", args: [] }, {
    func: "add",
    args: [0, 0],
  }]);
  await drain(t.queue);
  const status = await t.queue.chainStatus(id);
  assert.equal(status.state, "failed");
  assert.equal(status.current, 1);
  assert.equal(status.error?.name, "TaskNotFoundError");
});

test("Queue.chain() refuses bad steps up front and stores nothing", async () => {
  await using t = await tempQueue();
  const { queue } = t;
  await assert.rejects(
    queue.chain([{ func: "add", args: [1, 2] }, { func: "add", args: [] }, {
      func: "not a name",
      args: [],
    }]),
    (e: Error) => e instanceof TypeError && /step 2 of the chain/.test(e.message),
  );
  await assert.rejects(queue.chain([]), TypeError);
  await assert.rejects(queue.chain("add" as never), TypeError);
  await assert.rejects(
    queue.chain([{ func: "add", args: [], priority: 0.5 }]),
    /Option priority of add \(step 0 of the chain\)/,
  );
  await assert.rejects(queue.chain([{ func: "add", args: [], unique: "k" }]), /unique/);
  await assert.rejects(queue.chain([{ func: "add" }], { passResult: "yes" as never }), TypeError);
  assert.equal((await queue.tasks()).tasks.length, 0);
  const left = [];
  for await (const e of queue.store.kv.list({ prefix: queue.store.keys.prefix })) left.push(e.key);
  assert.deepEqual(left, [], "no partial state");
  await assert.rejects(queue.chainStatus("0190a0a0-0000-7000-8000-000000000000"), /No chain/);
});

test("Queue.chain() cancelling a waiting step ends the chain failed", async () => {
  await using t = await tempQueue();
  const id = await t.queue.chain([{ func: "add", args: [1, 2], delay: 60_000 }, {
    func: "add",
    args: [1, 1],
  }]);
  const first = (await t.queue.chainStatus(id)).steps[0]!.task!;
  assert.equal(await t.queue.cancel(first), "cancelled");
  const status = await t.queue.chainStatus(id);
  assert.equal(status.state, "failed");
  assert.deepEqual(status.steps.map((s) => s.state), ["cancelled", "cancelled"]);
});

test("Queue.chain() runs on a real cluster and waitChain() wakes when it ends", async () => {
  await withCluster({ workers: 2 }, async (_cluster, queue) => {
    const id = await queue.chain([
      { func: "add", args: [2, 3] },
      { func: "double", args: [] },
      { func: "big", args: [70_000], save: false },
    ], { passResult: false });
    const status = await queue.waitChain(id, { wait: 20_000 });
    assert.equal(status.state, "succeeded", JSON.stringify(status.error));
    assert.equal(status.results[0], 5);
    // A result over one KV value is kept in chunks even with save: false.
    assert.equal((status.results[2] as string).length, 70_000);
  });
});

test("kvq result --chain and --iter print a chain's status and an iter's results", async () => {
  const { kvq } = await import("../cli/_helpers.ts");
  await using t = await tempQueue();
  const chain = await t.queue.chain([{ func: "add", args: [1, 2] }, { func: "double" }], {
    passResult: true,
  });
  const iter = await t.queue.iter("double", [1, 2]);
  const pending = await kvq(["result", "--kv", t.path, "--iter", iter]);
  assert.equal(pending.code, 3);
  await drain(t.queue);
  const c = await kvq(["result", "--kv", t.path, "--chain", chain, "--json"]);
  assert.equal(c.code, 0, c.err);
  assert.deepEqual(JSON.parse(c.out).results, [3, 6]);
  const i = await kvq(["result", "--kv", t.path, "--iter", iter]);
  assert.equal(i.code, 0, i.err);
  assert.deepEqual(JSON.parse(i.out), [2, 4]);
  const none = await kvq([
    "result",
    "--kv",
    t.path,
    "--chain",
    "0190a0a0-0000-7000-8000-000000000000",
  ]);
  assert.equal(none.code, 4);
});
