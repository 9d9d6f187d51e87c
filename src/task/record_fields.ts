/**
 * The fields of a task record and how they are stored: one table ({@linkcode FIELDS}) lists
 * each field once, with how it is read back (checked) and how it is stored (left out at its
 * default). The record's constructor, `fields()`, `encode()` and `decode()` all follow it.
 *
 * @module
 */
import { type Backoff, validateBackoff } from "./backoff.ts";
import type { ErrorInfo } from "./errors.ts";
import type { JsonValue } from "./json.ts";
import { TASK_STATES, type TaskState } from "./states.ts";

/** The latest progress a task reported. */
export interface Progress {
  /** From 0 to 1. */
  fraction: number;
  /** What the task said, if anything. */
  message?: string;
  /** When it was reported (epoch ms). */
  at: number;
}

/** The fields of a task record. Times are epoch milliseconds. */
export interface TaskFields {
  /** UUIDv7 of the task. */
  readonly id: string;
  /** Its human name, e.g. `tango-alpha-nine-river`. */
  readonly name: string;
  /** The registered task function's name. */
  readonly func: string;
  /** The arguments; `null` until loaded when they were stored in chunks. */
  readonly args: JsonValue[] | null;
  /** How many chunks hold the arguments; 0 when they are inline. */
  readonly argsChunks: number;
  /** The queue it belongs to. */
  readonly queue: string;
  /** Its group, if any. */
  readonly group: string | null;
  /** Lower runs first. */
  readonly priority: number;
  /** Milliseconds before the attempt is stopped; `null` for the cluster default. */
  readonly timeout: number | null;
  /** Attempts allowed in all; `null` for the cluster default. */
  readonly maxAttempts: number | null;
  /** Attempts started so far. */
  readonly attempt: number;
  /** How retries are spaced; `null` for the cluster default. */
  readonly backoff: Backoff | null;
  /** Where the task is in its lifecycle. */
  readonly state: TaskState;
  /** When it was enqueued. */
  readonly enqueuedAt: number;
  /** When it may run (eta, or the time of its next retry). */
  readonly runAt: number;
  /** When the latest attempt started. */
  readonly startedAt: number | null;
  /** When it reached a final state. */
  readonly stoppedAt: number | null;
  /** The result as JSON text, when it succeeded and the result is inline. */
  readonly resultJson: string | null;
  /** How many chunks hold the result; 0 when it is inline or absent. */
  readonly resultChunks: number;
  /** The latest attempt's error. */
  readonly error: ErrorInfo | null;
  /** Every attempt's error, oldest first (the newest few are kept). */
  readonly errors: readonly ErrorInfo[];
  /** The cluster that ran (or runs) the latest attempt. */
  readonly cluster: string | null;
  /** The worker that ran (or runs) the latest attempt, e.g. `kvq-w1.g2`. */
  readonly worker: string | null;
  /** Latest progress; kept under its own key while running. */
  readonly progress: Progress | null;
  /** Whether a successful result is kept. */
  readonly save: boolean;
  /** A task to run after this one finishes, receiving the finished record. */
  readonly hook: string | null;
  /** The unique key that guards this task while it is queued or running. */
  readonly unique: string | null;
  /** A task to run after this one fails for good, given the finished record. */
  readonly onFailure?: string | null;
  /** A task to run after an attempt of this one timed out for good, given the finished record. */
  readonly onTimeout?: string | null;
  /** Once finished, the record expires this many milliseconds later (Django Q's `cached`). */
  readonly cached?: number | null;
  /** The chain this task is a step of, and which step. */
  readonly chain?: MemberOf | null;
  /** The iter this task is a member of, and its input index. */
  readonly iter?: MemberOf | null;
  /** The blob id whose chunks hold the result, when `resultChunks` > 0. */
  readonly resultBlob?: string | null;
  /** HMAC-SHA-256 of what decides what runs, when the creator had a secret (hex). */
  readonly sig?: string | null;
  /**
   * Its start-by deadline (`expireIn`): not started by then, it ends `cancelled` with a
   * `TaskExpiredError` and never runs.
   */
  readonly expiresAt?: number | null;
  /**
   * The clusters that died (or stopped heartbeating) while it may have been running, oldest
   * first: lease recoveries, counted apart from its attempts (quarantine, see `recover.ts`).
   */
  readonly crashedOn?: readonly string[] | null;
  /** Its partition (`EnqueueOptions.partition`): partitions take turns and have limits. */
  readonly partition?: string | null;
  /**
   * A partitioned task's place in its queue's line while it is queued: partitions take turns
   * by it (see `store/turns.ts`). Its ready entry's key holds it.
   */
  readonly turn?: number | null;
  /**
   * The W3C trace context (`traceparent`) of the span that enqueued it, when tracing was on
   * (see `telemetry/`): the spans of its runs link to it. Not covered by the signature.
   */
  readonly traceparent?: string | null;
  /** The W3C `tracestate` that came with {@linkcode TaskFields.traceparent}. */
  readonly tracestate?: string | null;
  /**
   * The `traceparent` of its first attempt's run span, when that attempt failed with tracing on:
   * the spans of its retries link to it as well as to the enqueue.
   */
  readonly firstRun?: string | null;
}

