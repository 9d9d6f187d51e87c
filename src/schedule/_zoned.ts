/**
 * Time-zone helpers for the schedule maths: the UTC offset of an IANA zone at an instant, the
 * wall-clock fields of an instant in a zone, and the instant of a wall-clock time in a zone.
 *
 * They use only `Intl.DateTimeFormat`, which Deno and Bun both ship with full ICU data.
 * Formatters are slow to create, so there is one per zone, cached for the life of the process.
 *
 * Private to `src/schedule/`.
 *
 * @module
 */

/** One day in milliseconds, used to look at the offsets either side of a wall-clock time. */
const DAY_MS = 86_400_000;

/** Wall-clock fields of an instant in a zone. `month` is 1–12, as people write it. */
export interface WallTime {
  /** Full year, for example 2026. */
  year: number;
  /** Month, 1 (January) to 12 (December). */
  month: number;
  /** Day of the month, 1–31. */
  day: number;
  /** Hour, 0–23. */
  hour: number;
  /** Minute, 0–59. */
  minute: number;
  /** Second, 0–59. */
  second: number;
  /** Millisecond, 0–999. */
  millisecond: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/**
 * The cached `Intl.DateTimeFormat` for `timeZone`, which prints every field as a number.
 *
 * @throws {RangeError} if `timeZone` is not a zone this runtime knows.
 */
function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (formatter === undefined) {
    try {
      formatter = new Intl.DateTimeFormat("en-US", {
        timeZone,
        hourCycle: "h23",
        year: "numeric",
        month: "numeric",
        day: "numeric",
        hour: "numeric",
        minute: "numeric",
        second: "numeric",
      });
    } catch (cause) {
      throw new RangeError(
        `Unknown time zone "${timeZone}": use an IANA zone name such as "Europe/Berlin" or "UTC"`,
        { cause },
      );
    }
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/**
 * Whether this runtime knows the IANA time zone `timeZone`.
 *
 * @example
 * ```ts
 * isTimeZone("Europe/Berlin"); // true
 * isTimeZone("Mars/Olympus"); // false
 * ```
 */
export function isTimeZone(timeZone: string): boolean {
  try {
    formatterFor(timeZone);
    return true;
  } catch {
    return false;
  }
}

/**
 * The UTC offset of `timeZone` at the instant `epochMs`, in milliseconds (positive east of
 * Greenwich: `+3_600_000` for Berlin in winter).
 *
 * @throws {RangeError} if `timeZone` is unknown.
 */
export function zoneOffset(timeZone: string, epochMs: number): number {
  const seconds = Math.floor(epochMs / 1000) * 1000;
  const fields: Record<string, number> = {};
  for (const part of formatterFor(timeZone).formatToParts(seconds)) {
    if (part.type !== "literal") fields[part.type] = Number(part.value);
  }
  // Some ICU versions print midnight as hour 24 even with h23; it is hour 0 of the same day.
  const hour = fields.hour === 24 ? 0 : fields.hour ?? 0;
  const asUtc = utcFromFields(
    fields.year ?? 1970,
    (fields.month ?? 1) - 1,
    fields.day ?? 1,
    hour,
    fields.minute ?? 0,
    fields.second ?? 0,
    0,
  );
  return asUtc - seconds;
}

/**
 * The wall-clock fields of the instant `epochMs` in `timeZone`.
 *
 * @throws {RangeError} if `timeZone` is unknown.
 */
export function wallTimeOf(timeZone: string, epochMs: number): WallTime {
  const local = new Date(epochMs + zoneOffset(timeZone, epochMs));
  return {
    year: local.getUTCFullYear(),
    month: local.getUTCMonth() + 1,
    day: local.getUTCDate(),
    hour: local.getUTCHours(),
    minute: local.getUTCMinutes(),
    second: local.getUTCSeconds(),
    millisecond: local.getUTCMilliseconds(),
  };
}

/**
 * The instant at which the wall clock in `timeZone` shows `wall`. Fields may overflow (day 32,
 * month 13) and are normalised as `Date.UTC` does, which makes day and month arithmetic simple.
 *
 * Two DST cases have no single answer, and are resolved as Temporal's `"compatible"`
 * disambiguation does:
 * - a time in a spring-forward gap does not exist; it is moved forward by the length of the gap
 *   (02:30 on 2026-03-29 in Europe/Berlin becomes 03:30 CEST);
 * - a time in a fall-back overlap exists twice; the earlier occurrence is used (02:30 on
 *   2026-10-25 in Europe/Berlin is 02:30 CEST, not 02:30 CET).
 *
 * @throws {RangeError} if `timeZone` is unknown.
 */
export function instantOf(timeZone: string, wall: WallTime): number {
  const asUtc = utcFromFields(
    wall.year,
    wall.month - 1,
    wall.day,
    wall.hour,
    wall.minute,
    wall.second,
    wall.millisecond,
  );
  const before = zoneOffset(timeZone, asUtc - DAY_MS);
  const after = zoneOffset(timeZone, asUtc + DAY_MS);
  const early = asUtc - before;
  if (before === after) return early;
  const late = asUtc - after;
  const earlyValid = zoneOffset(timeZone, early) === before;
  const lateValid = zoneOffset(timeZone, late) === after;
  if (earlyValid && lateValid) return Math.min(early, late);
  if (earlyValid) return early;
  if (lateValid) return late;
  // In the gap: read the wall time with the offset from before the change, which lands the
  // same distance past the end of the gap as the wall time was past its start.
  return early;
}

/** The number of days in `month` (1–12) of `year`. */
export function daysInMonth(year: number, month: number): number {
  return new Date(utcFromFields(year, month, 0, 0, 0, 0, 0)).getUTCDate();
}

/** `Date.UTC` without its mapping of years 0–99 to 1900–1999. */
function utcFromFields(
  year: number,
  monthIndex: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
  millisecond: number,
): number {
  const date = new Date(0);
  date.setUTCFullYear(year, monthIndex, day);
  date.setUTCHours(hour, minute, second, millisecond);
  return date.getTime();
}
