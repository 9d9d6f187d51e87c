/**
 * `kvq pause` and `kvq resume`: stop and restart claiming from a queue. Clusters finish what
 * runs and claim nothing more from a paused queue; they learn of it through their change feed.
 *
 * @module
 */
import type { Command } from "../command.ts";
import { UsageError } from "../command.ts";

/** `kvq pause [--queue Q] [--reason TEXT] [--status]` */
export const pauseCommand: Command = {
  name: "pause",
  summary: "Pause a queue: clusters finish running tasks and claim no more from it",
  usage: "kvq pause [--queue NAME] [--reason TEXT] | kvq pause --status [--queue NAME]",
  options: { reason: { type: "string" }, status: { type: "boolean" } },
  help: `  --queue NAME   the queue (default: KVQ_QUEUE, else default)
  --reason TEXT  why, shown by --status
  --status       print whether the queue is paused, change nothing (exit 0 paused, 3 not)`,
  async run(ctx) {
    if (ctx.positionals.length > 0) {
      throw new UsageError(`Unexpected argument ${JSON.stringify(ctx.positionals[0])}`);
    }
    const queue = await ctx.queue();
    if (ctx.values.status) {
      const info = await queue.paused();
      if (ctx.json) ctx.out(JSON.stringify({ queue: queue.name, paused: info }));
      else {
        ctx.out(
          info
            ? `Queue ${queue.name} is paused since ${new Date(info.at).toISOString()}${
              info.until !== null ? ` until ${new Date(info.until).toISOString()}` : ""
            }${info.reason ? ` (${info.reason})` : ""}`
            : `Queue ${queue.name} is not paused`,
        );
      }
      return info ? 0 : 3;
    }
    const reason = typeof ctx.values.reason === "string" ? ctx.values.reason : undefined;
    await queue.pause(reason);
    ctx.out(
      ctx.json ? JSON.stringify({ queue: queue.name, paused: true }) : `Paused queue ${queue.name}`,
    );
    return 0;
  },
};

/** `kvq resume [--queue Q]` */
export const resumeCommand: Command = {
  name: "resume",
  summary: "Resume a paused queue",
  usage: "kvq resume [--queue NAME]",
  options: {},
  help: `  --queue NAME   the queue (default: KVQ_QUEUE, else default)`,
  async run(ctx) {
    if (ctx.positionals.length > 0) {
      throw new UsageError(`Unexpected argument ${JSON.stringify(ctx.positionals[0])}`);
    }
    const queue = await ctx.queue();
    await queue.resume();
    ctx.out(
      ctx.json
        ? JSON.stringify({ queue: queue.name, paused: false })
        : `Resumed queue ${queue.name}`,
    );
    return 0;
  },
};
