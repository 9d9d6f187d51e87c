/**
 * Add: validates a schedule completely, then stores its record and `schedule_due` entry in one
 * commit that checks the name is free (or, with `replace`, that the replaced record is unchanged).
 *
 * @module
 */
import { prepareRecords } from "../store/spec.ts";
import { INLINE_PAYLOAD_BYTES, MAX_TIME_MS, MAX_TIMEOUT_MS } from "../store/limits.ts";
import type { Store } from "../store/store.ts";
import { type JsonValue, toJson } from "../task/json.ts";
import { ScheduleExistsError } from "./errors.ts";
import { nextRun as nextSlot } from "./next_run.ts";
import { ScheduleRecord, validateScheduleName } from "./record.ts";
import { type ScheduleSpec, type ScheduleType, validateSpec } from "./spec.ts";
import { addScheduleMutations, SCHEDULE_COMMIT_ATTEMPTS } from "./_write.ts";
import { commitAtomic } from "../store/commit.ts";
import { signSchedule } from "../task/signature.ts";

/** When and how a schedule fires, and the options of the tasks it creates. */
export interface ScheduleOptions {
  /** How the schedule repeats (Django Q's schedule types, plus cron). */
  type: ScheduleType;
  /** The step of a `minutes` schedule: a whole number of minutes, at least 1. */
  minutes?: number;
  /** A cron expression of 5 fields, or 6 with seconds first. Only for `cron`. */
  cron?: string;
  /**
   * The IANA time zone wall-clock times are read in.
   * @default {"UTC"}
   */
  tz?: string;
  /**
   * How many runs: -1 forever, 0 none (stored as done), N that many.
   * @default -1
   */
  repeats?: number;
  /**
   * The first run (a Date, epoch ms, or ISO 8601 text); it fixes the slots. For cron, the first
   * cron time at or after it.
   * @default now for interval types and once; the next cron time after now for cron
   */
  nextRun?: Date | number | string;
  /**
   * After an outage, fire every missed slot (true) or only the latest one (false).
   * @default false
   */
  catchUp?: boolean;
  /**
   * Pass each slot's intended time to the task as an extra last argument (ISO 8601 text).
   * @default false
   */
  intendedDateArg?: boolean;
  /**
   * Skip a slot while the previous task is still scheduled, queued or running.
   * @default false
   */
  noOverlap?: boolean;
  /**
   * Store the schedule paused.
   * @default false
   */
  paused?: boolean;
  /**
   * Task option: milliseconds an attempt may run.
   * @default the cluster's --timeout
   */
  timeout?: number;
  /**
   * Task option: attempts allowed in all.
   * @default the cluster's --max-attempts
   */
  maxAttempts?: number;
  /**
   * Task option: lower runs first.
   * @default 0
   */
  priority?: number;
}

/** A schedule to add: its name, the call it makes, and its options. */
export interface ScheduleInput extends ScheduleOptions {
  /** Unique within the queue, 1-128 characters. */
  name: string;
  /** The registered task function's name. */
  func: string;
  /**
   * The task's arguments (JSON values).
   * @default []
   */
  args?: readonly unknown[];
}

/** Options for {@linkcode addSchedule}. */
export interface AddScheduleOptions {
  /**
   * Overwrite a schedule of the same name (keeping its creation time and last task).
   * @default false
   */
  replace?: boolean;
}

const INPUT_FIELDS: ReadonlySet<string> = new Set([
  "name",
  "func",
  "args",
  "type",
  "minutes",
  "cron",
  "tz",
  "repeats",
  "nextRun",
  "catchUp",
  "intendedDateArg",
  "noOverlap",
  "paused",
  "timeout",
  "maxAttempts",
  "priority",
]);

const FUNC_NAME = /^[A-Za-z_$][A-Za-z0-9_$]{0,127}$/;
/** Room kept in the task's inline payload for the intended-date argument. */
const INTENDED_DATE_BYTES = 64;
const encoder = new TextEncoder();

/**
 * Validates a schedule and stores it. Every field is checked before anything is written, so a
 * bad schedule stores nothing.
 *
 * @throws {TypeError | RangeError} naming the bad field and its value.
 * @throws {ScheduleExistsError} when the name is taken and `replace` is not set.
 *
 * @example
 * ```ts
 * await addSchedule(store, {
 *   name: "nightly-report",
 *   func: "sendReport",
 *   args: ["ops@example.com"],
 *   type: "cron",
 *   cron: "0 2 * * *",
 *   tz: "Europe/Berlin",
 * });
 * ```
 */
