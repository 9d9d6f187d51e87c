/**
 * The schedule record: one typed, immutable value per schedule, stored as UTF-8 JSON bytes at
 * `["kvq", queue, "schedule", name]` so Deno, Bun and KV Connect all read it. Changes return a
 * new record; the store writes it in one checked atomic commit together with its
 * `schedule_due` index entry.
 *
 * A schedule's states:
 *
 * ```
 *            fire (repeats left, a next slot)
 *           ┌──────┐
 *           ▼      │        fire (last repeat, or no slot left: nextRun = null)
 * add ──▶ active ──┴──────────────────────────────────────────────────────────▶ done
 *          │  ▲
 *   pause()│  │resume() (next slot at or after now)
 *          ▼  │
 *         paused  (no due entry; nextRun kept for display)
 * ```
 *
 * Only an active schedule has a `schedule_due` entry, at its `nextRun`.
 *
 * @module
 */
import type { JsonValue } from "../task/json.ts";
import { CorruptRecordError } from "../task/record.ts";
import { formatKey } from "../store/keys.ts";
import { isScheduleType, type ScheduleSpec, type ScheduleType, validateSpec } from "./spec.ts";

/** The longest schedule name, in characters. */
export const MAX_SCHEDULE_NAME_LENGTH = 128;

/**
 * Checks a schedule name: a string of 1-128 characters without control characters.
 *
 * @throws {TypeError} naming the field `name` and the value.
 */
export function validateScheduleName(name: unknown): string {
  if (
    typeof name !== "string" || name.length === 0 || name.length > MAX_SCHEDULE_NAME_LENGTH ||
    // deno-lint-ignore no-control-regex
    /[\u0000-\u001f\u007f]/.test(name)
  ) {
    throw new TypeError(
      `Schedule field "name" must be 1-${MAX_SCHEDULE_NAME_LENGTH} characters without control characters: received ${
        JSON.stringify(name)
      }`,
    );
  }
  return name;
}

/** The fields of a schedule record. Times are epoch milliseconds. */
export interface ScheduleFields {
  /** Unique within the queue, 1-128 characters. */
  readonly name: string;
  /** The registered task function's name. */
  readonly func: string;
  /** The task's arguments. */
  readonly args: JsonValue[];
  /** How the schedule repeats. */
  readonly type: ScheduleType;
  /** The step of a `minutes` schedule, else `null`. */
  readonly minutes: number | null;
  /** The expression of a `cron` schedule, else `null`. */
  readonly cron: string | null;
  /** The IANA time zone its wall-clock times are read in. */
  readonly tz: string;
  /** Runs left: -1 forever, 0 done, N remaining. */
  readonly repeats: number;
  /** The first run, which fixes the slots. */
  readonly anchor: number;
  /** The earliest slot that has not fired yet; `null` when the schedule is done. */
  readonly nextRun: number | null;
  /** Fire every missed slot after an outage (`true`), or only the latest one. */
  readonly catchUp: boolean;
  /** Pass the slot's intended time as an extra last argument (ISO 8601 text). */
  readonly intendedDateArg: boolean;
  /** The queue the schedule and its tasks live in. */
  readonly queue: string;
  /** Task option: milliseconds an attempt may run; `null` for the cluster default. */
  readonly timeout: number | null;
  /** Task option: attempts allowed in all; `null` for the cluster default. */
  readonly maxAttempts: number | null;
  /** Task option: lower runs first. */
  readonly priority: number;
  /** The id of the latest task it created. */
  readonly lastTaskId: string | null;
  /** When it last created a task. */
  readonly lastRunAt: number | null;
  /** Skip a slot while the previous task is still scheduled, queued or running. */
  readonly noOverlap: boolean;
  /** Paused: slots pass without firing. */
  readonly paused: boolean;
  /** When it was added. */
  readonly createdAt: number;
  /**
   * HMAC-SHA-256 over what decides what runs and when, when a process with a secret wrote it
   * (see `verifySchedule`); `null` when it was written without one.
   */
  readonly sig: string | null;
}

const FIELD_NAMES: readonly (keyof ScheduleFields)[] = [
  "name",
  "func",
  "args",
  "type",
  "minutes",
  "cron",
  "tz",
  "repeats",
  "anchor",
  "nextRun",
  "catchUp",
  "intendedDateArg",
  "queue",
  "timeout",
  "maxAttempts",
  "priority",
  "lastTaskId",
  "lastRunAt",
  "noOverlap",
  "paused",
  "createdAt",
  "sig",
];

/** Raised when a stored value is not a schedule record. Names the key. */
export class CorruptScheduleError extends CorruptRecordError {
  constructor(key: Deno.KvKey, reason: string) {
    super(key, reason);
    this.message = `Stored value at ${
      formatKey(key)
    } is not a valid kvq schedule: ${reason}. Replace it with 'kvq schedule add --replace' or remove it with 'kvq schedule rm'.`;
    this.name = "CorruptScheduleError";
  }
}

const STORED_VERSION = 1;
const decoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/**
 * One schedule, as stored. Immutable: changes return a new record.
 *
 * @example
 * ```ts
 * const paused = record.with({ paused: true });
 * ```
 */
