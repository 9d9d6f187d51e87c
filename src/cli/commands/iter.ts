/**
 * `kvq iter`: enqueue one task per argument list and collate the results.
 *
 * @module
 */
import { type Command, intOption, UsageError } from "../command.ts";
import { jsonOptionText } from "../_common.ts";
import type { IterStatus } from "../../store/iter.ts";

const EXAMPLE = "kvq iter add --args-list '[[1, 2], [3, 4]]'";

/** Reads `--args-list`: a JSON array of argument arrays (a non-array item is one argument). */
export function parseArgsList(text: string | undefined): unknown[] {
  if (text === undefined) {
    throw new UsageError(`Give the argument lists with --args-list JSON, e.g. ${EXAMPLE}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(
      `--args-list must be JSON, e.g. --args-list '[[1, 2], [3, 4]]': ${
        (error as Error).message
      } in ${JSON.stringify(text)}`,
    );
  }
  if (!Array.isArray(value)) {
    throw new UsageError(
      `--args-list must be a JSON array of argument arrays, e.g. '[[1, 2], [3, 4]]': received ${
        JSON.stringify(text)
      }`,
    );
  }
  if (value.length === 0) throw new UsageError("--args-list is empty: give at least one item");
  return value;
}

/** `kvq iter FUNC --args-list JSON [--group G] [--wait MS]` */
/**
 * The line on stderr for an iter that did not succeed (some members still running, or failed),
 * or null when every member succeeded.
 */
export function iterUnsuccessfulLine(status: IterStatus): string | null {
  if (!status.finished) {
    return `Iter ${status.id}: ${status.done} of ${status.total} finished. Wait longer with: kvq result --iter ${status.id} --wait MS`;
  }
  if (status.failed > 0) {
    return `Iter ${status.id}: ${status.failed} of ${status.total} members failed (null in the results)`;
  }
  return null;
}

export const iterCommand: Command = {
  name: "iter",
  summary: "Enqueue one task per argument list; results collate in input order",
  usage: "kvq iter FUNC --args-list JSON [--group G] [--wait MS]",
  options: {
    "args-list": { type: "string" },
    group: { type: "string" },
    wait: { type: "string" },
  },
  help: `  FUNC              the task's exported function name
  --args-list JSON  a JSON array with one argument array per task, e.g. '[[1, 2], [3, 4]]'
                    (an item that is not an array is the single argument)
  --group G         put every task in group G
  --wait MS         wait up to MS for all of them and print the results in input order
                    (null for a failed one)

Prints the iter id; read it later with 'kvq result --iter ID'.
Exit codes with --wait: 0 all succeeded, 1 one failed, 3 not finished.

Example:
  ${EXAMPLE} --wait 5000`,
  async run(ctx) {
    const func = ctx.positionals[0];
    if (!func) throw new UsageError(`Name the task, e.g. ${EXAMPLE}`);
    if (ctx.positionals.length > 1) {
      throw new UsageError(
        `Unexpected argument ${
          JSON.stringify(ctx.positionals[1])
        }; pass the argument lists with --args-list '[[…], […]]'`,
      );
    }
    const argsList = parseArgsList(
      await jsonOptionText(ctx.values["args-list"] as string | undefined, "--args-list"),
    );
    const wait = intOption(ctx.values, "wait", { min: 0 });
    const queue = await ctx.queue();
    let id: string;
    try {
      id = await queue.iter(
        func,
        argsList,
        ctx.values.group !== undefined ? { group: String(ctx.values.group) } : {},
      );
    } catch (error) {
      // The queue checks the name and every argument list before storing anything.
      if (error instanceof TypeError || error instanceof RangeError) {
        throw new UsageError(error.message);
      }
      throw error;
    }
    if (wait === undefined) {
      ctx.out(ctx.json ? JSON.stringify({ id, total: argsList.length }) : id);
      return 0;
    }
    const results = await queue.iterResult(id, { wait, failures: true });
    const status = await queue.iterStatus(id);
    if (ctx.json) ctx.out(JSON.stringify({ ...status, results: results ?? null }));
    else {
      ctx.out(id);
      if (results !== undefined) ctx.out(JSON.stringify(results));
    }
    const why = iterUnsuccessfulLine(status);
    if (why !== null) ctx.err(why);
    if (results === undefined) return 3;
    return status.failed > 0 ? 1 : 0;
  },
};
