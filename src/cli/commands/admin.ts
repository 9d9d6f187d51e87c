/**
 * `kvq cancel`, `kvq delete`, `kvq retry`: act on one task (or, for retry, every failed one).
 *
 * @module
 */
import { type Command, UsageError } from "../command.ts";
import { NoSuchTaskError, TaskStateError } from "../../store/errors.ts";
import type { Queue } from "../../queue/queue.ts";
import { plural } from "../../web/format.ts";

async function each(
  ctx: Parameters<Command["run"]>[0],
  action: (queue: Queue, ref: string) => Promise<string>,
): Promise<number> {
  if (ctx.positionals.length === 0) throw new UsageError("Name at least one task id or human name");
  const queue = await ctx.queue();
  let code = 0;
  for (const ref of ctx.positionals) {
    try {
      const said = await action(queue, ref);
      ctx.out(ctx.json ? JSON.stringify({ ref, result: said }) : `${ref}: ${said}`);
    } catch (error) {
      if (error instanceof NoSuchTaskError || error instanceof TaskStateError) {
        ctx.err(error.message);
        code = error instanceof NoSuchTaskError ? 4 : 1;
      } else throw error;
    }
  }
  return code;
}

/** `kvq cancel ID|NAME…` */
export const cancelCommand: Command = {
  name: "cancel",
  summary: "Cancel tasks: waiting ones at once, running ones by their cluster",
  usage: "kvq cancel ID|NAME [ID|NAME…] | --group G",
  options: { group: { type: "string" } },
  help: `  ID|NAME    task ids or human names
  --group G  cancel every waiting or running task of a group`,
  async run(ctx) {
    if (ctx.values.group !== undefined) {
      const queue = await ctx.queue();
      let n = 0;
      for (const r of await queue.fetchGroup(String(ctx.values.group))) {
        if (r.finished) continue;
        await queue.cancel(r.id).then(() => n++, () => {});
      }
      ctx.out(
        ctx.json
          ? JSON.stringify({ cancelled: n })
          : `Cancelled ${plural(n, "task")} of group ${ctx.values.group}`,
      );
      return 0;
    }
    return await each(ctx, (q, ref) => q.cancel(ref));
  },
};

/** `kvq delete ID|NAME…` */
export const deleteCommand: Command = {
  name: "delete",
  summary: "Delete finished or waiting tasks",
  usage: "kvq delete ID|NAME [ID|NAME…]",
  options: {},
  help: `  ID|NAME   task ids or human names (a running task must be cancelled first)`,
  run: (ctx) => each(ctx, async (q, ref) => (await q.delete(ref), "deleted")),
};

/** `kvq retry ID|NAME… | --failed [--func F]` */
export const retryCommand: Command = {
  name: "retry",
  summary: "Put finished tasks back in the queue (Django Q's resubmit)",
  usage: "kvq retry ID|NAME [ID|NAME…] | --failed [--func F]",
  options: { failed: { type: "boolean" }, func: { type: "string" } },
  help: `  ID|NAME   task ids or human names
  --failed  every failed task (with --func, only of that function)`,
  async run(ctx) {
    if (ctx.values.failed) {
      const queue = await ctx.queue();
      let n = 0;
      let cursor: string | undefined;
      do {
        const page = await queue.tasks({
          state: "failed",
          limit: 500,
          ...(ctx.values.func ? { func: String(ctx.values.func) } : {}),
          ...(cursor ? { cursor } : {}),
        });
        for (const r of page.tasks) await queue.retry(r.id).then(() => n++, () => {});
        cursor = page.cursor ?? undefined;
      } while (cursor);
      ctx.out(ctx.json ? JSON.stringify({ retried: n }) : `Retried ${n} failed tasks`);
      return 0;
    }
    return await each(ctx, async (q, ref) => `queued again (${(await q.retry(ref)).name})`);
  },
};