export async function addSchedule(
  store: Store,
  input: ScheduleInput,
  options: AddScheduleOptions = {},
): Promise<ScheduleRecord> {
  const replace = options.replace ?? false;
  if (typeof replace !== "boolean") {
    throw new TypeError(
      `Option "replace" must be true or false: received ${JSON.stringify(replace)}`,
    );
  }
  const now = store.now();
  const fresh = buildRecord(store, input, now);
  const name = fresh.name;
  const key = store.keys.schedule(name);
  for (let attempt = 0; attempt < SCHEDULE_COMMIT_ATTEMPTS; attempt++) {
    const entry = await store.kv.get(key, { consistency: "strong" });
    if (entry.versionstamp !== null && !replace) throw new ScheduleExistsError(name, store.queue);
    let before: ScheduleRecord | null = null;
    if (entry.versionstamp !== null) {
      try {
        before = ScheduleRecord.decode(entry.key, entry.value);
      } catch {
        // a corrupt record is what replace repairs; its stale due entry is dropped when due
      }
    }
    const record = before === null ? fresh : fresh.with({
      createdAt: before.createdAt,
      lastTaskId: before.lastTaskId,
      lastRunAt: before.lastRunAt,
    });
    const atomic = store.kv.atomic().check({ key, versionstamp: entry.versionstamp });
    addScheduleMutations(store, atomic, before, record, now);
    if ((await commitAtomic(atomic)).ok) {
      store.changes.notifyLocal();
      return record;
    }
  }
  throw new Error(`Schedule ${JSON.stringify(name)} kept changing while being added; try again.`);
}

function buildRecord(store: Store, input: ScheduleInput, now: number): ScheduleRecord {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new TypeError(`A schedule must be an object with name, func and type`);
  }
  for (const key of Object.keys(input)) {
    if (!INPUT_FIELDS.has(key)) {
      throw new TypeError(
        `Schedule field "${key}" is unknown: use only ${[...INPUT_FIELDS].join(", ")}`,
      );
    }
  }
  const name = validateScheduleName(input.name);
  const what = `schedule ${JSON.stringify(name)}`;
  if (typeof input.func !== "string" || !FUNC_NAME.test(input.func)) {
    throw new TypeError(
      `Schedule field "func" of ${what} must be a task name such as "sendEmail": received ${
        JSON.stringify(input.func)
      }`,
    );
  }
  const args = input.args ?? [];
  if (!Array.isArray(args)) {
    throw new TypeError(
      `Schedule field "args" of ${what} must be an array: received ${JSON.stringify(args)}`,
    );
  }
  const argsJson = toJson(args, `schedule field "args" of ${what}`);
  const argsBytes = encoder.encode(argsJson).length;
  if (argsBytes + INTENDED_DATE_BYTES > INLINE_PAYLOAD_BYTES) {
    throw new RangeError(
      `Schedule field "args" of ${what} must be at most ${
        INLINE_PAYLOAD_BYTES - INTENDED_DATE_BYTES
      } bytes of JSON: received ${argsBytes} bytes. Store large data elsewhere and pass a key.`,
    );
  }

  const spec = validateSpec(specOf(input));
  const repeats = input.repeats ?? -1;
  if (!Number.isSafeInteger(repeats) || repeats < -1) {
    throw new RangeError(
      `Schedule field "repeats" of ${what} must be -1 (forever), 0 or a whole number of runs: received ${
        JSON.stringify(repeats)
      }`,
    );
  }
  const flag = (field: keyof ScheduleOptions): boolean => {
    const value = input[field] ?? false;
    if (typeof value !== "boolean") {
      throw new TypeError(
        `Schedule field "${field}" of ${what} must be true or false: received ${
          JSON.stringify(value)
        }`,
      );
    }
    return value;
  };
  const catchUp = flag("catchUp");
  const intendedDateArg = flag("intendedDateArg");
  const noOverlap = flag("noOverlap");
  const paused = flag("paused");
  const positive = (field: "timeout" | "maxAttempts"): number | null => {
    const value = input[field];
    if (value === undefined) return null;
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(
        `Schedule field "${field}" of ${what} must be a whole number, at least 1: received ${
          JSON.stringify(value)
        }`,
      );
    }
    return value;
  };
  const timeout = positive("timeout");
  if (timeout !== null && timeout > MAX_TIMEOUT_MS) {
    throw new RangeError(
      `Schedule field "timeout" of ${what} must be at most ${MAX_TIMEOUT_MS} ms (about 24.8 days): received ${timeout}`,
    );
  }
  const maxAttempts = positive("maxAttempts");
  const priority = input.priority ?? 0;
  if (!Number.isSafeInteger(priority)) {
    throw new TypeError(
      `Schedule field "priority" of ${what} must be an integer (lower runs first): received ${
        JSON.stringify(priority)
      }`,
    );
  }

  let first: number;
  if (input.nextRun === undefined) {
    first = spec.type === "cron" ? firstCron(spec, now, now, what) : now;
  } else {
    const at = parseTime(input.nextRun, what);
    first = spec.type === "cron" ? firstCron(spec, at, at - 1, what) : at;
  }

  // The tasks this schedule creates must be valid too; this checks them the way enqueue will.
  prepareRecords(store, [{
    func: input.func,
    args: intendedDateArg ? [...args, new Date(first).toISOString()] : args,
    options: {
      priority,
      ...(timeout !== null ? { timeout } : {}),
      ...(maxAttempts !== null ? { maxAttempts } : {}),
    },
  }]);

  const unsigned = new ScheduleRecord({
    name,
    func: input.func,
    args: JSON.parse(argsJson) as JsonValue[],
    type: spec.type,
    minutes: spec.minutes ?? null,
    cron: spec.cron ?? null,
    tz: spec.tz!,
    repeats,
    anchor: first,
    nextRun: repeats === 0 ? null : first,
    catchUp,
    intendedDateArg,
    queue: store.queue,
    timeout,
    maxAttempts,
    priority,
    lastTaskId: null,
    lastRunAt: null,
    noOverlap,
    paused,
    createdAt: now,
    sig: null,
  });
  // With a secret, the schedule is signed where it is written: a cluster with the secret fires
  // nothing else.
  return store.secrets === null
    ? unsigned
    : unsigned.with({ sig: signSchedule(store.secrets, unsigned) });
}

