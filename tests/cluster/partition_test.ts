/**
 * Partitions across clusters: `partitionConcurrency` over three `kvq cluster` processes on one
 * KV file, fair turns between a large partition and a small one enqueued behind it, and a
 * push-back that holds only its own partition.
 */
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { openQueue } from "../../src/queue/queue.ts";
import { delay } from "../../src/runtime/delay.ts";
import { killAll, type Kvq, linesReached, startCluster, tempDir } from "./_process.ts";

const CLUSTER_ARGS = ["--workers", "2", "--heartbeat", "500"];

/** The spans a `span` task logged: `id start end`. */
function spans(path: string): { id: string; start: number; end: number }[] {
  return readFileSync(path, "utf8").trim().split("\n").map((l) => {
    const [id, start, end] = l.split(" ");
    return { id: id!, start: Number(start), end: Number(end) };
  });
}

test("partitionConcurrency 1 over three clusters: one run per partition at a time, three at once in all", async () => {
  using dir = tempDir();
  const log = join(dir.path, "spans.txt");
  await using queue = await openQueue({ kv: dir.kv });
  await queue.setLimits({ partitionConcurrency: 1 });
  const clusters: Kvq[] = await Promise.all(
    [0, 1, 2].map(() => startCluster(dir.kv, CLUSTER_ARGS)),
  );
  try {
    const partitionOf = new Map<string, string>();
    const tasks = await queue.enqueueMany(
      ["p1", "p2", "p3"].flatMap((partition) =>
        Array.from({ length: 6 }, () => ({ func: "span", args: [log, 150], partition }))
      ),
    );
    for (const t of tasks) partitionOf.set(t.id, t.record.partition!);
    for (const t of tasks) {
      assert.equal((await queue.wait(t.id, { wait: 30_000 })).state, "succeeded");
    }
    const runs = spans(log);
    assert.equal(runs.length, 18, "each ran once");
    for (const p of ["p1", "p2", "p3"]) {
      const mine = runs.filter((r) => partitionOf.get(r.id) === p).sort((a, b) =>
        a.start - b.start
      );
      assert.equal(mine.length, 6);
      for (let i = 1; i < mine.length; i++) {
        assert.ok(
          mine[i]!.start >= mine[i - 1]!.end,
          `${p}: run ${i} started at ${mine[i]!.start}, before run ${i - 1} ended at ${
            mine[i - 1]!.end
          }`,
        );
      }
    }
    // The most runs at once, over all partitions.
    const edges = runs.flatMap((r) => [[r.start, 1], [r.end, -1]] as const)
      .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let at = 0;
    let most = 0;
    for (const [, d] of edges) most = Math.max(most, at += d);
    assert.equal(most, 3, "three partitions ran at once");
  } finally {
    killAll(clusters);
  }
});

test("fair turns: 10 tasks of B enqueued behind 2,000 of A each start within the next 25 starts", async () => {
  using dir = tempDir();
  const log = join(dir.path, "starts.txt");
  await using queue = await openQueue({ kv: dir.kv });
  await queue.enqueueMany(
    Array.from({ length: 2000 }, () => ({ func: "span", args: [log, 5], partition: "A" })),
  );
  const cluster = await startCluster(dir.kv, CLUSTER_ARGS);
  try {
    await linesReached(log, 100, 30_000);
    const b = await queue.enqueueMany(
      Array.from({ length: 10 }, () => ({ func: "span", args: [log, 5], partition: "B" })),
    );
    // Counted from when the enqueue returned: its commit may wait for the file's lock (the
    // cluster writes all the while; measured 11-107 ms on a loaded machine), and the tasks of B
    // exist from its end, not its start.
    const enqueuedAt = Date.now();
    for (const t of b) assert.equal((await queue.wait(t.id, { wait: 30_000 })).state, "succeeded");
    const runs = spans(log).sort((x, y) => x.start - y.start);
    const ids = new Set(b.map((t) => t.id));
    const after = runs.filter((r) => r.start >= enqueuedAt);
    const places = after.flatMap((r, i) => ids.has(r.id) ? [i + 1] : []);
    assert.equal(places.length, 10);
    assert.ok(
      places.every((p) => p <= 25),
      `B's tasks were starts ${places.join(", ")} after they were enqueued`,
    );
  } finally {
    killAll([cluster]);
  }
});

test("a push-back holds only its partition: the others go on, and it re-runs after its time", async () => {
  using dir = tempDir();
  const log = join(dir.path, "starts.txt");
  await using queue = await openQueue({ kv: dir.kv });
  const cluster = await startCluster(dir.kv, CLUSTER_ARGS);
  try {
    const limited = await queue.enqueue({
      func: "pushBackOnce",
      args: [log, 800],
      partition: "api-1",
    });
    // Once it was pushed back: a task of api-1 enqueued before could start beside it.
    for (let i = 0; i < 500 && (await queue.fetch(limited.id))?.state !== "scheduled"; i++) {
      await delay(10);
    }
    const same = await queue.enqueueMany(
      Array.from({ length: 4 }, () => ({ func: "stamp", args: [log], partition: "api-1" })),
    );
    const other = await queue.enqueueMany(
      Array.from({ length: 4 }, () => ({ func: "stamp", args: [log], partition: "api-2" })),
    );
    for (const t of other) {
      assert.equal((await queue.wait(t.id, { wait: 10_000 })).state, "succeeded");
    }
    const done = await queue.wait(limited.id, { wait: 10_000 });
    assert.equal(done.state, "succeeded");
    assert.equal(done.attempt, 1, "the push-back used no attempt");
    for (const t of same) {
      assert.equal((await queue.wait(t.id, { wait: 10_000 })).state, "succeeded");
    }
    const starts = readFileSync(log, "utf8").trim().split("\n").map((l) => {
      const [id, , at] = l.split(" ");
      return { id: id!, at: Number(at) };
    });
    const mine = starts.filter((s) => s.id === limited.id).map((s) => s.at);
    assert.equal(mine.length, 2);
    assert.ok(mine[1]! - mine[0]! >= 800, `re-run ${mine[1]! - mine[0]!} ms later`);
    const sameIds = new Set(same.map((t) => t.id));
    const otherIds = new Set(other.map((t) => t.id));
    for (const s of starts.filter((s) => sameIds.has(s.id))) {
      assert.ok(
        s.at >= mine[0]! + 800,
        `api-1 task started ${s.at - mine[0]!} ms after the push-back`,
      );
    }
    assert.ok(
      starts.filter((s) => otherIds.has(s.id)).every((s) => s.at < mine[0]! + 800),
      "api-2 went on while api-1 was held",
    );
    assert.equal(await queue.paused(), null, "the queue itself was never held");
  } finally {
    killAll([cluster]);
  }
});
