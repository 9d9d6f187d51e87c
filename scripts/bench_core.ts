/**
 * Benchmarks the core on this machine, in one run: enqueue (one at a time and bulk),
 * claim + complete through the inline executor (batch 1 and 50), and the raw KV rates they are
 * measured against. Each section uses a fresh temp KV file.
 *
 * ```sh
 * deno run -A scripts/bench_core.ts [--json]
 * bun scripts/bench_core.ts [--json]
 * ```
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { runInline } from "../src/cluster/inline.ts";
import { openQueue, type Queue } from "../src/queue/queue.ts";
import { type Kv, runtime } from "../src/runtime/mod.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { json: { type: "boolean", default: false } },
});

/** A value the size of a typical task record. */
const RECORD_SIZED = new TextEncoder().encode("x".repeat(450));
const tasks = new Map([["add", (a: number, b: number) => a + b]]);

async function withQueue<T>(fn: (queue: Queue) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "kvq-bench-"));
  try {
    await using queue = await openQueue({ kv: join(dir, "kv.sqlite3"), name: "bench" });
    return await fn(queue);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function withKv<T>(fn: (kv: Kv) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "kvq-bench-"));
  const kv = await runtime.openKv(join(dir, "kv.sqlite3"));
  try {
    return await fn(kv);
  } finally {
    kv.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs `fn` over `n` items and returns items per second. */
async function rate(n: number, fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return n / ((performance.now() - started) / 1000);
}

const calls = (n: number) => Array.from({ length: n }, (_, i) => ({ func: "add", args: [i, 1] }));

const rawSequential = await withKv((kv) =>
  rate(3_000, async () => {
    for (let i = 0; i < 3_000; i++) await kv.atomic().set(["raw", i], RECORD_SIZED).commit();
  })
);

const rawBatched = await withKv((kv) =>
  rate(50_000, async () => {
    for (let i = 0; i < 50_000; i += 100) {
      const atomic = kv.atomic();
      for (let j = i; j < i + 100; j++) atomic.set(["raw", j], RECORD_SIZED);
      await atomic.commit();
    }
  })
);

const enqueueOne = await withQueue((queue) =>
  rate(2_000, async () => {
    for (let i = 0; i < 2_000; i++) await queue.enqueue("add", i, 1);
  })
);

const bulkCount = 50_000;
const enqueueBulk = await withQueue((queue) => {
  const list = calls(bulkCount);
  return rate(bulkCount, () => queue.enqueueMany(list));
});

async function claimComplete(batch: number, n: number): Promise<number> {
  return await withQueue(async (queue) => {
    await queue.enqueueMany(calls(n));
    let processed = 0;
    const r = await rate(n, async () => {
      processed = (await runInline(queue.store, { tasks, burst: true, batch })).processed;
    });
    if (processed !== n) throw new Error(`Ran ${processed} of ${n} tasks`);
    return r;
  });
}

const claimBatch1 = await claimComplete(1, 2_000);
const claimBatch50 = await claimComplete(50, 10_000);

const report = {
  runtime: `${runtime.name} ${runtime.version}`,
  maxChecksPerCommit: runtime.name === "bun" ? 10 : 100,
  rawKv: {
    sequentialCommitsPerSec: Math.round(rawSequential),
    setsPerSecBatched100: Math.round(rawBatched),
  },
  enqueue: {
    oneAtATimePerSec: Math.round(enqueueOne),
    bulkPerSec: Math.round(enqueueBulk),
    bulkTasks: bulkCount,
  },
  claimComplete: {
    batch1PerSec: Math.round(claimBatch1),
    batch50PerSec: Math.round(claimBatch50),
  },
  ratios: {
    enqueueOneVsRawCommit: round(enqueueOne / rawSequential),
    enqueueBulkVsRawCommit: round(enqueueBulk / rawSequential),
    enqueueBulkVsRawBatchedSets: round(enqueueBulk / rawBatched),
    claimComplete1VsRawCommit: round(claimBatch1 / rawSequential),
    claimComplete50VsRawCommit: round(claimBatch50 / rawSequential),
  },
};

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

if (values.json) {
  console.log(JSON.stringify(report, null, 2));
} else {
  const f = (n: number) => n.toLocaleString("en-US").padStart(9);
  console.log(`kvq core benchmark on ${report.runtime} (temp KV files)\n`);
  console.log(
    `raw KV, one set per commit, sequential  ${f(report.rawKv.sequentialCommitsPerSec)} /s`,
  );
  console.log(`raw KV, sets batched 100 per commit     ${f(report.rawKv.setsPerSecBatched100)} /s`);
  console.log(
    `enqueue, one at a time                  ${
      f(report.enqueue.oneAtATimePerSec)
    } tasks/s  (${report.ratios.enqueueOneVsRawCommit}× raw commit)`,
  );
  console.log(
    `enqueue, bulk (${bulkCount.toLocaleString("en-US")} in one call)      ${
      f(report.enqueue.bulkPerSec)
    } tasks/s  (${report.ratios.enqueueBulkVsRawBatchedSets}× raw batched sets)`,
  );
  console.log(
    `claim + complete, inline, batch 1       ${
      f(report.claimComplete.batch1PerSec)
    } tasks/s  (${report.ratios.claimComplete1VsRawCommit}× raw commit)`,
  );
  console.log(
    `claim + complete, inline, batch 50      ${
      f(report.claimComplete.batch50PerSec)
    } tasks/s  (${report.ratios.claimComplete50VsRawCommit}× raw commit; ${report.maxChecksPerCommit} checks per commit allowed)`,
  );
}
