/**
 * `kvq task`: show one task.
 *
 * @module
 */
import { type Command, UsageError } from "../command.ts";
import { taskDetail } from "../_common.ts";
import { NoSuchTaskError } from "../../store/errors.ts";

/** `kvq task ID|NAME` */
export const taskCommand: Command = {
  name: "task",
  readsOnly: true,
  summary: "Show one task: args, state, timeline, errors, progress",
  usage: "kvq task ID|NAME",
  options: {},
  help: `  ID|NAME   the task id or its human name`,
  async run(ctx) {
    const ref = ctx.positionals[0];
    if (!ref) throw new UsageError("Name the task: kvq task ID|NAME");
    const queue = await ctx.queue();
    const record = await queue.fetch(ref);
    if (record === null) {
      ctx.err(new NoSuchTaskError(ref, queue.name).message);
      return 4;
    }
    ctx.out(ctx.json ? JSON.stringify(record) : taskDetail(record));
    return 0;
  },
};
