/**
 * `kvq result`: print a task's result, waiting for it if asked.
 *
 * @module
 */
import { type Command, intOption, UsageError } from "../command.ts";
import { NoSuchTaskError } from "../../store/errors.ts";
import type { Queue } from "../../queue/queue.ts";
import { unsuccessfulLine } from "../_common.ts";
import { chainLine, chainUnsuccessfulLine } from "./chain.ts";
import { iterUnsuccessfulLine } from "./iter.ts";

/** A hint when `ref` is the id of a chain or an iter rather than of a task. */
async function groupHint(queue: Queue, ref: string): Promise<string> {
  const exists = (p: Promise<unknown>) => p.then(() => true, () => false);
  if (await exists(queue.iterStatus(ref))) {
    return ` It is an iter: kvq result --iter ${ref}`;
  }
  if (await exists(queue.chainStatus(ref))) {
    return ` It is a chain: kvq result --chain ${ref}`;
  }
  return "";
}

/** `kvq result ID|NAME [--wait MS]` */
export const resultCommand: Command = {
  name: "result",
  readsOnly: true,
  summary: "Print a task's result (exit 1 if it failed, 3 if not finished)",
  usage: "kvq result ID|NAME [--wait MS] | kvq result --chain ID | kvq result --iter ID",
  options: {
    wait: { type: "string" },
    chain: { type: "boolean" },
    iter: { type: "boolean" },
  },
  help: `  ID|NAME     the task id or its human name
  --wait MS   wait up to MS milliseconds for it to finish
  --chain     ID is a chain: print its status and every step's result
  --iter      ID is an iter: print its results in input order (null for a failed member)

Exit codes: 0 succeeded, 1 failed or cancelled, 3 not finished, 4 no such task.`,
  async run(ctx) {
    const ref = ctx.positionals[0];
    if (!ref) throw new UsageError("Name the task: kvq result ID|NAME");
    const wait = intOption(ctx.values, "wait", { min: 0 }) ?? 0;
    const queue = await ctx.queue();
    if (ctx.values.chain || ctx.values.iter) {
      try {
        if (ctx.values.chain) {
          const status = await queue.waitChain(ref, { wait });
          ctx.out(ctx.json ? JSON.stringify(status) : chainLine(status));
          if (status.state !== "succeeded") ctx.err(chainUnsuccessfulLine(status));
          return status.state === "succeeded" ? 0 : status.state === "failed" ? 1 : 3;
        }
        const results = await queue.iterResult(ref, { wait, failures: true });
        const status = await queue.iterStatus(ref);
        if (results !== undefined) ctx.out(JSON.stringify(results));
        const why = iterUnsuccessfulLine(status);
        if (why !== null) ctx.err(why);
        if (results === undefined) return 3;
        return status.failed > 0 ? 1 : 0;
      } catch (error) {
        if (error instanceof NoSuchTaskError) {
          ctx.err(error.message);
          return 4;
        }
        throw error;
      }
    }
    let record;
    try {
      record = await queue.wait(ref, { wait });
    } catch (error) {
      if (error instanceof NoSuchTaskError) {
        ctx.err(`${error.message}${await groupHint(queue, ref)}`);
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
    // With --json too: stdout holds the record, stderr says why the exit is not 0.
    if (record.state !== "succeeded") ctx.err(unsuccessfulLine(record, wait));
    return record.state === "succeeded" ? 0 : record.finished ? 1 : 3;
  },
};
