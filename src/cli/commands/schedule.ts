/**
 * `kvq schedule`: add, list, show, pause, resume, run and remove schedules.
 *
 * @module
 */
import { type Command, type CommandContext, intOption, UsageError } from "../command.ts";
import { jsonOptionText, parseArgsJson } from "../_common.ts";
import { readClusters } from "../../web/data.ts";
import { isoTime } from "../../web/format.ts";
import type { Store } from "../../store/store.ts";
import type { ScheduleInput } from "../../schedule/add.ts";
import { Schedules } from "../../schedule/api.ts";
import { NoSuchScheduleError } from "../../schedule/errors.ts";
import type { ScheduleRecord } from "../../schedule/record.ts";
import { SCHEDULE_TYPES, type ScheduleType } from "../../schedule/spec.ts";

const ACTIONS = ["add", "list", "show", "pause", "resume", "run", "rm"] as const;

/** `kvq schedule add|list|show|pause|resume|run|rm …` */
export const scheduleCommand: Command = {
  name: "schedule",
  readsOnly: (positionals) => positionals[0] === "list" || positionals[0] === "show",
  readsCopy: (positionals) => positionals[0] === "list" || positionals[0] === "show",
  summary: "Add, list, pause, resume, run and remove schedules",
  usage: "kvq schedule add NAME FUNC --type T [--cron EXPR] [--minutes N] [--tz ZONE] " +
    "[--args JSON] [--repeats N] [--next-run ISO] [--catch-up] [--no-overlap] [--intended-date] " +
    "[--replace] | kvq schedule list | kvq schedule show|pause|resume|run|rm NAME",
  options: {
    args: { type: "string" },
    type: { type: "string" },
    cron: { type: "string" },
    tz: { type: "string" },
    minutes: { type: "string" },
    repeats: { type: "string" },
    "next-run": { type: "string" },
    "catch-up": { type: "boolean" },
    "no-overlap": { type: "boolean" },
    "intended-date": { type: "boolean" },
    paused: { type: "boolean" },
    replace: { type: "boolean" },
    priority: { type: "string" },
    timeout: { type: "string" },
    "max-attempts": { type: "string" },
  },
  help: `  add NAME FUNC      add a schedule NAME that calls the task FUNC
  list               every schedule of the queue, by name
  show NAME          one schedule in full
  pause NAME         stop firing until resumed
  resume NAME        fire again from the next slot at or after now
  run NAME           enqueue its task now; the next run does not move
  rm NAME            remove it (its tasks stay)

Options of add:
  --type T           ${SCHEDULE_TYPES.join(", ")}
  --cron EXPR        for --type cron: 5 fields, or 6 with seconds first
  --minutes N        for --type minutes: the step, at least 1
  --tz ZONE          IANA time zone for wall-clock times (default UTC)
  --args JSON        the task's arguments as a JSON array, e.g. '[1, 2]' (@FILE or - read
                     them from a file or standard input)
  --repeats N        runs in all; -1 forever (default)
  --next-run ISO     the first run, e.g. 2026-12-01T09:00:00Z (default: now, or the next cron time)
  --catch-up         after an outage fire every missed slot, not only the latest
  --no-overlap       skip a slot while the previous task is still waiting or running
  --intended-date    pass the slot's intended time (ISO) as an extra last argument
  --paused           add it paused
  --replace          overwrite a schedule of the same name
  --priority N       task priority, lower runs first (default 0)
  --timeout MS       stop a task attempt after MS milliseconds
  --max-attempts N   task attempts in all (1 = no retry)

Examples:
  kvq schedule add nightly sendReport --type cron --cron '0 2 * * *' --tz Europe/Berlin
  kvq schedule add poll checkFeeds --type minutes --minutes 15 --no-overlap
  kvq schedule pause nightly`,
  async run(ctx) {
    const [action, ...rest] = ctx.positionals;
    if (action === undefined) {
      throw new UsageError(`Name an action: ${ACTIONS.join(", ")}`);
    }
    switch (action) {
      case "add":
        return await add(ctx, rest);
      case "list":
      case "ls":
        expectArgs(rest, 0, action);
        return await list(ctx);
      case "show":
      case "pause":
      case "resume":
      case "run":
      case "rm":
        return await one(ctx, action, expectArgs(rest, 1, action)[0]!);
      default:
        throw new UsageError(
          `Unknown action ${JSON.stringify(action)}: use one of ${ACTIONS.join(", ")}`,
        );
    }
  },
};

