/**
 * What a schedule repeats on: its type (Django Q's schedule types), the step for `minutes`, the
 * expression for `cron`, and the IANA time zone its wall-clock times are read in.
 *
 * @module
 */

import { Cron } from "croner";
import { isTimeZone } from "./_zoned.ts";

/**
 * The schedule types, those of Django Q.
 *
 * - `once`: a single run at the anchor, then nothing.
 * - `minutes`: every `minutes` minutes of elapsed time.
 * - `hourly`: every 60 minutes of elapsed time.
 * - `daily`, `weekly`, `biweekly`: every 1, 7 or 14 days at the same local wall-clock time.
 * - `monthly`, `bimonthly`, `quarterly`, `yearly`: every 1, 2, 3 or 12 months on the anchor's
 *   day (clamped to the month end) at the same local wall-clock time.
 * - `cron`: the runs of a 5-field (minute precision) or 6-field (seconds first) cron expression.
 */
export const SCHEDULE_TYPES = [
  "once",
  "minutes",
  "hourly",
  "daily",
  "weekly",
  "biweekly",
  "monthly",
  "bimonthly",
  "quarterly",
  "yearly",
  "cron",
] as const;

/** One of {@linkcode SCHEDULE_TYPES}. */
export type ScheduleType = typeof SCHEDULE_TYPES[number];

/** The time zone of a schedule that names none. */
export const DEFAULT_TIME_ZONE = "UTC";

/**
 * When a schedule fires, without its state (anchor, next run, repeats left).
 *
 * @example
 * ```ts
 * const everyQuarterHour: ScheduleSpec = { type: "minutes", minutes: 15 };
 * const berlinMornings: ScheduleSpec = { type: "daily", tz: "Europe/Berlin" };
 * const weekdays: ScheduleSpec = { type: "cron", cron: "0 9 * * 1-5", tz: "America/New_York" };
 * ```
 */
export interface ScheduleSpec {
  /** How the schedule repeats. */
  type: ScheduleType;
  /** The step of a `minutes` schedule: a whole number of minutes, at least 1. Only for `minutes`. */
  minutes?: number;
  /** A cron expression of 5 fields, or 6 with seconds first. Only for `cron`. */
  cron?: string;
  /**
   * The IANA time zone that wall-clock times (daily and longer, cron) are read in.
   * @default {"UTC"}
   */
  tz?: string;
}

const SPEC_FIELDS: ReadonlySet<string> = new Set(["type", "minutes", "cron", "tz"]);

/**
 * Checks that `spec` is a valid {@linkcode ScheduleSpec} and returns a fresh copy with `tz`
 * filled in (`"UTC"` when absent). Unknown fields are rejected, so a typo such as `minute` is not
 * silently ignored.
 *
 * @throws {TypeError} if `spec` is not an object, has an unknown field, has a field of the wrong
 * type, lacks `minutes` (type `minutes`) or `cron` (type `cron`), has `minutes` or `cron` for
 * another type, or has a cron expression croner cannot parse.
 * @throws {RangeError} if `type` is not a schedule type, `minutes` is not a whole number ≥ 1,
 * or `tz` is not a known IANA time zone.
 *
 * @example
 * ```ts
 * validateSpec({ type: "daily", tz: "Europe/Berlin" }); // { type: "daily", tz: "Europe/Berlin" }
 * validateSpec({ type: "minutes", minutes: 0 }); // throws RangeError naming `minutes`
 * ```
 */