function specOf(input: ScheduleInput): Record<string, unknown> {
  const spec: Record<string, unknown> = { type: input.type };
  if (input.minutes !== undefined) spec.minutes = input.minutes;
  if (input.cron !== undefined) spec.cron = input.cron;
  if (input.tz !== undefined) spec.tz = input.tz;
  return spec;
}

/** The first cron time strictly after `after`, with the slots anchored at `anchor`. */
function firstCron(spec: ScheduleSpec, anchor: number, after: number, what: string): number {
  const first = nextSlot(spec, { anchor: new Date(anchor), after: new Date(after) });
  if (first === null) {
    throw new RangeError(
      `Schedule field "cron" of ${what} never matches after ${
        new Date(after).toISOString()
      }: received "${spec.cron}"`,
    );
  }
  return first.getTime();
}

/**
 * Parses a time: a Date, epoch milliseconds, or ISO 8601 text.
 *
 * @throws {TypeError} naming the field `nextRun` and the value.
 */
export function parseTime(value: unknown, what = "the schedule"): number {
  const ms = value instanceof Date
    ? value.getTime()
    : typeof value === "number"
    ? value
    : typeof value === "string" && /^\d{4}-\d{2}-\d{2}/.test(value)
    ? Date.parse(value)
    : NaN;
  if (!Number.isSafeInteger(ms)) {
    throw new TypeError(
      `Schedule field "nextRun" of ${what} must be a Date, epoch milliseconds or ISO 8601 text like 2026-12-01T09:00:00Z: received ${
        JSON.stringify(value instanceof Date ? "Invalid Date" : value)
      }`,
    );
  }
  if (ms < 0 || ms > MAX_TIME_MS) {
    throw new RangeError(
      `Schedule field "nextRun" of ${what} must be from 1970-01-01T00:00:00Z to +275760-09-13T00:00:00Z: received ${ms}`,
    );
  }
  return ms;
}
