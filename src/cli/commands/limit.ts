/**
 * `kvq limit`: show or set a queue's flow-control limits (see `store/flow.ts`), which every
 * cluster on the KV obeys from its next claim.
 *
 * @module
 */
import { type Command, intOption, UsageError } from "../command.ts";
import { LimitError, parseRate, type QueueLimits } from "../../store/flow.ts";
import { listQueuesDefaultFirst } from "../../store/queues.ts";
import { readStateCounts } from "../../store/counters.ts";

/** `kvq limit QUEUE [--concurrency N] [--rate N/DURATION] [--clear] [--json]` */
export const limitCommand: Command = {
  name: "limit",
  summary: "Show or set a queue's limits: tasks running at once and starts per window",
  usage: "kvq limit QUEUE [--concurrency N] [--rate N/DURATION] [--clear] [--json]",
  options: {
    concurrency: { type: "string" },
    rate: { type: "string" },
    clear: { type: "boolean" },
  },
  help: `  QUEUE               the queue (one that exists on this KV)
  --concurrency N     at most N of its tasks run at once, across all clusters
  --rate N/DURATION   at most N starts in any window of DURATION (ms, s, m or h), across all
                      clusters, e.g. 100/1s or 5/1m
  --clear             remove its limits
  With no option: print its limits, and how many of its tasks run and wait.

Example:
  kvq limit mail --concurrency 5 --rate 100/1s`,
  async run(ctx) {
    const name = ctx.positionals[0];
    if (name === undefined) throw new UsageError("Name the queue, e.g. kvq limit mail --rate 5/1s");
    if (ctx.positionals.length > 1) {
      throw new UsageError(`Unexpected argument ${JSON.stringify(ctx.positionals[1])}`);
    }
    const limits: QueueLimits = {};
    const concurrency = intOption(ctx.values, "concurrency", { min: 1 });
    if (concurrency !== undefined) limits.concurrency = concurrency;
    if (ctx.values.rate !== undefined) {
      try {
        limits.rate = parseRate(String(ctx.values.rate));
      } catch (error) {
        if (error instanceof LimitError) throw new UsageError(`--rate: ${error.message}`);
        throw error;
      }
    }
    const setting = Object.keys(limits).length > 0;
    if (setting && ctx.values.clear) {
      throw new UsageError("--clear can't be combined with --concurrency or --rate");
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
      // Other limits stay as they were.
      await queue.setLimits({ ...(await queue.limits()), ...limits });
    }
    const now = await queue.limits();
    const counts = await readStateCounts(queue.store);
    if (ctx.json) {
      ctx.out(JSON.stringify({
        queue: name,
        limits: now,
        running: counts.running,
        waiting: counts.queued + counts.scheduled,
      }));
      return 0;
    }
    const rate = now?.rate ? `${now.rate.count}/${now.rate.ms}ms` : "none";
    ctx.out(
      `Queue ${name}: concurrency ${
        now?.concurrency ?? "none"
      }, rate ${rate}; ${counts.running} running, ${counts.queued + counts.scheduled} waiting`,
    );
    return 0;
  },
};