export class ScheduleRecord implements ScheduleFields {
  readonly name!: string;
  readonly func!: string;
  readonly args!: JsonValue[];
  readonly type!: ScheduleType;
  readonly minutes!: number | null;
  readonly cron!: string | null;
  readonly tz!: string;
  readonly repeats!: number;
  readonly anchor!: number;
  readonly nextRun!: number | null;
  readonly catchUp!: boolean;
  readonly intendedDateArg!: boolean;
  readonly queue!: string;
  readonly timeout!: number | null;
  readonly maxAttempts!: number | null;
  readonly priority!: number;
  readonly lastTaskId!: string | null;
  readonly lastRunAt!: number | null;
  readonly noOverlap!: boolean;
  readonly paused!: boolean;
  readonly createdAt!: number;
  readonly sig!: string | null;

  /** Makes a record from complete fields. Use `addSchedule` to create schedules. */
  constructor(fields: ScheduleFields) {
    for (const name of FIELD_NAMES) {
      (this as Record<string, unknown>)[name] = fields[name];
    }
    Object.freeze(this);
  }

  /** The schedule's spec, for the schedule maths. */
  get spec(): ScheduleSpec {
    return {
      type: this.type,
      tz: this.tz,
      ...(this.minutes !== null ? { minutes: this.minutes } : {}),
      ...(this.cron !== null ? { cron: this.cron } : {}),
    };
  }

  /** Whether it has no slot left to fire. */
  get done(): boolean {
    return this.nextRun === null || this.repeats === 0;
  }

  /** Whether it has a `schedule_due` entry: not paused and not done. */
  get active(): boolean {
    return !this.paused && !this.done;
  }

  /** A copy with some fields changed. */
  with(patch: Partial<ScheduleFields>): ScheduleRecord {
    return new ScheduleRecord({ ...this.fields(), ...patch });
  }

  /** The plain fields. */
  fields(): ScheduleFields {
    const out: Record<string, unknown> = {};
    for (const name of FIELD_NAMES) out[name] = this[name];
    return out as unknown as ScheduleFields;
  }

  /** The stored form: UTF-8 JSON. */
  encode(): Uint8Array {
    return encoder.encode(JSON.stringify({ v: STORED_VERSION, ...this.fields() }));
  }

  /** A plain object for JSON output (CLI `--json`, the dashboard). */
  toJSON(): Record<string, unknown> {
    return { ...this.fields() };
  }

  /**
   * Reads a stored record back, checking every field.
   *
   * @throws {CorruptScheduleError} naming `key` when the value is not a schedule record.
   */
  static decode(key: Deno.KvKey, value: unknown): ScheduleRecord {
    if (!(value instanceof Uint8Array)) {
      throw new CorruptScheduleError(key, `expected bytes, found ${typeof value}`);
    }
    let raw: unknown;
    try {
      raw = JSON.parse(decoder.decode(value));
    } catch (error) {
      throw new CorruptScheduleError(key, `not UTF-8 JSON (${(error as Error).message})`);
    }
    return ScheduleRecord.fromJSON(key, raw);
  }

  /**
   * Validates a parsed record.
   *
   * @throws {CorruptScheduleError} naming `key`.
   */
  static fromJSON(key: Deno.KvKey, raw: unknown): ScheduleRecord {
    const bad = (why: string): never => {
      throw new CorruptScheduleError(key, why);
    };
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      return bad("expected an object");
    }
    const r = raw as Record<string, unknown>;
    if (r.v !== STORED_VERSION) bad(`unknown record version ${JSON.stringify(r.v)}`);
    const str = (name: string): string =>
      typeof r[name] === "string" ? r[name] as string : bad(`field "${name}" is not a string`);
    const strOrNull = (name: string): string | null => r[name] === null ? null : str(name);
    const int = (name: string): number =>
      Number.isSafeInteger(r[name]) ? r[name] as number : bad(`field "${name}" is not an integer`);
    const intOrNull = (name: string): number | null => r[name] === null ? null : int(name);
    const bool = (name: string): boolean =>
      typeof r[name] === "boolean" ? r[name] as boolean : bad(`field "${name}" is not a boolean`);
    const type = str("type");
    if (!isScheduleType(type)) bad(`unknown type ${JSON.stringify(type)}`);
    if (!Array.isArray(r.args)) bad(`field "args" is not an array`);
    const name = str("name");
    if (key.length > 0 && key[key.length - 1] !== name) {
      bad(`its name ${JSON.stringify(name)} does not match the key`);
    }
    const repeats = int("repeats");
    if (repeats < -1) bad(`field "repeats" is below -1`);
    const record = new ScheduleRecord({
      name,
      func: str("func"),
      args: r.args as JsonValue[],
      type: type as ScheduleType,
      minutes: intOrNull("minutes"),
      cron: strOrNull("cron"),
      tz: str("tz"),
      repeats,
      anchor: int("anchor"),
      nextRun: intOrNull("nextRun"),
      catchUp: bool("catchUp"),
      intendedDateArg: bool("intendedDateArg"),
      queue: str("queue"),
      timeout: intOrNull("timeout"),
      maxAttempts: intOrNull("maxAttempts"),
      priority: int("priority"),
      lastTaskId: strOrNull("lastTaskId"),
      lastRunAt: intOrNull("lastRunAt"),
      noOverlap: bool("noOverlap"),
      paused: bool("paused"),
      createdAt: int("createdAt"),
      // Records written before signing existed have no field: unsigned.
      sig: r.sig === undefined ? null : strOrNull("sig"),
    });
    try {
      validateSpec(record.spec);
    } catch (error) {
      bad(`its spec is invalid (${(error as Error).message})`);
    }
    return record;
  }
}
