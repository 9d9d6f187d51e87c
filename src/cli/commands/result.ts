/**
 * `kvq result`: print a task's result, waiting for it if asked.
 *
 * @module
 */
import { type Command, intOption, UsageError } from "../command.ts";
import { NoSuchTaskError } from "../../store/errors.ts";

/** `kvq result ID|NAME [--wait MS]` */
export const resultCommand: Command = {
  name: "result",
  summary: "Print a task's result (exit 1 if it failed, 3 if not finished)",
  usage: "kvq result ID|NAME [--wait MS]",
  options: { wait: { type: "string" } },
  help: `  ID|NAME     the task id or its human name
  --wait MS   wait up to MS milliseconds for it to finish

Exit codes: 0 succeeded, 1 failed or cancelled, 3 not finished, 4 no such task.`,
  async run(ctx) {
    const ref = ctx.positionals[0];
    if (!ref) throw new UsageError("Name the task: kvq result ID|NAME");
    const wait = intOption(ctx.values, "wait", { min: 0 }) ?? 0;
    const queue = await ctx.queue();
    let record;
    try {
      record = await queue.wait(ref, { wait });
    } catch (error) {
      if (error instanceof NoSuchTaskError) {
        ctx.err(error.message);
        return 4;
      }
      throw error;
    }
    if (ctx.json) {
      ctx.out(
        JSON.stringify({
          id: record.id,
          name: record.name,
          state: record.state,
          result: record.result ?? null,
          error: record.error,
        }),
      );
    } else if (record.state === "succeeded") ctx.out(JSON.stringify(record.result ?? null));
    else if (record.finished) {
      ctx.err(`Task ${record.id} ${record.state}: ${record.error?.name}: ${record.error?.message}`);
    } else ctx.err(`Task ${record.id} is ${record.state}; pass --wait MS to wait for it.`);
    return record.state === "succeeded" ? 0 : record.finished ? 1 : 3;
  },
};
