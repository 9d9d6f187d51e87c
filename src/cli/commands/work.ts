/**
 * `kvq work`: run queued tasks inline in this process (Django Q's sync mode).
 *
 * @module
 */
import process from "node:process";
import { type Command, UsageError } from "../command.ts";
import { runInline } from "../../cluster/inline.ts";
import { loadTaskModules } from "../../task/loader.ts";
import { plural } from "../../web/format.ts";

/** `kvq work --tasks FILE [--burst]` */
export const workCommand: Command = {
  name: "work",
  summary: "Run queued tasks in this process, without workers (for development)",
  usage: "kvq work --tasks FILE [--tasks FILE2] [--burst]",
  options: { tasks: { type: "string", multiple: true }, burst: { type: "boolean" } },
  help: `  --tasks FILE   a module whose exported functions are the tasks (repeatable)
  --burst        stop once nothing is queued`,
  async run(ctx) {
    const files = (ctx.values.tasks as string[] | undefined) ?? [];
    if (files.length === 0) {
      throw new UsageError("Pass the task module: kvq work --tasks ./tasks.ts");
    }
    const tasks = await loadTaskModules(files);
    const queue = await ctx.queue();
    const controller = new AbortController();
    const stop = () => controller.abort();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    const report = await runInline(queue.store, {
      tasks,
      burst: ctx.values.burst === true,
      signal: controller.signal,
    });
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    ctx.out(
      ctx.json
        ? JSON.stringify(report)
        : `Ran ${
          plural(report.processed, "attempt")
        }: ${report.succeeded} succeeded, ${report.failed} failed`,
    );
    return 0;
  },
};
