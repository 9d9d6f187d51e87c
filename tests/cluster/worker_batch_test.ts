import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import type { FromWorker, ToWorker } from "../../src/cluster/protocol.ts";
import { Cluster } from "../../src/cluster/cluster.ts";
import { messageStats } from "../../src/cluster/worker_handle.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { CLUSTER_TASKS, tempDir } from "./_process.ts";

const ENTRY = new URL("../../src/cluster/worker_main.ts", import.meta.url).href;
const TASKS = new URL("../fixtures/tasks.ts", import.meta.url).href;

/** A worker on the real entry, with every message it sends, unpacked, and the raw count. */
async function worker(concurrency = 1) {
  const w = new Worker(ENTRY, { type: "module" });
  const got: FromWorker[] = [];
  let posts = 0;
  const waiters: (() => void)[] = [];
  w.addEventListener("message", (e) => {
    posts++;
    const m = (e as MessageEvent<FromWorker>).data;
    got.push(...(m.type === "many" ? m.messages : [m]));
    for (const wake of waiters.splice(0)) wake();
  });
  const until = async (ok: () => boolean, ms = 10_000) => {
    const deadline = performance.now() + ms;
    while (!ok()) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`Not there after ${ms} ms: ${JSON.stringify(got)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  };
  const send = (m: ToWorker) => w.postMessage(m);
  send({ type: "init", modules: [TASKS], name: "kvq-w1.g1", concurrency });
  await until(() => got.some((m) => m.type === "ready"));
  return {
    got,
    posts: () => posts,
    send,
    until,
    [Symbol.dispose]: () => w.terminate(),
  };
}

const run = (id: string, func: string, args: unknown[] = []): ToWorker => ({
  type: "run",
  id,
  name: "calm-otter",
  func,
  args: JSON.stringify(args),
  attempt: 1,
  queue: "default",
});

test("tasks sent as one message run back to back, and their ends come back in few messages, in order", async () => {
  using w = await worker();
  const before = w.posts();
  const n = 200;
  w.send({
    type: "many",
    messages: Array.from({ length: n }, (_, i) => run(`t${i}`, "add", [i, 1])),
  });
  await w.until(() => w.got.filter((m) => m.type === "done").length === n);
  const done = w.got.filter((m) => m.type === "done");
  assert.deepEqual(done.map((d) => d.id), Array.from({ length: n }, (_, i) => `t${i}`));
  assert.deepEqual(
    done.map((d) => d.ok && d.result),
    Array.from({ length: n }, (_, i) => `${i + 1}`),
  );
  const posts = w.posts() - before;
  // One message per 64 ends at most, plus the last: not one per task.
  assert.ok(posts <= Math.ceil(n / 64) + 2, `${posts} messages for ${n} task ends`);
});

test("with concurrency 25, tasks that run side by side send their ends in few messages too, and a lone task's end at once", async () => {
  using w = await worker(25);
  const before = w.posts();
  // As a cluster sends them: no more at once than the worker runs, so none waits in it.
  const rounds = 8;
  for (let r = 0; r < rounds; r++) {
    w.send({
      type: "many",
      messages: Array.from({ length: 25 }, (_, i) => run(`t${r}.${i}`, "add", [i, r])),
    });
    await w.until(() => w.got.filter((m) => m.type === "done").length === 25 * (r + 1));
  }
  const done = w.got.filter((m) => m.type === "done");
  assert.equal(new Set(done.map((d) => d.id)).size, 25 * rounds);
  assert.ok(done.every((d) => d.ok));
  const posts = w.posts() - before;
  // Before, each end went alone: 200 messages.
  assert.ok(posts <= rounds * 2, `${posts} messages for ${25 * rounds} task ends`);
  // A task that ends beside a long one is not held back by it.
  const t0 = performance.now();
  w.send({ type: "many", messages: [run("long", "hang"), run("quick", "add", [1, 1])] });
  await w.until(() => w.got.some((m) => m.type === "done" && m.id === "quick"));
  const ms = performance.now() - t0;
  assert.ok(ms < 500, `the quick task's end took ${ms.toFixed(0)} ms`);
});