/** A task's place in a chain or an iter. */
export interface MemberOf {
  /** The chain's or iter's id. */
  readonly id: string;
  /** The step index (chain) or input index (iter), from 0. */
  readonly index: number;
}

type Raw = Readonly<Record<string, unknown>>;
type Bad = (why: string) => never;

/** How one field is read back from its stored JSON, and how it is stored. */
interface Field<T> {
  /** The field's value as read from stored JSON (`undefined` when missing); `bad` refuses it. */
  read(value: unknown, name: string, bad: Bad): T;
  /** Its stored form; `undefined` leaves it out (the value read back for a missing field). */
  store(value: T): unknown;
}

const absent = (v: unknown) => v === undefined || v === null;
const str: Field<string> = {
  read: (v, n, bad) => typeof v === "string" ? v : bad(`field "${n}" is not a string`),
  store: (v) => v,
};
const strOrNull: Field<string | null> = {
  read: (v, n, bad) => absent(v) ? null : str.read(v, n, bad),
  store: (v) => v ?? undefined,
};
const num: Field<number> = {
  read: (v, n, bad) =>
    typeof v === "number" && Number.isFinite(v) ? v : bad(`field "${n}" is not a number`),
  store: (v) => v,
};
const numOrNull: Field<number | null> = {
  read: (v, n, bad) => absent(v) ? null : num.read(v, n, bad),
  store: (v) => v ?? undefined,
};
const int: Field<number> = {
  read: (v, n, bad) =>
    Number.isSafeInteger(num.read(v, n, bad)) ? v as number : bad(`field "${n}" is not an integer`),
  store: (v) => v,
};
/** An integer >= 0, left out when 0. */
const count: Field<number> = {
  read: (v, n, bad) =>
    v === undefined
      ? 0
      : Number.isSafeInteger(v) && (v as number) >= 0
      ? v as number
      : bad(`field "${n}" is not an integer >= 0`),
  store: (v) => v || undefined,
};

function readError(v: unknown, name: string, bad: Bad): ErrorInfo {
  const e = v as Record<string, unknown> | null;
  if (
    typeof e !== "object" || e === null || typeof e.name !== "string" ||
    typeof e.message !== "string" || (e.stack !== undefined && typeof e.stack !== "string")
  ) {
    return bad(`field "${name}" is not an error`);
  }
  return e as unknown as ErrorInfo;
}

const member: Field<MemberOf | null> = {
  read: (v, n, bad) => {
    if (absent(v)) return null;
    const o = v as Record<string, unknown>;
    if (
      typeof o !== "object" || typeof o.id !== "string" || !Number.isSafeInteger(o.index) ||
      (o.index as number) < 0
    ) return bad(`field "${n}" is not { id, index }`);
    return { id: o.id, index: o.index as number };
  },
  store: (v) => v ?? undefined,
};

/**
 * Every field of a task record, in stored order, with how it is read and stored: the one list
 * the record's constructor, `fields()` and its codec follow. (`resultJson` is stored as
 * `result`, its JSON text spliced in last: see {@linkcode encodeFields}.)
 */
export const FIELDS: {
  readonly [K in keyof Required<TaskFields>]: Field<Required<TaskFields>[K]>;
} = {
  id: str,
  name: str,
  func: str,
  args: {
    read: (v, _n, bad) =>
      absent(v) ? null : Array.isArray(v) ? v as JsonValue[] : bad(`field "args" is not an array`),
    store: (v) => v ?? undefined,
  },
  argsChunks: count,
  queue: str,
  group: strOrNull,
  priority: int,
  timeout: numOrNull,
  maxAttempts: numOrNull,
  attempt: count,
  backoff: {
    read: (v, _n, bad) => {
      if (absent(v)) return null;
      try {
        return validateBackoff(v);
      } catch (error) {
        return bad(`field "backoff": ${(error as Error).message}`);
      }
    },
    store: (v) => v ?? undefined,
  },
  state: {
    read: (v, n, bad) => {
      const state = str.read(v, n, bad) as TaskState;
      return TASK_STATES.includes(state) ? state : bad(`unknown state ${JSON.stringify(state)}`);
    },
    store: (v) => v,
  },
  enqueuedAt: num,
  runAt: num,
  startedAt: numOrNull,
  stoppedAt: numOrNull,
  resultJson: {
    read: (v) => v === undefined ? null : JSON.stringify(v),
    store: () => undefined,
  },
  resultChunks: count,
  error: {
    read: (v, n, bad) => absent(v) ? null : readError(v, n, bad),
    store: (v) => v ?? undefined,
  },
  errors: {
    read: (v, _n, bad) => {
      const errors = v === undefined ? [] : v;
      if (!Array.isArray(errors)) return bad(`field "errors" is not a list`);
      return errors.map((e, i) => readError(e, `errors[${i}]`, bad));
    },
    store: (v) => v.length > 0 ? v : undefined,
  },
  cluster: strOrNull,
  worker: strOrNull,
  progress: {
    read: (v, _n, bad) => {
      const p = v ?? null;
      if (p !== null && (typeof p !== "object" || typeof (p as Progress).fraction !== "number")) {
        return bad(`field "progress" is malformed`);
      }
      return p as Progress | null;
    },
    store: (v) => v ?? undefined,
  },
  save: {
    read: (v, n, bad) =>
      v === undefined ? true : typeof v === "boolean" ? v : bad(`field "${n}" is not a boolean`),
    store: (v) => v ? undefined : false,
  },
  hook: strOrNull,
  unique: strOrNull,
  onFailure: strOrNull,
  onTimeout: strOrNull,
  cached: numOrNull,
  chain: member,
  iter: member,
  resultBlob: strOrNull,
  sig: strOrNull,
  expiresAt: numOrNull,
  crashedOn: {
    read: (v, n, bad) =>
      absent(v)
        ? null
        : Array.isArray(v) && v.every((x) => typeof x === "string")
        ? v as string[]
        : bad(`field "${n}" is not a list of cluster ids`),
    store: (v) => v === null || v.length === 0 ? undefined : v,
  },
  partition: strOrNull,
  turn: numOrNull,
  traceparent: strOrNull,
  tracestate: strOrNull,
  firstRun: strOrNull,
};