export function validateSpec(spec: unknown): ScheduleSpec {
  if (typeof spec !== "object" || spec === null || Array.isArray(spec)) {
    throw new TypeError(
      `Schedule spec must be an object such as { type: "daily" }, got ${describe(spec)}`,
    );
  }
  const fields = spec as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!SPEC_FIELDS.has(key)) {
      throw new TypeError(
        `Schedule spec has an unknown field "${key}": use only type, minutes, cron and tz`,
      );
    }
  }

  const { type, minutes, cron, tz = DEFAULT_TIME_ZONE } = fields;
  if (typeof type !== "string") {
    throw new TypeError(
      `Schedule field "type" must be a string, got ${describe(type)}: use one of ${
        SCHEDULE_TYPES.join(", ")
      }`,
    );
  }
  if (!isScheduleType(type)) {
    throw new RangeError(
      `Schedule field "type" is unknown, got "${type}": use one of ${SCHEDULE_TYPES.join(", ")}`,
    );
  }

  if (typeof tz !== "string") {
    throw new TypeError(
      `Schedule field "tz" must be a string, got ${describe(tz)}: use an IANA zone such as "UTC"`,
    );
  }
  if (!isTimeZone(tz)) {
    throw new RangeError(
      `Schedule field "tz" is an unknown time zone, got "${tz}": use an IANA zone name such as "Europe/Berlin" or "UTC"`,
    );
  }

  const valid: ScheduleSpec = { type, tz };

  if (type === "minutes") {
    if (minutes === undefined) {
      throw new TypeError(
        `Schedule field "minutes" is required for type "minutes": set it to a whole number of minutes, at least 1`,
      );
    }
    if (typeof minutes !== "number") {
      throw new TypeError(
        `Schedule field "minutes" must be a number, got ${
          describe(minutes)
        }: set it to a whole number of minutes, at least 1`,
      );
    }
    if (!Number.isSafeInteger(minutes) || minutes < 1) {
      throw new RangeError(
        `Schedule field "minutes" must be a whole number of minutes, at least 1, got ${minutes}`,
      );
    }
    valid.minutes = minutes;
  } else if (minutes !== undefined) {
    throw new TypeError(
      `Schedule field "minutes" only applies to type "minutes", got minutes ${
        describe(minutes)
      } with type "${type}": remove it or use type "minutes"`,
    );
  }

  if (type === "cron") {
    if (cron === undefined) {
      throw new TypeError(
        `Schedule field "cron" is required for type "cron": set it to an expression such as "0 9 * * 1-5"`,
      );
    }
    if (typeof cron !== "string") {
      throw new TypeError(
        `Schedule field "cron" must be a string, got ${
          describe(cron)
        }: use an expression such as "0 9 * * 1-5"`,
      );
    }
    try {
      compileCron(cron, tz);
    } catch (cause) {
      const reason = cause instanceof Error ? cause.message : String(cause);
      throw new TypeError(
        `Schedule field "cron" is not a valid cron expression, got "${cron}" (${reason}): use 5 fields (minute hour day month weekday) or 6 with seconds first`,
        { cause },
      );
    }
    valid.cron = cron;
  } else if (cron !== undefined) {
    throw new TypeError(
      `Schedule field "cron" only applies to type "cron", got cron ${
        describe(cron)
      } with type "${type}": remove it or use type "cron"`,
    );
  }

  return valid;
}

/** Whether `value` is one of {@linkcode SCHEDULE_TYPES}. */
export function isScheduleType(value: unknown): value is ScheduleType {
  return (SCHEDULE_TYPES as readonly unknown[]).includes(value);
}

/** How many compiled cron expressions {@linkcode compileCron} keeps. */
const CRON_CACHE_SIZE = 256;
const crons = new Map<string, Cron>();

/**
 * A paused croner job for `expression` in `timeZone`, which is only asked for run times. Accepts
 * 5 or 6 fields; day of month and day of week are combined with OR, as in Vixie cron. Compiled
 * jobs are cached, the least recently used dropped first.
 *
 * @throws {TypeError | RangeError} as croner does, if `expression` is invalid.
 */
export function compileCron(expression: string, timeZone: string): Cron {
  const key = `${timeZone}\u0000${expression}`;
  let job = crons.get(key);
  if (job === undefined) {
    job = new Cron(expression, { timezone: timeZone, paused: true, mode: "5-or-6-parts" });
    if (crons.size >= CRON_CACHE_SIZE) {
      const oldest = crons.keys().next();
      if (oldest.done !== true) crons.delete(oldest.value);
    }
  } else {
    crons.delete(key);
  }
  crons.set(key, job);
  return job;
}

function describe(value: unknown): string {
  if (typeof value === "string") return `"${value}"`;
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  return String(value);
}
