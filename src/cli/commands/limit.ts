/**
 * `kvq limit`: show or set a queue's flow-control limits (see `store/flow.ts`), which every
 * cluster on the KV obeys from its next claim.
 *
 * @module
 */
import { type Command, intOption, UsageError } from "../command.ts";
import {
  LimitError,
  limitsText,
  parseRate,
  parseWeight,
  type QueueLimits,
} from "../../store/flow.ts";
import { listQueuesDefaultFirst } from "../../store/queues.ts";
import { readStateCounts } from "../../store/counters.ts";
import { readPartitionCounts } from "../../store/partitions.ts";

/** How many partitions `kvq limit QUEUE` lists. */
const SHOWN_PARTITIONS = 20;

/**
 * `kvq limit QUEUE [--concurrency N] [--rate N/DURATION] [--partition-concurrency N]
 * [--partition-rate N/DURATION] [--partition-weight P=N] [--clear] [--json]`
 */
export const limitCommand: Command = {
  name: "limit",
  summary:
    "Show or set a queue's limits: tasks running at once and starts per window, per partition",
  usage:
    "kvq limit QUEUE [--concurrency N] [--rate N/DURATION] [--partition-concurrency N] [--partition-rate N/DURATION] [--partition-weight P=N]... [--clear] [--json]",
  options: {
    concurrency: { type: "string" },
    rate: { type: "string" },
    "partition-concurrency": { type: "string" },
    "partition-rate": { type: "string" },
    "partition-weight": { type: "string", multiple: true },
    clear: { type: "boolean" },
  },
  help: `  QUEUE                        the queue (one that exists on this KV)
  --concurrency N              at most N of its tasks run at once, across all clusters
  --rate N/DURATION            at most N starts in any window of DURATION (ms, s, m or h),
                               across all clusters, e.g. 100/1s or 5/1m
  --partition-concurrency N    at most N tasks of each partition run at once
  --partition-rate N/DURATION  at most N starts of each partition in any window of DURATION
  --partition-weight P=N       partition P takes N turns (1-100) to another's one; repeat it
                               for more partitions, or give P=1 to drop a weight
  --clear                      remove all its limits and weights
  With no option: print its limits, how many of its tasks run and wait, and the busiest
  partitions. Options given change those limits and keep the others.

Example:
  kvq limit mail --concurrency 5 --rate 100/1s
  kvq limit api --partition-concurrency 2 --partition-rate 5/1s --partition-weight vip=3`,
  async run(ctx) {
    const name = ctx.positionals[0];
    if (name === undefined) throw new UsageError("Name the queue, e.g. kvq limit mail --rate 5/1s");
    if (ctx.positionals.length > 1) {
      throw new UsageError(`Unexpected argument ${JSON.stringify(ctx.positionals[1])}`);
    }
    const limits: QueueLimits = {};
    const concurrency = intOption(ctx.values, "concurrency", { min: 1 });
    if (concurrency !== undefined) limits.concurrency = concurrency;
    const perPartition = intOption(ctx.values, "partition-concurrency", { min: 1 });
    if (perPartition !== undefined) limits.partitionConcurrency = perPartition;
    const limitError = (flag: string, run: () => void) => {
      try {
        run();
      } catch (error) {
        if (error instanceof LimitError) throw new UsageError(`--${flag}: ${error.message}`);
        throw error;
      }
    };
    if (ctx.values.rate !== undefined) {
      limitError("rate", () => limits.rate = parseRate(String(ctx.values.rate)));
    }
    if (ctx.values["partition-rate"] !== undefined) {
      limitError(
        "partition-rate",
        () => limits.partitionRate = parseRate(String(ctx.values["partition-rate"])),
      );
    }
    const weights = (ctx.values["partition-weight"] ?? []) as string[];
    const weighted: [string, number][] = [];
    for (const w of weights) limitError("partition-weight", () => weighted.push(parseWeight(w)));
    const setting = Object.keys(limits).length > 0 || weighted.length > 0;
    if (setting && ctx.values.clear) {
      throw new UsageError("--clear can't be combined with options that set limits");
    }
    const queue = await ctx.queue(name);
    const known = await listQueuesDefaultFirst(queue.store.kv);
    if (!known.includes(name)) {
      throw new UsageError(
        `There is no queue ${JSON.stringify(name)} on this KV (queues: ${
          known.join(", ")
        }); enqueue a task to it first`,
      );
    }
    if (ctx.values.clear) await queue.clearLimits();
    else if (setting) {
      // Other limits stay as they were; a weight of 1 is the default, so it is dropped.
      const before = (await queue.limits()) ?? {};
      const merged = { ...before.partitionWeights };
      for (const [p, w] of weighted) {
        if (w === 1) delete merged[p];
        else merged[p] = w;
      }
      const { partitionWeights: _, ...rest } = { ...before, ...limits };
      await queue.setLimits({
        ...rest,
        ...(Object.keys(merged).length > 0 ? { partitionWeights: merged } : {}),
      }).catch((error) => {
        if (error instanceof LimitError) throw new UsageError(error.message);
        throw error;
      });
    }
    const now = await queue.limits();
    const counts = await readStateCounts(queue.store);
    const { partitions, more } = await readPartitionCounts(queue.store, { limit: 1000 });
    if (ctx.json) {
      ctx.out(JSON.stringify({
        queue: name,
        limits: now,
        running: counts.running,
        waiting: counts.queued + counts.scheduled,
        partitions: partitions.map((p) => ({
          partition: p.partition,
          running: p.running,
          waiting: p.queued + p.scheduled,
        })),
        ...(more ? { morePartitions: true } : {}),
      }));
      return 0;
    }
    ctx.out(
      `Queue ${name}: ${now ? limitsText(now) : "no limits"}; ${counts.running} running, ${
        counts.queued + counts.scheduled
      } waiting`,
    );
    if (partitions.length > 0) {
      ctx.out(`Partitions (${partitions.length}${more ? "+" : ""}, busiest first):`);
      const width = Math.min(40, Math.max(...partitions.map((p) => p.partition.length)));
      for (const p of partitions.slice(0, SHOWN_PARTITIONS)) {
        ctx.out(
          `  ${p.partition.padEnd(width)}  ${p.running} running, ${p.queued + p.scheduled} waiting`,
        );
      }
      if (partitions.length > SHOWN_PARTITIONS) {
        ctx.out(`  … and ${partitions.length - SHOWN_PARTITIONS} more ('--json' lists them all)`);
      }
    }
    return 0;
  },
};
