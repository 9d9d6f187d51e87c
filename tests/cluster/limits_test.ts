/**
 * Queue limits across clusters: three `kvq cluster` processes with two workers each on one KV
 * file obey a queue's `concurrency` and `rate`, stored in KV and read at every claim.
 */
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Cluster } from "../../src/cluster/cluster.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { KvHandle } from "../../src/store/store.ts";
import { delay } from "../../src/runtime/delay.ts";
import { CLUSTER_TASKS, killAll, type Kvq, startCluster, tempDir } from "./_process.ts";

const CLUSTER_ARGS = ["--workers", "2", "--heartbeat", "500"];

async function threeClusters(kv: string): Promise<Kvq[]> {
  return await Promise.all([0, 1, 2].map(() => startCluster(kv, CLUSTER_ARGS)));
}

test("concurrency 1 over three clusters: no two runs overlap, and all run", async () => {
  using dir = tempDir();
  const log = join(dir.path, "spans.txt");
  await using queue = await openQueue({ kv: dir.kv });
  await queue.setLimits({ concurrency: 1 });
  const clusters = await threeClusters(dir.kv);
  try {
    const tasks = await queue.enqueueMany(
      Array.from({ length: 30 }, () => ({ func: "span", args: [log, 20] })),
    );
    for (const t of tasks) {
      assert.equal((await queue.wait(t.id, { wait: 30_000 })).state, "succeeded");
    }
    const spans = readFileSync(log, "utf8").trim().split("\n").map((l) => {
      const [, start, end] = l.split(" ").map(Number);
      return { start: start!, end: end! };
    }).sort((a, b) => a.start - b.start);
    assert.equal(spans.length, 30, "each ran once");
    for (let i = 1; i < spans.length; i++) {
      assert.ok(
        spans[i]!.start >= spans[i - 1]!.end,
        `run ${i} started at ${spans[i]!.start}, before run ${i - 1} ended at ${spans[i - 1]!.end}`,
      );
    }
  } finally {
    killAll(clusters);
  }
});

test("rate 20/1s for 200 tasks over three clusters: no window of 1 s holds more than 20 starts, about 10 s in all", async () => {
  using dir = tempDir();
  const log = join(dir.path, "starts.txt");
  await using queue = await openQueue({ kv: dir.kv });
  await queue.setLimits({ rate: "20/1s" });
  assert.deepEqual(await queue.limits(), { rate: { count: 20, ms: 1000 } });
  const clusters = await threeClusters(dir.kv);
  try {
    const n = 200;
    const started = Date.now();
    const tasks = await queue.enqueueMany(
      Array.from({ length: n }, () => ({ func: "stamp", args: [log] })),
    );
    for (const t of tasks) {
      assert.equal((await queue.wait(t.id, { wait: 30_000 })).state, "succeeded");
    }
    const elapsed = Date.now() - started;
    const starts = readFileSync(log, "utf8").trim().split("\n").map((l) => Number(l.split(" ")[2]))
      .sort((a, b) => a - b);
    assert.equal(starts.length, n);
    for (let i = 0; i + 20 < starts.length; i++) {
      assert.ok(
        starts[i + 20]! - starts[i]! >= 1000,
        `21 starts within ${starts[i + 20]! - starts[i]!} ms (from start ${i})`,
      );
    }
    // 200 starts at 20 a second: the first 20 at once, the last in the tenth second.
    assert.ok(elapsed >= 9_000 - 100, `${n} starts at 20/s took ${elapsed} ms`);
    assert.ok(elapsed < 20_000, `${n} starts at 20/s took ${elapsed} ms`);
  } finally {
    killAll(clusters);
  }
});

/** The gaps between each start and the one `count` starts later, in ms. */
function windows(starts: readonly number[], count: number): number[] {
  const sorted = [...starts].sort((a, b) => a - b);
  return sorted.slice(count).map((t, i) => t - sorted[i]!);
}

test("rate 5/1s when the first claim's commit is slow (a locked file): no 1 s window holds 6 starts", async () => {
  using dir = tempDir();
  const log = join(dir.path, "starts.txt");
  await using queue = await openQueue({ kv: dir.kv });
  await queue.setLimits({ rate: "5/1s" });
  const handle = await KvHandle.open({ kv: dir.kv });
  // The first claim's commit takes 150 ms, as one that waited for another process's lock
  // does: its start was logged at the claim, before the commit.
  const kv = handle.kv as unknown as { atomic(): Deno.AtomicOperation };
  const atomic = kv.atomic.bind(kv);
  let slowed = 0;
  kv.atomic = () => {
    const op = atomic();
    const sum = op.sum.bind(op);
    const commit = op.commit.bind(op);
    let claims = false;
    op.sum = (key, n) => {
      if (key.at(-1) === "claim_seq") claims = true;
      return sum(key, n);
    };
    op.commit = async () => {
      if (claims && slowed++ === 0) await delay(150);
      return await commit();
    };
    return op;
  };
  const tasks = await queue.enqueueMany(
    Array.from({ length: 10 }, () => ({ func: "stamp", args: [log] })),
  );
  const cluster = new Cluster({ kv: handle, tasks: [CLUSTER_TASKS], workers: 1 });
  await cluster.start();
  try {
    for (const t of tasks) {
      assert.equal((await queue.wait(t.id, { wait: 10_000 })).state, "succeeded");
    }
  } finally {
    await cluster.stop();
    handle.close();
  }
  assert.ok(slowed > 0, "a claim was slowed");
  const starts = readFileSync(log, "utf8").trim().split("\n").map((l) => Number(l.split(" ")[2]));
  assert.equal(starts.length, 10);
  for (const gap of windows(starts, 5)) assert.ok(gap >= 1000, `6 starts within ${gap} ms`);
});

test("under a rate, a task sent to a worker whose thread is starved goes back unstarted and runs later, once", async () => {
  using dir = tempDir();
  const log = join(dir.path, "starts.txt");
  await using queue = await openQueue({ kv: dir.kv });
  await queue.setLimits({ rate: "100/1s" });
  // One worker, nothing sent ahead: the next task goes to it as soon as the first ends, while
  // its thread spins for 300 ms.
  const cluster = new Cluster({ kv: dir.kv, tasks: [CLUSTER_TASKS], workers: 1, prefetch: 0 });
  const starts = new Map<string, number>();
  cluster.on("task:start", (e) => starts.set(e.record.id, (starts.get(e.record.id) ?? 0) + 1));
  await cluster.start();
  try {
    const hog = await queue.enqueue("hogAfter", 300);
    const next = await queue.enqueue("stamp", log);
    assert.equal(await queue.result(hog.id, { wait: 10_000 }), "ok");
    assert.equal((await queue.wait(next.id, { wait: 10_000 })).state, "succeeded");
    const ran = readFileSync(log, "utf8").trim().split("\n");
    assert.equal(ran.length, 1, "it ran once");
    assert.ok((starts.get(next.id) ?? 0) >= 2, `sent ${starts.get(next.id)} time(s): it came back`);
    assert.equal((await queue.fetch(next.id))!.attempt, 1, "coming back used no attempt");
  } finally {
    await cluster.stop();
  }
});
