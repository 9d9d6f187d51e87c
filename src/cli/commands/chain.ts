/**
 * `kvq chain`: enqueue tasks that run one after another.
 *
 * @module
 */
import { type Command, intOption, UsageError } from "../command.ts";
import type { EnqueueCall } from "../../queue/queue.ts";
import type { ChainStatus } from "../../store/chain.ts";

const EXAMPLE = "--step 'add [1, 2]' --step double";

/**
 * Reads one `--step` value, `FUNC` or `FUNC JSON_ARGS`: the name, then (after a space) its
 * arguments as a JSON array. `index` counts from 0; messages count steps from 1.
 */
export function parseStep(text: string, index: number): EnqueueCall {
  const trimmed = text.trim();
  const space = trimmed.search(/\s/);
  const func = space < 0 ? trimmed : trimmed.slice(0, space);
  const argsText = space < 0 ? "" : trimmed.slice(space).trim();
  const label = `Step ${index + 1} (${JSON.stringify(text)})`;
  if (func === "") throw new UsageError(`${label} names no task; write --step 'FUNC [ARGS]'`);
  if (argsText === "") return { func, args: [] };
  let args: unknown;
  try {
    args = JSON.parse(argsText);
  } catch (error) {
    throw new UsageError(
      `${label}: its arguments must be a JSON array, e.g. --step '${func} [1, 2]': ${
        (error as Error).message
      }`,
    );
  }
  if (!Array.isArray(args)) {
    throw new UsageError(
      `${label}: its arguments must be a JSON array, e.g. --step '${func} [${argsText}]'`,
    );
  }
  return { func, args };
}

/** The status of a chain as one line of text. */
export function chainLine(status: ChainStatus): string {
  // Steps count from 1, as a person counts them.
  return `${status.state} at step ${status.current + 1} of ${status.steps.length}: ${
    JSON.stringify(status.results)
  }${status.error ? `\n${status.error.name}: ${status.error.message}` : ""}`;
}

/**
 * The line on stderr for a chain that did not succeed: how it stands, and what to do next.
 */
export function chainUnsuccessfulLine(status: ChainStatus): string {
  const at = `step ${status.current + 1} of ${status.steps.length}`;
  if (status.state === "failed") {
    const why = status.error ? `: ${status.error.name}: ${status.error.message}` : "";
    return `Chain ${status.id} failed at ${at}${why}`;
  }
  return `Chain ${status.id} is still ${status.state} at ${at}. Wait longer with: kvq result --chain ${status.id} --wait MS`;
}

/** `kvq chain --step 'FUNC [ARGS]' … [--pass-result] [--group G] [--wait MS]` */
export const chainCommand: Command = {
  name: "chain",
  summary: "Enqueue a chain: tasks that run one after another",
  usage: "kvq chain --step 'FUNC [ARGS]' [--step …] [--pass-result] [--group G] [--wait MS]",
  options: {
    step: { type: "string", multiple: true },
    "pass-result": { type: "boolean" },
    group: { type: "string" },
    wait: { type: "string" },
  },
  help: `  --step 'FUNC [ARGS]'  a step, in order: the task's name, then its arguments as a JSON
                       array (none if left out); repeat for each step
  --pass-result        give each step the previous step's result as an extra last argument
  --group G            put every step in group G
  --wait MS            wait up to MS for the chain to end and print each step's result

Prints the chain id; read it later with 'kvq result --chain ID'.
Exit codes with --wait: 0 succeeded, 1 failed, 3 not finished.

Example:
  kvq chain ${EXAMPLE} --pass-result --wait 5000`,
  async run(ctx) {
    if (ctx.positionals.length > 0) {
      throw new UsageError(
        `Unexpected argument ${JSON.stringify(ctx.positionals[0])}; give each step with --step, ` +
          `e.g. kvq chain ${EXAMPLE}`,
      );
    }
    const raw = (ctx.values.step as string[] | undefined) ?? [];
    if (raw.length === 0) {
      throw new UsageError(`Give the chain at least one --step, e.g. kvq chain ${EXAMPLE}`);
    }
    const steps = raw.map(parseStep);
    const wait = intOption(ctx.values, "wait", { min: 0 });
    const queue = await ctx.queue();
    let id: string;
    try {
      id = await queue.chain(steps, {
        passResult: ctx.values["pass-result"] === true,
        ...(ctx.values.group !== undefined ? { group: String(ctx.values.group) } : {}),
      });
    } catch (error) {
      // The queue checks each step's name and arguments before storing anything.
      if (error instanceof TypeError || error instanceof RangeError) {
        throw new UsageError(error.message);
      }
      throw error;
    }
    if (wait === undefined) {
      ctx.out(ctx.json ? JSON.stringify({ id, steps: steps.length }) : id);
      return 0;
    }
    const status = await queue.waitChain(id, { wait });
    if (ctx.json) ctx.out(JSON.stringify(status));
    else {
      ctx.out(id);
      ctx.out(chainLine(status));
    }
    if (status.state !== "succeeded") ctx.err(chainUnsuccessfulLine(status));
    return status.state === "succeeded" ? 0 : status.state === "failed" ? 1 : 3;
  },
};
