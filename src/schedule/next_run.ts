/**
 * When a schedule fires next, and which slots are due after an outage. Pure functions: "now" is
 * always an argument, taken by the caller from its replaceable clock.
 *
 * A schedule's slots are fixed by its spec and its anchor (its first run):
 *
 * - `once`: the anchor only.
 * - `minutes`, `hourly`: anchor + k × step of elapsed time (k = 0, 1, 2, …), whatever the zone.
 * - `daily`, `weekly`, `biweekly`: the anchor's local wall-clock time in `tz`, k × 1, 7 or 14
 *   local days later, so 09:00 stays 09:00 local across DST changes.
 * - `monthly`, `bimonthly`, `quarterly`, `yearly`: the anchor's local wall-clock time, k × 1, 2,
 *   3 or 12 months later, on the anchor's day clamped to the month end: an anchor on Jan 31
 *   gives Feb 28 (29 in leap years), Mar 31, Apr 30, …
 * - `cron`: croner's runs in `tz` at or after the anchor.
 *
 * Slots are computed from the anchor, never from the previous slot, so a clamped Feb 28 does
 * not drag later months to the 28th, and catching up many slots costs no drift.
 *
 * DST: a local time that does not exist (a spring-forward gap) is moved forward by the length
 * of the gap (02:30 on 2026-03-29 in Europe/Berlin → 03:30 CEST); a local time that exists twice
 * (a fall-back overlap) takes the earlier occurrence. Cron schedules follow croner instead: a
 * fixed-time job such as `30 2 * * *` runs at the first valid time after the gap (03:00) and once
 * in an overlap (the earlier occurrence); jobs with wildcards or steps skip the times in a gap.
 *
 * @module
 */

import { compileCron, DEFAULT_TIME_ZONE, type ScheduleSpec } from "./spec.ts";
import { daysInMonth, instantOf, type WallTime, wallTimeOf } from "./_zoned.ts";

/** One minute in milliseconds. */
const MINUTE_MS = 60_000;
/** One day in milliseconds, only used to estimate how many days slots are apart. */
const DAY_MS = 86_400_000;

/**
 * The most slots {@linkcode dueSlots} returns in one call when catching up, so that a schedule
 * that was down for a long time cannot make one call build an unbounded array.
 */
export const DEFAULT_CATCH_UP_LIMIT = 1000;

/** Options for {@linkcode nextRun}. */
export interface NextRunOptions {
  /** The schedule's first run, which fixes its slots (time of day, day of month). */
  anchor: Date;
  /** The result is the first slot strictly after this instant. */
  after: Date;
}

/**
 * The first slot of `spec` strictly after `after`, or `null` if there is none: a `once`
 * schedule whose anchor is not after `after`, or a cron expression that never matches again.
 * A time before the anchor gives the anchor itself (for cron: the first run at or after it).
 *
 * For interval types the slot is anchor + k × interval with k the smallest that lands after
 * `after` (see the module doc for how intervals and DST are counted), so passing the stored
 * previous slot gives the following one, and passing "now" skips every missed slot.
 *
 * To find a cron schedule's first run, pass "now" as both `anchor` and `after`.
 *
 * @throws {TypeError} if a `minutes` schedule has no `minutes`, or a `cron` schedule no `cron`.
 * @throws {RangeError} if a date is invalid or `tz` is unknown.
 *
 * @example
 * ```ts
 * const spec: ScheduleSpec = { type: "monthly", tz: "UTC" };
 * const anchor = new Date("2027-01-31T09:00:00Z");
 * nextRun(spec, { anchor, after: anchor }); // 2027-02-28T09:00:00Z
 * nextRun(spec, { anchor, after: new Date("2027-02-28T09:00:00Z") }); // 2027-03-31T09:00:00Z
 * ```
 */
export function nextRun(spec: ScheduleSpec, options: NextRunOptions): Date | null {
  const anchor = timeOf(options.anchor, "anchor");
  const after = timeOf(options.after, "after");
  const next = nextSlot(spec, anchor, after);
  return next === null ? null : new Date(next);
}

