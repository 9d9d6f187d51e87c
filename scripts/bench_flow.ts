/**
 * W8, flow control (see `scripts/bench.ts`): 5,000 no-op tasks (1,000 with `--short`) through
 * one cluster with 2 workers, under each kind of limit, against the same run with none:
 * processing tasks/s, KV commits per task, and for a rate how close the starts come to it (the
 * most starts in any window of the rate's length, as a share of the rate).
 *
 * @module
 */
import type { Queue } from "../src/queue/queue.ts";
import { openQueue } from "../src/queue/queue.ts";
import type { QueueLimitsInput } from "../src/store/flow.ts";
import type { TaskRecord } from "../src/task/record.ts";

/** What W8 needs from the bench script. */
export interface FlowBench {
  short: boolean;
  tempKv(): string;
  startCluster(kv: string, args: string[]): Promise<{
    commits(): number;
    exited: Promise<number | null>;
  }>;
  allTasks(queue: Queue, state: TaskRecord["state"]): Promise<TaskRecord[]>;
}

/** The partitions of the partitioned run. */
const PARTITIONS = 100;

/** The most starts within any `ms` among sorted start times. */
function mostInWindow(starts: readonly number[], ms: number): number {
  let most = 0;
  let from = 0;
  for (let i = 0; i < starts.length; i++) {
    while (starts[i]! - starts[from]! >= ms) from++;
    most = Math.max(most, i - from + 1);
  }
  return most;
}

/** Runs W8 and returns its figures. */
export async function flowWorkload(h: FlowBench): Promise<Record<string, number>> {
  const n = h.short ? 1000 : 5000;
  const rate = h.short ? { count: 500, ms: 1000 } : { count: 1000, ms: 1000 };
  const runs: { what: string; limits: QueueLimitsInput | null; partitioned: boolean }[] = [
    { what: "no limits", limits: null, partitioned: false },
    { what: "no limits, 100 partitions", limits: null, partitioned: true },
    {
      what: `partitionConcurrency 1 over ${PARTITIONS} partitions`,
      limits: { partitionConcurrency: 1 },
      partitioned: true,
    },
    { what: `rate ${rate.count}/1s`, limits: { rate }, partitioned: false },
    { what: "concurrency 2", limits: { concurrency: 2 }, partitioned: false },
  ];
  const out: Record<string, number> = {};
  for (const run of runs) {
    const kv = h.tempKv();
    await using queue = await openQueue({ kv });
    if (run.limits) await queue.setLimits(run.limits);
    for (let i = 0; i < n; i += 5000) {
      await queue.enqueueMany(
        Array.from({ length: Math.min(5000, n - i) }, (_, j) => ({
          func: "noop",
          args: [],
          ...(run.partitioned ? { partition: `tenant-${(i + j) % PARTITIONS}` } : {}),
        })),
      );
    }
    const cluster = await h.startCluster(kv, ["--workers", "2", "--burst"]);
    await cluster.exited;
    const done = await h.allTasks(queue, "succeeded");
    const starts = done.map((r) => r.startedAt ?? NaN).sort((a, b) => a - b);
    const last = Math.max(...done.map((r) => r.stoppedAt ?? 0));
    out[`processing tasks/s, ${run.what}`] = done.length / ((last - starts[0]!) / 1000);
    out[`KV commits per task, ${run.what}`] = cluster.commits() / n;
    if (run.limits?.rate) {
      out[`most starts in 1 s / rate, ${run.what}`] = mostInWindow(starts, rate.ms) / rate.count;
    }
  }
  return out;
}
