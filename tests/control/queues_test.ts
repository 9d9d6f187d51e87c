import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { Cluster, parseQueueWeights } from "../../src/cluster/cluster.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { kvq } from "../cli/_helpers.ts";
import { queueNameOf } from "../../src/cli/commands/info.ts";
import { tempDir } from "../store/_helpers.ts";
import { CONTROL_TASKS, withCluster } from "./_helpers.ts";
import { CLUSTER_TASKS } from "../cluster/_process.ts";
import { readFileSync } from "node:fs";

test("Queue.pause(): the cluster finishes what runs and claims nothing more until resume()", async () => {
  await withCluster({ workers: 1, queues: ["a", "b"] }, async (cluster, _default, kv) => {
    const a = await openQueue({ kv, name: "a" });
    const b = await openQueue({ kv, name: "b" });
    try {
      // Listening first: the task may start before enqueue() returns.
      const started = cluster.once("task:start", (e) => e.record.func === "waitForAbort");
      const running = await a.enqueue({ func: "waitForAbort", maxAttempts: 1 });
      await started;
      await a.pause("maintenance");
      assert.equal((await a.paused())?.reason, "maintenance");
      assert.equal(await b.paused(), null);
      // The running task goes on until it ends (here: cancelled).
      await a.cancel(running.id);
      assert.equal((await a.wait(running.id, { wait: 10_000 })).state, "cancelled");
      const held = await a.enqueue("add", 1, 1);
      // b's task was enqueued after a's and runs: the cluster claimed, and skipped a.
      const other = await b.enqueue("add", 2, 2);
      assert.equal(await b.result(other.id, { wait: 10_000 }), 4);
      assert.equal((await a.fetch(held.id))!.state, "queued");
      assert.equal(await a.queueSize(), 1);
      assert.equal(await b.queueSize(), 0);
      assert.deepEqual(cluster.stats().paused, ["a"]);
      await a.resume();
      assert.equal(await a.result(held.id, { wait: 10_000 }), 2);
    } finally {
      a.close();
      b.close();
    }
  });
});

test("kvq pause / resume set and clear the pause of a queue", async () => {
  await using dir = tempDir();
  const kv = `${dir.path}/kv.sqlite3`;
  assert.equal((await kvq(["pause", "--kv", kv, "--queue", "mail", "--reason", "deploy"])).code, 0);
  const status = await kvq(["pause", "--kv", kv, "--queue", "mail", "--status", "--json"]);
  assert.equal(status.code, 0);
  assert.equal(JSON.parse(status.out).paused.reason, "deploy");
  assert.equal((await kvq(["pause", "--kv", kv, "--status"])).code, 3, "default is not paused");
  assert.equal((await kvq(["resume", "--kv", kv, "--queue", "mail"])).code, 0);
  assert.equal((await kvq(["pause", "--kv", kv, "--queue", "mail", "--status"])).code, 3);
});

test("Cluster claims from weighted queues in proportion (a:3, b:1)", async () => {
  await using dir = tempDir();
  const kv = `${dir.path}/kv.sqlite3`;
  const a = await openQueue({ kv, name: "a" });
  const b = await openQueue({ kv, name: "b" });
  await a.enqueueMany(Array.from({ length: 40 }, (_, i) => ({ func: "add", args: [i, 0] })));
  await b.enqueueMany(Array.from({ length: 40 }, (_, i) => ({ func: "add", args: [i, 0] })));
  const cluster = new Cluster({ kv, tasks: [CONTROL_TASKS], workers: 1, queues: ["a:3", "b"] });
  const order: string[] = [];
  const twenty = new Promise<void>((resolve) => {
    cluster.on("task:start", (e) => {
      order.push(e.record.queue);
      if (order.length === 20) resolve();
    });
  });
  try {
    await cluster.start();
    await twenty;
    const fromA = order.slice(0, 20).filter((q) => q === "a").length;
    assert.ok(fromA >= 13 && fromA <= 17, `a got ${fromA} of 20: ${order.join(",")}`);
  } finally {
    await cluster.stop({ grace: 0 });
    a.close();
    b.close();
  }
});

test("parseQueueWeights() reads names, name:weight and objects, and refuses bad ones", () => {
  assert.deepEqual(parseQueueWeights(["a:3", "b", { name: "c", weight: 2 }]), [
    { name: "a", weight: 3 },
    { name: "b", weight: 1 },
    { name: "c", weight: 2 },
  ]);
  assert.throws(() => parseQueueWeights(["a:0"]), RangeError);
  assert.throws(() => parseQueueWeights(["a", "a:2"]), /twice/);
  assert.throws(() => parseQueueWeights(["bad name"]), TypeError);
  assert.throws(() => parseQueueWeights([]), TypeError);
  assert.deepEqual(parseQueueWeights(["a:3@2", "b@1", { name: "c", max: 4 }]), [
    { name: "a", weight: 3, max: 2 },
    { name: "b", weight: 1, max: 1 },
    { name: "c", weight: 1, max: 4 },
  ]);
  assert.throws(() => parseQueueWeights(["a@0"]), /most tasks of queue a at once.*received 0/);
});

test("kvq info and the dashboard take a cluster's --queue a:3@2 as queue a", async () => {
  await using dir = tempDir();
  const kv = `${dir.path}/kv.sqlite3`;
  await using a = await openQueue({ kv, name: "a" });
  await a.enqueue("add", 1, 1);
  const info = await kvq(["info", "--queue", "a:3@2,b@1", "--json", "--kv", kv]);
  assert.equal(info.code, 0, info.err);
  assert.deepEqual(JSON.parse(info.out).queues.map((q: { name: string }) => q.name), ["a", "b"]);
  assert.equal(queueNameOf(" mail:3@2 "), "mail");
  assert.equal(queueNameOf("mail@2"), "mail");
});

test("A local cap (a@1) runs one task of the queue at a time on the cluster, whatever its workers", async () => {
  await using dir = tempDir();
  const kv = `${dir.path}/kv.sqlite3`;
  await using a = await openQueue({ kv, name: "a" });
  await using b = await openQueue({ kv, name: "b" });
  const logA = `${dir.path}/a.txt`;
  const logB = `${dir.path}/b.txt`;
  const tasks = await a.enqueueMany(
    Array.from({ length: 6 }, () => ({ func: "span", args: [logA, 60] })),
  );
  const others = await b.enqueueMany(
    Array.from({ length: 6 }, () => ({ func: "span", args: [logB, 60] })),
  );
  const cluster = new Cluster({ kv, tasks: [CLUSTER_TASKS], workers: 4, queues: ["a@1", "b"] });
  try {
    await cluster.start();
    for (const t of tasks) assert.equal((await a.wait(t.id, { wait: 20_000 })).state, "succeeded");
    for (const t of others) assert.equal((await b.wait(t.id, { wait: 20_000 })).state, "succeeded");
  } finally {
    await cluster.stop({ grace: 0 });
  }
  const most = (path: string) => {
    const edges = readFileSync(path, "utf8").trim().split("\n").flatMap((l) => {
      const [, start, end] = l.split(" ").map(Number);
      return [[start!, 1], [end!, -1]] as const;
    }).sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    let at = 0;
    let top = 0;
    for (const [, d] of edges) top = Math.max(top, at += d);
    return top;
  };
  assert.equal(most(logA), 1, "one of a's tasks at a time");
  assert.ok(most(logB) >= 2, `b's tasks used the other workers (${most(logB)} at once)`);
});
