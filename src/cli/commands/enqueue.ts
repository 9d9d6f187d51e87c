/**
 * `kvq enqueue`: store a call to a task.
 *
 * @module
 */
import { type Command, intOption, UsageError } from "../command.ts";
import { jsonOptionText, parseArgsJson, unsuccessfulLine } from "../_common.ts";
import type { EnqueueCall } from "../../queue/queue.ts";
import { type UniqueMode, UniqueTaskError } from "../../store/enqueue.ts";

/** `kvq enqueue FUNC [--args JSON] …` */
export const enqueueCommand: Command = {
  name: "enqueue",
  summary: "Enqueue a call to a task",
  usage:
    "kvq enqueue FUNC [--args JSON] [--group G] [--partition P] [--priority N] [--delay MS | --eta ISO] [--timeout MS] [--max-attempts N] [--unique KEY [--unique-mode M]] [--hook F] [--on-failure F] [--on-timeout F] [--cached MS] [--expire-in MS] [--no-save] [--wait MS]",
  options: {
    args: { type: "string" },
    group: { type: "string" },
    partition: { type: "string" },
    priority: { type: "string" },
    delay: { type: "string" },
    eta: { type: "string" },
    timeout: { type: "string" },
    "max-attempts": { type: "string" },
    wait: { type: "string" },
    unique: { type: "string" },
    "unique-mode": { type: "string" },
    hook: { type: "string" },
    "on-failure": { type: "string" },
    "on-timeout": { type: "string" },
    cached: { type: "string" },
    "expire-in": { type: "string" },
    "no-save": { type: "boolean" },
  },
  help: `  FUNC               the task's exported function name
  --args JSON        its arguments as a JSON array, e.g. '[1, 2]'; @FILE reads them from a
                     file, - from standard input (for long ones)
  --group G          put it in a group
  --partition P      its partition (a tenant, a user, an API host): partitions take turns,
                     and 'kvq limit' can limit each one
  --priority N       lower runs first (default 0)
  --delay MS         run no earlier than MS milliseconds from now
  --eta ISO          run no earlier than this time, e.g. 2026-12-01T09:00:00Z
  --timeout MS       stop an attempt after MS milliseconds
  --max-attempts N   attempts in all (1 = no retry)
  --wait MS          wait up to MS for the result and print it
  --unique KEY       at most one unfinished task per KEY
  --unique-mode M    keep (default: print the holder), replace (cancel a waiting holder) or
                     reject (exit 1 while the key is held)
  --hook F           run task F after it ends, given the finished record
  --on-failure F     run task F after it fails for good
  --on-timeout F     run task F after it times out for good
  --cached MS        once finished, the task expires after MS milliseconds
  --expire-in MS     not started within MS milliseconds, it ends cancelled (TaskExpiredError)
                     and never runs
  --no-save          keep no result

Example:
  kvq enqueue add --args '[1, 2]' --wait 5000`,
  async run(ctx) {
    const func = ctx.positionals[0];
    if (!func) {
      throw new UsageError("Name the task to enqueue, e.g. kvq enqueue add --args '[1, 2]'");
    }
    if (ctx.positionals.length > 1) {
      throw new UsageError(
        `Unexpected argument ${
          JSON.stringify(ctx.positionals[1])
        }; pass arguments with --args '[…]'`,
      );
    }
    const args = await jsonOptionText(ctx.values.args as string | undefined, "--args");
    const call: EnqueueCall = { func, args: parseArgsJson(args) };
    if (ctx.values.group !== undefined) call.group = String(ctx.values.group);
    if (ctx.values.partition !== undefined) call.partition = String(ctx.values.partition);
    const priority = intOption(ctx.values, "priority");
    if (priority !== undefined) call.priority = priority;
    const delay = intOption(ctx.values, "delay", { min: 0 });
    if (delay !== undefined) call.delay = delay;
    if (ctx.values.eta !== undefined) call.eta = String(ctx.values.eta);
    const timeout = intOption(ctx.values, "timeout", { min: 1 });
    if (timeout !== undefined) call.timeout = timeout;
    const attempts = intOption(ctx.values, "max-attempts", { min: 1 });
    if (attempts !== undefined) call.maxAttempts = attempts;
    const wait = intOption(ctx.values, "wait", { min: 0 });
    const mode = ctx.values["unique-mode"];
    if (mode !== undefined && !["keep", "replace", "reject"].includes(String(mode))) {
      throw new UsageError(
        `--unique-mode must be keep, replace or reject: received ${JSON.stringify(mode)}`,
      );
    }
    if (ctx.values.unique !== undefined) {
      call.unique = { key: String(ctx.values.unique), mode: (mode ?? "keep") as UniqueMode };
    } else if (mode !== undefined) throw new UsageError("--unique-mode needs --unique KEY");
    if (ctx.values.hook !== undefined) call.hook = String(ctx.values.hook);
    if (ctx.values["on-failure"] !== undefined) call.onFailure = String(ctx.values["on-failure"]);
    if (ctx.values["on-timeout"] !== undefined) call.onTimeout = String(ctx.values["on-timeout"]);
    const cached = intOption(ctx.values, "cached", { min: 1 });
    if (cached !== undefined) call.cached = cached;
    const expireIn = intOption(ctx.values, "expire-in", { min: 1 });
    if (expireIn !== undefined) call.expireIn = expireIn;
    if (ctx.values["no-save"] === true) call.save = false;
    const queue = await ctx.queue();
    let task;
    try {
      task = await queue.enqueue(call);
    } catch (error) {
      if (!(error instanceof UniqueTaskError)) throw error;
      ctx.err(error.message);
      return 1;
    }
    if (wait === undefined) {
      ctx.out(
        ctx.json
          ? JSON.stringify({ id: task.id, name: task.name, existing: task.existing })
          : `${task.id} ${task.name}${task.existing ? " (already queued: unique key held)" : ""}`,
      );
      return 0;
    }
    const record = await queue.wait(task.id, { wait });
    if (ctx.json) ctx.out(JSON.stringify(record));
    else {
      ctx.out(`${task.id} ${task.name}`);
      if (record.state === "succeeded") ctx.out(JSON.stringify(record.result ?? null));
    }
    // With --json too: stdout holds the record, stderr says why the exit is not 0.
    if (record.state !== "succeeded") ctx.err(unsuccessfulLine(record, wait));
    return record.state === "succeeded" ? 0 : record.finished ? 1 : 3;
  },
};
