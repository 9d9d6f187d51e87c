/**
 * Queue limits across clusters: three `kvq cluster` processes with two workers each on one KV
 * file obey a queue's `concurrency` and `rate`, stored in KV and read at every claim.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { openQueue } from "../../src/queue/queue.ts";
import { killAll, type Kvq, startCluster, tempDir } from "./_process.ts";

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
