/**
 * `kvq tasks --search TEXT`: prints each match as the search finds it, a progress line on a
 * terminal while a scan reads, then what was read and how to go on.
 *
 * @module
 */
import type { CommandContext } from "./command.ts";
import { UsageError } from "./command.ts";
import { taskLine } from "./_common.ts";
import { progressLine } from "./commands/export.ts";
import type { TaskState } from "../store/keys.ts";
import { checkText, type SearchOptions } from "../store/search.ts";

/** How long a search from the command line may scan, unless `--budget` says. */
export const CLI_SEARCH_BUDGET_MS = 10_000;

/** Runs `kvq tasks --search`; `state`, `limit` and `cursor` as `kvq tasks` read them. */
export async function runSearch(
  ctx: CommandContext,
  text: string,
  given: { state?: TaskState; limit: number; cursor?: string; budgetMs?: number },
): Promise<number> {
  for (const flag of ["func", "group", "since"]) {
    if (ctx.values[flag] !== undefined) {
      throw new UsageError(
        `--search can't be combined with --${flag}: search for the func or group itself, or list with --${flag} alone`,
      );
    }
  }
  try {
    checkText(text);
  } catch (error) {
    throw new UsageError(`--search: ${(error as Error).message}`);
  }
  const queue = await ctx.queue();
  const progress = progressLine(ctx.progress === true && !ctx.json);
  const options: SearchOptions = {
    limit: given.limit,
    budgetMs: given.budgetMs ?? CLI_SEARCH_BUDGET_MS,
    scan: ctx.values.scan === true,
    onSkip: (e) => {
      progress.done();
      ctx.err(`kvq: skipped: ${e.message}`);
    },
    ...(given.state ? { state: given.state } : {}),
    ...(given.cursor ? { cursor: given.cursor } : {}),
  };
  if (!ctx.json) {
    options.onMatch = (r) => {
      progress.done();
      ctx.out(taskLine(r));
    };
    options.onProgress = (p) =>
      progress.update(
        `kvq: searched ${p.scanned.toLocaleString("en")} of ~${
          p.total.toLocaleString("en")
        } tasks, ${p.matched} found…`,
      );
  }
  const started = performance.now();
  let page;
  try {
    page = await queue.search(text, options);
  } catch (error) {
    if (given.cursor && /cursor/.test((error as Error).message)) {
      throw new UsageError(`--cursor: ${(error as Error).message}`);
    }
    throw error;
  } finally {
    progress.done();
  }
  if (ctx.json) {
    ctx.out(JSON.stringify(page));
    return 0;
  }
  const ms = Math.round(performance.now() - started);
  const how = page.via === "lookup"
    ? `exact ${page.fields.join(", ")} match(es), from the look-ups`
    : `searched ${page.scanned.toLocaleString("en")} of ~${page.total.toLocaleString("en")} tasks${
      page.outOfTime ? ` (stopped at the ${options.budgetMs} ms budget)` : ""
    }`;
  ctx.err(
    `${
      page.tasks.length === 0 ? "No tasks match" : `${page.tasks.length} found`
    }: ${how}, ${ms} ms.`,
  );
  if (page.via === "lookup" && !options.scan) {
    ctx.err(`To look for the text in args and errors too: add --scan.`);
  }
  if (page.cursor) {
    const flags = [
      `--search ${JSON.stringify(text)}`,
      ...(given.state ? [`--state ${given.state}`] : []),
      ...(options.scan ? ["--scan"] : []),
      `--cursor ${page.cursor}`,
    ];
    ctx.err(`More: kvq tasks ${flags.join(" ")}`);
  }
  return 0;
}
