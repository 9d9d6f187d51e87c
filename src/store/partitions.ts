/**
 * The partitions of a queue as its gauges count them (`keys.partitionStat`, summed by every
 * commit that moves a task with a partition): how many of each wait and run, for `kvq limit`
 * and the dashboard's queue page.
 *
 * @module
 */
import { gaugeValue } from "./counters.ts";
import type { Store } from "./store.ts";

/** How many tasks of one partition wait and run. */
export interface PartitionCounts {
  /** The partition. */
  partition: string;
  /** Waiting for their time (eta, a retry's backoff, a push-back). */
  scheduled: number;
  /** Ready to run. */
  queued: number;
  /** Running (or claimed, held ahead of a free place). */
  running: number;
}

/** Options for {@linkcode readPartitionCounts}. */
export interface PartitionCountsOptions {
  /** The most partitions read (in key order). @default 200 */
  limit?: number;
  /** List partitions with nothing waiting or running too. @default false */
  all?: boolean;
}

/**
 * The partitions of the queue with their counts, busiest first (running, then queued); `more`
 * says whether partitions past `limit` were left out.
 */
export async function readPartitionCounts(
  store: Store,
  options: PartitionCountsOptions = {},
): Promise<{ partitions: PartitionCounts[]; more: boolean }> {
  const limit = options.limit ?? 200;
  const byName = new Map<string, PartitionCounts>();
  let more = false;
  const prefix = store.keys.partitions;
  for await (
    const e of store.kv.list({ prefix }, { consistency: "eventual", batchSize: 500 })
  ) {
    const [partition, kind, state] = e.key.slice(prefix.length);
    if (typeof partition !== "string") continue;
    let p = byName.get(partition);
    if (!p) {
      if (byName.size >= limit) {
        more = true;
        break;
      }
      byName.set(partition, p = { partition, scheduled: 0, queued: 0, running: 0 });
    }
    if (kind === "state" && (state === "scheduled" || state === "queued" || state === "running")) {
      p[state] = gaugeValue(e.value);
    }
  }
  const partitions = [...byName.values()]
    .filter((p) => options.all === true || p.scheduled + p.queued + p.running > 0)
    .sort((a, b) =>
      b.running - a.running || b.queued - a.queued || (a.partition < b.partition ? -1 : 1)
    );
  return { partitions, more };
}