test("with concurrency 2, a task's end is not held back by a task beside it that then computes for long", async () => {
  using w = await worker(2);
  const t0 = performance.now();
  // Both wake from timers due together: the quick one's end must go before the other computes.
  w.send({
    type: "many",
    messages: [run("quick", "nap", [30]), run("busy", "napThenBusy", [30, 1500])],
  });
  await w.until(() => w.got.some((m) => m.type === "done" && m.id === "quick"));
  const ms = performance.now() - t0;
  assert.ok(ms < 1000, `the quick task's end took ${ms.toFixed(0)} ms`);
  await w.until(() => w.got.some((m) => m.type === "done" && m.id === "busy"));
});

test("a task's end is not held back by a long task sent after it", async () => {
  using w = await worker();
  const t0 = performance.now();
  w.send({ type: "many", messages: [run("quick", "add", [1, 1]), run("long", "hang")] });
  await w.until(() => w.got.some((m) => m.type === "done" && m.id === "quick"));
  const ms = performance.now() - t0;
  assert.ok(ms < 500, `the quick task's end took ${ms.toFixed(0)} ms`);
  assert.equal(w.got.some((m) => m.type === "done" && m.id === "long"), false);
});

test("a task that waited in its worker past its startBy comes back unstarted, before the end that freed its place", async () => {
  using w = await worker();
  const late = { ...run("late", "add", [1, 1]), startBy: Date.now() + 20 } as ToWorker;
  const timely = { ...run("timely", "add", [2, 2]), startBy: Date.now() + 60_000 } as ToWorker;
  w.send({ type: "many", messages: [run("first", "nap", [100]), late, timely] });
  await w.until(() => w.got.some((m) => m.type === "done" && m.id === "timely"));
  const seen = w.got.filter((m) => m.type === "recalled" || m.type === "done").map((m) =>
    `${m.type} ${m.id}`
  );
  assert.deepEqual(seen, ["recalled late", "done first", "done timely"]);
});

test("a task that reaches an idle worker past its startBy comes back unstarted, and the next takes its place", async () => {
  using w = await worker();
  // The worker's thread was starved: the message arrives after the task's start-by time.
  const late = { ...run("late", "add", [1, 1]), startBy: Date.now() - 1 } as ToWorker;
  w.send({ type: "many", messages: [late, run("next", "add", [2, 2])] });
  await w.until(() => w.got.some((m) => m.type === "done" && m.id === "next"));
  const seen = w.got.filter((m) => m.type === "recalled" || m.type === "done").map((m) =>
    `${m.type} ${m.id}`
  );
  assert.deepEqual(seen, ["recalled late", "done next"]);
});

// Each end went alone before at concurrency 25: 1.2 messages a task. At 8 workers the batches
// were sized by each task's place time, which counts the messages themselves: 0.44 a task.
for (const [workers, concurrency] of [[2, 25], [8, 1]] as const) {
  test(`Cluster at ${workers} workers x ${concurrency} exchanges a few messages per hundred no-op tasks with its workers`, async () => {
    using dir = tempDir();
    const queue = await openQueue({ kv: dir.kv });
    const cluster = new Cluster({
      kv: queue.store.handle,
      tasks: [CLUSTER_TASKS],
      workers,
      concurrency,
      heartbeat: 200,
      burst: true,
    });
    try {
      const n = 3000;
      await queue.enqueueMany(
        Array.from({ length: n }, (_, i) => ({ func: "add", args: [i, 1] })),
      );
      const before = messageStats.sent + messageStats.received;
      await cluster.start();
      await cluster.stopped;
      assert.equal((await queue.counts()).succeeded, n);
      const perTask = (messageStats.sent + messageStats.received - before) / n;
      assert.ok(perTask < 0.3, `${perTask.toFixed(2)} worker messages a task`);
    } finally {
      await cluster.stop({ grace: 0 });
      queue.close();
    }
  });
}

test("a task's end says how long it ran in the worker", async () => {
  using w = await worker();
  w.send({ type: "many", messages: [run("napper", "nap", [60]), run("adder", "add", [1, 1])] });
  await w.until(() => w.got.filter((m) => m.type === "done").length === 2);
  const ms = (id: string) => {
    const d = w.got.find((m) => m.type === "done" && m.id === id);
    return d?.type === "done" ? d.ms ?? NaN : NaN;
  };
  assert.ok(ms("napper") >= 55 && ms("napper") < 2000, `nap(60) ran ${ms("napper")} ms`);
  assert.ok(ms("adder") >= 0 && ms("adder") < 50, `add ran ${ms("adder")} ms`);
});