function expectArgs(rest: string[], count: number, action: string): string[] {
  if (rest.length < count) {
    throw new UsageError(`Name the schedule, e.g. kvq schedule ${action} nightly`);
  }
  if (rest.length > count) {
    throw new UsageError(`Unexpected argument ${JSON.stringify(rest[count])} after ${action}`);
  }
  return rest;
}

async function add(ctx: CommandContext, rest: string[]): Promise<number> {
  const [name, func, extra] = rest;
  if (name === undefined || func === undefined) {
    throw new UsageError(
      "Name the schedule and its task, e.g. kvq schedule add nightly sendReport --type daily",
    );
  }
  if (extra !== undefined) {
    throw new UsageError(
      `Unexpected argument ${JSON.stringify(extra)}; pass arguments with --args '[…]'`,
    );
  }
  const v = ctx.values;
  // --cron says the type by itself.
  const type = v.type ?? (v.cron !== undefined ? "cron" : undefined);
  if (typeof type !== "string") {
    throw new UsageError(
      `--type is required (or --cron EXPR): use one of ${SCHEDULE_TYPES.join(", ")}`,
    );
  }
  if (v.cron !== undefined && type !== "cron") {
    throw new UsageError(`--cron goes with --type cron: received --type ${type}`);
  }
  const input: ScheduleInput = {
    name,
    func,
    args: parseArgsJson(await jsonOptionText(v.args as string | undefined, "--args")),
    type: type as ScheduleType,
  };
  if (v.cron !== undefined) input.cron = String(v.cron);
  if (v.tz !== undefined) input.tz = String(v.tz);
  const minutes = intOption(v, "minutes");
  if (minutes !== undefined) input.minutes = minutes;
  const repeats = intOption(v, "repeats", { min: -1 });
  if (repeats !== undefined) input.repeats = repeats;
  if (v["next-run"] !== undefined) input.nextRun = String(v["next-run"]);
  if (v["catch-up"] === true) input.catchUp = true;
  if (v["no-overlap"] === true) input.noOverlap = true;
  if (v["intended-date"] === true) input.intendedDateArg = true;
  if (v.paused === true) input.paused = true;
  const priority = intOption(v, "priority");
  if (priority !== undefined) input.priority = priority;
  const timeout = intOption(v, "timeout", { min: 1 });
  if (timeout !== undefined) input.timeout = timeout;
  const attempts = intOption(v, "max-attempts", { min: 1 });
  if (attempts !== undefined) input.maxAttempts = attempts;

  const store = (await ctx.queue()).store;
  const schedules = new Schedules(store);
  const { name: _, func: __, args, ...options } = input;
  const record = await schedules.add(name, func, args ?? [], {
    ...options,
    ...(v.replace === true ? { replace: true } : {}),
  });
  if (ctx.json) ctx.out(JSON.stringify(record));
  else ctx.out(`Added schedule ${record.name}: ${func} ${when(record)}, next run ${next(record)}`);
  const warning = await unservedFunc(store, func);
  if (warning) ctx.err(`kvq schedule: warning: ${warning}`);
  return 0;
}

/**
 * Why `func` would not run now, when no live cluster of the queue exports it; null when one does
 * (or a cluster of an older release serves it and does not say what it exports).
 */
async function unservedFunc(store: Store, func: string): Promise<string | null> {
  const live = (await readClusters([store], undefined, { confirm: true })).filter((v) => !v.silent);
  if (live.length === 0) {
    return `no cluster serves queue ${store.queue} now; the schedule fires once one runs with a task module that exports ${func}.`;
  }
  if (live.some((v) => v.stat.funcs === undefined || v.stat.funcs.includes(func))) return null;
  const exported = [...new Set(live.flatMap((v) => v.stat.funcs ?? []))].sort();
  return `no running cluster of queue ${store.queue} exports ${JSON.stringify(func)} (they export ${
    exported.join(", ") || "nothing"
  }). Each fire will fail with TaskNotFoundError until one does; check the name.`;
}

