/**
 * `kvq tasks`: list tasks.
 *
 * @module
 */
import { type Command, intOption, UsageError } from "../command.ts";
import { taskLine } from "../_common.ts";
import { TASK_STATES, type TaskState } from "../../store/keys.ts";
import type { ListOptions } from "../../store/list.ts";
import { runSearch } from "../search.ts";

/**
 * `kvq tasks [--state S] [--func F] [--group G] [--since ISO] [--limit N] [--cursor C]`, or
 * `kvq tasks --search TEXT [--scan] [--budget MS] [--state S] [--limit N] [--cursor C]`
 */
export const tasksCommand: Command = {
  name: "tasks",
  readsOnly: true,
  readsCopy: true,
  summary: "List or search tasks, newest first",
  usage: "kvq tasks [--state S] [--func F] [--group G] [--since ISO] [--limit N] [--cursor C]\n" +
    "       kvq tasks --search TEXT [--scan] [--budget MS] [--state S] [--limit N] [--cursor C]",
  options: {
    state: { type: "string" },
    func: { type: "string" },
    group: { type: "string" },
    since: { type: "string" },
    limit: { type: "string" },
    cursor: { type: "string" },
    search: { type: "string", short: "s" },
    scan: { type: "boolean" },
    budget: { type: "string" },
  },
  help: `  --state S     one of ${TASK_STATES.join(", ")}
  --func F      only tasks of this function
  --group G     only tasks of this group
  --since ISO   only tasks enqueued since, e.g. 2026-11-27T00:00:00Z
  --limit N     at most N (default 50, up to 1000)
  --cursor C    the next page, as printed after a full page
  -s, --search TEXT  find tasks across every state and page: TEXT that is exactly a task
                id, human name, func or group is found through its look-up at once; other
                text is looked for (literally, ignoring case) in ids, names, funcs, groups,
                partitions, args and errors, reading the tasks newest first
  --scan        with --search: look for the text everywhere even when it names a func or group
  --budget MS   with --search: stop reading after MS ms and print the cursor (default 10000)

Examples:
  kvq tasks --state failed --limit 20
  kvq tasks --search sendEmail            # every sendEmail task, from the func look-up
  kvq tasks --search alice@example.com    # scans args and errors`,
  async run(ctx) {
    const options: ListOptions = { onCorrupt: (e) => ctx.err(`kvq: ${e.message}`) };
    const state = ctx.values.state as string | undefined;
    if (state !== undefined) {
      if (!TASK_STATES.includes(state as TaskState)) {
        throw new UsageError(
          `--state must be one of ${TASK_STATES.join(", ")}: received ${JSON.stringify(state)}`,
        );
      }
      options.state = state as TaskState;
    }
    const limit = intOption(ctx.values, "limit", { min: 1, max: 1000 }) ?? 50;
    if (ctx.values.search !== undefined) {
      const budgetMs = intOption(ctx.values, "budget", { min: 1, max: 3_600_000 });
      return await runSearch(ctx, String(ctx.values.search), {
        limit,
        ...(options.state ? { state: options.state } : {}),
        ...(ctx.values.cursor !== undefined ? { cursor: String(ctx.values.cursor) } : {}),
        ...(budgetMs !== undefined ? { budgetMs } : {}),
      });
    }
    for (const flag of ["scan", "budget"]) {
      if (ctx.values[flag] !== undefined) throw new UsageError(`--${flag} goes with --search TEXT`);
    }
    if (ctx.values.func !== undefined) options.func = String(ctx.values.func);
    if (ctx.values.group !== undefined) options.group = String(ctx.values.group);
    if (ctx.values.since !== undefined) {
      const since = Date.parse(String(ctx.values.since));
      if (!Number.isFinite(since)) {
        throw new UsageError(
          `--since must be an ISO time like 2026-11-27T00:00:00Z: received ${
            JSON.stringify(ctx.values.since)
          }`,
        );
      }
      options.since = since;
    }
    options.limit = limit;
    if (ctx.values.cursor !== undefined) options.cursor = String(ctx.values.cursor);
    const queue = await ctx.queue();
    const page = await queue.tasks(options);
    if (ctx.json) ctx.out(JSON.stringify(page));
    else {
      for (const r of page.tasks) ctx.out(taskLine(r));
      if (page.tasks.length === 0) ctx.err("No tasks match.");
      if (page.cursor) {
        ctx.err(`More: kvq tasks --cursor ${page.cursor}${state ? ` --state ${state}` : ""}`);
      }
    }
    return 0;
  },
};