/** Every field, in stored order. */
export const FIELD_NAMES = Object.freeze(Object.keys(FIELDS)) as readonly (keyof TaskFields)[];

/** The version a record is stored with. */
export const STORED_VERSION = 1;

// The hot path (every claim and result writes records) runs code generated once from the table
// below: fixed-shape object literals and one monomorphic call per field, as fast as code
// written out by hand (measured: a loop over the table was 3-4x slower to encode and decode).
// The names come from FIELD_NAMES, never from input.
type Fields = Readonly<Required<TaskFields>>;
const storers = Object.fromEntries(FIELD_NAMES.map((n) => [n, FIELDS[n].store]));
const readers = Object.fromEntries(FIELD_NAMES.map((n) => [n, FIELDS[n].read]));
const storedHead = new Function(
  "S",
  "r",
  `return JSON.stringify({ v: ${STORED_VERSION}, ${
    FIELD_NAMES.filter((n) => n !== "resultJson").map((n) => `${n}: S.${n}(r.${n})`).join(", ")
  } });`,
) as (s: typeof storers, r: Fields) => string;
/** Where a field is stored: its own name, except the result. */
const storedName = (n: string) => n === "resultJson" ? "result" : n;
const readAll = new Function(
  "R",
  "r",
  "bad",
  `return { ${
    FIELD_NAMES.map((n) => `${n}: R.${n}(r.${storedName(n)}, "${n}", bad)`).join(", ")
  } };`,
) as (fieldReaders: typeof readers, r: Raw, bad: Bad) => Required<TaskFields>;

/** Copies every field of `from` onto `to`, a missing one as null (the record's constructor). */
export const assignFields = new Function(
  "to",
  "from",
  FIELD_NAMES.map((n) => `to.${n} = from.${n} ?? null;`).join("\n"),
) as (to: object, from: TaskFields) => void;

/** The plain fields of a record. */
export const copyFields = new Function(
  "r",
  `return { ${FIELD_NAMES.map((n) => `${n}: r.${n}`).join(", ")} };`,
) as (r: Fields) => Required<TaskFields>;

/**
 * The stored JSON text of `fields`. Fields at their default (null, 0, an empty list,
 * `save: true`) are left out: every record is written two or three times, and half its bytes
 * were defaults. The result's JSON text is spliced in last, never re-parsed.
 */
export function encodeFields(fields: Fields): string {
  const head = storedHead(storers, fields);
  const result = fields.resultJson;
  return result === null ? head : `${head.slice(0, -1)},"result":${result}}`;
}

/**
 * Reads the fields of a parsed stored record (from KV or an export), checking each one and
 * how they fit together; `bad` refuses the record with the reason.
 */
export function decodeFields(key: Deno.KvKey, raw: unknown, bad: Bad): Required<TaskFields> {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return bad(`expected an object, found ${describe(raw)}`);
  }
  const r = raw as Raw;
  if (r.v !== STORED_VERSION) bad(`unknown record version ${JSON.stringify(r.v)}`);
  const fields = readAll(readers, r, bad);
  if (fields.args === null && fields.argsChunks === 0) bad(`field "args" is missing`);
  const id = fields.id;
  if (key.length > 0 && key[key.length - 1] !== id && key.includes("task")) {
    bad(`its id ${JSON.stringify(id)} does not match the key`);
  }
  return fields;
}

/** What `value` is, for messages. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (typeof value === "object") return (value as object).constructor?.name ?? "an object";
  return typeof value;
}