async function list(ctx: CommandContext): Promise<number> {
  const queue = await ctx.queue();
  const records = await new Schedules(queue.store).list({
    onCorrupt: (error) => ctx.err(error.message),
  });
  if (ctx.json) {
    ctx.out(JSON.stringify(records));
    return 0;
  }
  if (records.length === 0) {
    ctx.out(`No schedules in queue ${queue.name}. Add one with 'kvq schedule add'.`);
    return 0;
  }
  const rows = [
    ["NAME", "FUNC", "WHEN", "NEXT RUN", "REPEATS", "STATE"],
    ...records.map((r) => [r.name, r.func, when(r), next(r), repeatsOf(r), stateOf(r)]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows) {
    ctx.out(row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i]!)).join("  "));
  }
  return 0;
}

async function one(ctx: CommandContext, action: string, name: string): Promise<number> {
  const queue = await ctx.queue();
  const schedules = new Schedules(queue.store);
  switch (action) {
    case "show": {
      const record = await schedules.get(name);
      if (record === null) throw new NoSuchScheduleError(name, queue.name);
      ctx.out(ctx.json ? JSON.stringify(record) : detail(record));
      return 0;
    }
    case "pause": {
      const record = await schedules.pause(name);
      ctx.out(ctx.json ? JSON.stringify(record) : `Paused schedule ${name}.`);
      return 0;
    }
    case "resume": {
      const record = await schedules.resume(name);
      ctx.out(
        ctx.json ? JSON.stringify(record) : `Resumed schedule ${name}: next run ${next(record)}.`,
      );
      return 0;
    }
    case "run": {
      const task = await schedules.runNow(name);
      ctx.out(
        ctx.json
          ? JSON.stringify({ id: task.id, name: task.name })
          : `Enqueued ${task.id} ${task.name} from schedule ${name}.`,
      );
      return 0;
    }
    default: {
      if (!(await schedules.delete(name))) throw new NoSuchScheduleError(name, queue.name);
      ctx.out(ctx.json ? JSON.stringify({ deleted: name }) : `Removed schedule ${name}.`);
      return 0;
    }
  }
}

function when(r: ScheduleRecord): string {
  const zone = r.tz === "UTC" ? "" : ` (${r.tz})`;
  if (r.type === "cron") return `cron "${r.cron}"${zone}`;
  if (r.type === "minutes") return `every ${r.minutes} minute${r.minutes === 1 ? "" : "s"}`;
  if (r.type === "once" || r.type === "hourly") return r.type;
  return `${r.type}${zone}`;
}

function next(r: ScheduleRecord): string {
  if (r.done) return "-";
  return isoTime(r.nextRun!);
}

function repeatsOf(r: ScheduleRecord): string {
  return r.repeats === -1 ? "forever" : String(r.repeats);
}

function stateOf(r: ScheduleRecord): string {
  return r.done ? "done" : r.paused ? "paused" : "active";
}

function detail(r: ScheduleRecord): string {
  const t = (ms: number | null) => (ms === null ? "-" : isoTime(ms));
  const flags = [
    r.catchUp ? "catch-up" : "",
    r.noOverlap ? "no-overlap" : "",
    r.intendedDateArg ? "intended-date" : "",
  ].filter(Boolean).join(", ");
  return [
    `name        ${r.name}`,
    `func        ${r.func}`,
    `args        ${JSON.stringify(r.args)}`,
    `queue       ${r.queue}   priority ${r.priority}${
      r.timeout !== null ? `   timeout ${r.timeout} ms` : ""
    }${r.maxAttempts !== null ? `   max attempts ${r.maxAttempts}` : ""}`,
    `when        ${when(r)}`,
    `state       ${stateOf(r)}   repeats ${repeatsOf(r)}${flags ? `   ${flags}` : ""}`,
    `next run    ${next(r)}`,
    `first run   ${t(r.anchor)}`,
    `last run    ${t(r.lastRunAt)}${r.lastTaskId ? `   task ${r.lastTaskId}` : ""}`,
    `created     ${t(r.createdAt)}`,
  ].join("\n");
}