/** Options for {@linkcode dueSlots}. */
export interface DueSlotsOptions {
  /** The schedule's first run, which fixes its slots. */
  anchor: Date;
  /** The stored next run: the earliest slot that has not fired yet. */
  nextRun: Date;
  /** The current time, from the caller's clock. */
  now: Date;
  /** Whether to fire every missed slot (`true`) or only the latest one (`false`). */
  catchUp: boolean;
  /**
   * The most slots to fire in one call when catching up.
   * @default {1000}
   */
  limit?: number;
}

/** The result of {@linkcode dueSlots}. */
export interface DueSlots {
  /** The slots to fire now, oldest first; each is the intended date of one task. */
  fire: Date[];
  /** The new stored next run, or `null` when the schedule has no slot left. */
  next: Date | null;
}

/**
 * The slots to fire at `now`, and the next run to store after firing them.
 *
 * - If the stored `nextRun` is after `now`, nothing is due: `fire` is empty and `next` is
 *   `nextRun`.
 * - With `catchUp`, every slot from `nextRun` up to and including `now` fires, oldest first, at
 *   most `limit` of them. `next` is the first slot not fired: after `now` normally, but still due
 *   if the limit cut the list short, so calling again continues the catch-up without losing any.
 * - Without `catchUp`, only the latest missed slot fires, once (Django Q also runs a schedule
 *   once after an outage; firing the latest slot gives the task the intended date closest to
 *   now), and `next` is the first slot strictly after `now`.
 *
 * Repeats are the caller's business: it fires only as many slots as repeats are left.
 *
 * @throws {RangeError} if a date is invalid, `limit` is not a whole number ≥ 1, or `tz` is
 * unknown.
 *
 * @example
 * ```ts
 * const spec: ScheduleSpec = { type: "hourly" };
 * const anchor = new Date("2026-05-01T10:00:00Z");
 * const now = new Date("2026-05-01T12:30:00Z");
 * dueSlots(spec, { anchor, nextRun: anchor, now, catchUp: true });
 * // { fire: [10:00, 11:00, 12:00], next: 13:00 }
 * dueSlots(spec, { anchor, nextRun: anchor, now, catchUp: false });
 * // { fire: [12:00], next: 13:00 }
 * ```
 */
export function dueSlots(spec: ScheduleSpec, options: DueSlotsOptions): DueSlots {
  const anchor = timeOf(options.anchor, "anchor");
  const stored = timeOf(options.nextRun, "nextRun");
  const now = timeOf(options.now, "now");
  const limit = options.limit ?? DEFAULT_CATCH_UP_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new RangeError(`Option "limit" must be a whole number, at least 1, got ${limit}`);
  }

  if (stored > now) return { fire: [], next: new Date(stored) };

  if (options.catchUp) {
    const fire: Date[] = [];
    let slot: number | null = stored;
    while (slot !== null && slot <= now && fire.length < limit) {
      fire.push(new Date(slot));
      slot = nextSlot(spec, anchor, slot);
    }
    return { fire, next: slot === null ? null : new Date(slot) };
  }

  const latest = Math.max(stored, latestSlot(spec, anchor, now) ?? stored);
  const next = nextSlot(spec, anchor, now);
  return { fire: [new Date(latest)], next: next === null ? null : new Date(next) };
}

/** How far apart the slots of an interval schedule are. */
type Step =
  | { unit: "ms"; size: number }
  | { unit: "day"; size: number }
  | { unit: "month"; size: number };

/** The step of `spec`, or `null` for `once` and `cron`, which have none. */
function stepOf(spec: ScheduleSpec): Step | null {
  switch (spec.type) {
    case "once":
    case "cron":
      return null;
    case "minutes": {
      const minutes = spec.minutes;
      if (minutes === undefined) {
        throw new TypeError(
          `Schedule field "minutes" is required for type "minutes": validate the spec with validateSpec() first`,
        );
      }
      return { unit: "ms", size: minutes * MINUTE_MS };
    }
    case "hourly":
      return { unit: "ms", size: 60 * MINUTE_MS };
    case "daily":
      return { unit: "day", size: 1 };
    case "weekly":
      return { unit: "day", size: 7 };
    case "biweekly":
      return { unit: "day", size: 14 };
    case "monthly":
      return { unit: "month", size: 1 };
    case "bimonthly":
      return { unit: "month", size: 2 };
    case "quarterly":
      return { unit: "month", size: 3 };
    case "yearly":
      return { unit: "month", size: 12 };
  }
}

/** The first slot strictly after `after`, in epoch ms; see {@linkcode nextRun}. */
function nextSlot(spec: ScheduleSpec, anchor: number, after: number): number | null {
  if (spec.type === "cron") {
    const from = Math.max(after, anchor - 1);
    return cronFor(spec).nextRun(new Date(from))?.getTime() ?? null;
  }
  if (after < anchor) return anchor;
  const step = stepOf(spec);
  if (step === null) return null;
  const grid = new Grid(step, anchor, spec.tz ?? DEFAULT_TIME_ZONE);
  return grid.slot(grid.firstIndexAfter(after));
}

/** The last slot at or before `now`, or `null` if there is none, in epoch ms. */
function latestSlot(spec: ScheduleSpec, anchor: number, now: number): number | null {
  if (now < anchor) return null;
  if (spec.type === "cron") {
    // croner's previous runs are strictly before the reference, and runs fall on whole seconds.
    const [previous] = cronFor(spec).previousRuns(1, new Date(now + 1));
    return previous === undefined || previous.getTime() < anchor ? null : previous.getTime();
  }
  const step = stepOf(spec);
  if (step === null) return anchor;
  const grid = new Grid(step, anchor, spec.tz ?? DEFAULT_TIME_ZONE);
  return grid.slot(grid.firstIndexAfter(now) - 1);
}

function cronFor(spec: ScheduleSpec) {
  if (spec.cron === undefined) {
    throw new TypeError(
      `Schedule field "cron" is required for type "cron": validate the spec with validateSpec() first`,
    );
  }
  return compileCron(spec.cron, spec.tz ?? DEFAULT_TIME_ZONE);
}

/** The slots anchor + k × step of an interval schedule, k = 0, 1, 2, … */
class Grid {
  readonly #step: Step;
  readonly #anchor: number;
  readonly #tz: string;
  readonly #wall: WallTime;

  constructor(step: Step, anchor: number, tz: string) {
    this.#step = step;
    this.#anchor = anchor;
    this.#tz = tz;
    this.#wall = wallTimeOf(tz, anchor);
  }

  /** Slot `k`, in epoch ms. Slot 0 is the anchor itself, even in a fall-back overlap. */
  slot(k: number): number {
    if (k === 0) return this.#anchor;
    const { unit, size } = this.#step;
    if (unit === "ms") return this.#anchor + k * size;
    const wall = this.#wall;
    if (unit === "day") return instantOf(this.#tz, { ...wall, day: wall.day + k * size });
    const months = wall.year * 12 + (wall.month - 1) + k * size;
    const year = Math.floor(months / 12);
    const month = months - year * 12 + 1;
    return instantOf(this.#tz, {
      ...wall,
      year,
      month,
      day: Math.min(wall.day, daysInMonth(year, month)),
    });
  }

  /** The smallest k whose slot is strictly after `after`, which is not before the anchor. */
  firstIndexAfter(after: number): number {
    const { unit, size } = this.#step;
    if (unit === "ms") return Math.floor((after - this.#anchor) / size) + 1;
    // Estimate k from the elapsed time or months, then walk: slots increase with k, and DST
    // shifts are far shorter than a day, so the estimate is off by one at most.
    let k: number;
    if (unit === "day") {
      k = Math.floor((after - this.#anchor) / (size * DAY_MS));
    } else {
      const at = wallTimeOf(this.#tz, after);
      const months = (at.year - this.#wall.year) * 12 + (at.month - this.#wall.month);
      k = Math.floor(months / size);
    }
    k = Math.max(0, k - 1);
    while (this.slot(k) <= after) k++;
    return k;
  }
}

function timeOf(date: Date, name: string): number {
  const time = date instanceof Date ? date.getTime() : Number.NaN;
  if (Number.isNaN(time)) {
    throw new RangeError(`Option "${name}" must be a valid Date, got ${String(date)}`);
  }
  return time;
}
