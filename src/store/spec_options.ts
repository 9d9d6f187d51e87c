/**
 * The options of an enqueued task: what each one means and its default, and their validation,
 * which names the task and the bad field and gives the range.
 *
 * @module
 */
import { type Backoff, validateBackoff } from "../task/backoff.ts";
import type { MemberOf } from "../task/record.ts";
import { MAX_TIME_MS, MAX_TIMEOUT_MS } from "./limits.ts";
import type { TraceContext } from "../telemetry/otel.ts";

/** A task (or hook) name: a JavaScript identifier of at most 128 characters. */
export const FUNC_NAME = /^[A-Za-z_$][A-Za-z0-9_$]{0,127}$/;

/** Options for one enqueued task. */
export interface EnqueueOptions {
  /**
   * Tasks of one group can be counted, fetched and deleted together.
   * @default none
   */
  group?: string;
  /**
   * Its partition: a tenant, a user, an API host (any string of 1-256 characters). Partitions of
   * a queue take turns (round-robin within a priority, weighted by the queue's
   * `partitionWeights`), and the queue's `partitionConcurrency` and `partitionRate` limits count
   * each one apart (see `Queue.setLimits`). Not covered by the task's signature.
   * @default none
   */
  partition?: string;
  /**
   * Lower runs first; FIFO within a priority.
   * @default 0
   */
  priority?: number;
  /**
   * Run no earlier than this many milliseconds from now.
   * @default 0
   */
  delay?: number;
  /**
   * Run no earlier than this time (a Date, epoch ms, or ISO 8601 text).
   * @default now
   */
  eta?: Date | number | string;
  /**
   * Milliseconds an attempt may run before it is stopped.
   * @default the cluster's --timeout
   */
  timeout?: number;
  /**
   * Attempts allowed in all (1 = no retry).
   * @default the cluster's --max-attempts
   */
  maxAttempts?: number;
  /**
   * How retries are spaced.
   * @default the cluster's backoff (exponential from 1 s with jitter)
   */
  backoff?: Backoff;
  /**
   * Keep a successful result.
   * @default true
   */
  save?: boolean;
  /**
   * A task to run after this one ends (succeeded, failed for good, or cancelled), given the
   * finished record as JSON. Enqueued in the commit that stores the outcome.
   * @default none
   */
  hook?: string;
  /**
   * A task to run after this one failed for good, given the finished record.
   * @default none
   */
  onFailure?: string;
  /**
   * A task to run after this one failed for good by a timeout, given the finished record.
   * @default none
   */
  onTimeout?: string;
  /**
   * At most one task per key is scheduled, queued or running. `"key"` is `{ key, mode: "keep" }`.
   * `keep` returns the holder; `replace` cancels a holder that has not started and enqueues
   * this one (a running holder is kept); `reject` throws {@linkcode UniqueTaskError}.
   * @default none
   */
  unique?: string | UniqueOption;
  /**
   * Once finished, the record (and its index entries) expires after this many milliseconds
   * (Django Q's `cached`). A cached task is not counted in `counts()` once finished.
   * @default not cached
   */
  cached?: number;
  /**
   * A start-by deadline, in milliseconds from now: a task that has not started by then ends
   * `cancelled` with a `TaskExpiredError` and never runs (an OTP email an hour late is worse
   * than none). Once started, it runs and retries as usual. It must be later than `delay` or
   * `eta`. Not covered by the task's signature.
   * @default no deadline
   */
  expireIn?: number;
}

/** What `unique` takes in its object form. */
export interface UniqueOption {
  /** The key: at most one unfinished task holds it. */
  key: string;
  /**
   * What an enqueue does while another task holds the key.
   * @default "keep"
   */
  mode?: UniqueMode;
}

/** How a unique enqueue treats a key that is held. */
export type UniqueMode = "keep" | "replace" | "reject";

/** Raised by a `unique: { mode: "reject" }` enqueue while another task holds the key. */
export class UniqueTaskError extends Error {
  /** The unique key. */
  readonly key: string;
  /** The id of the task that holds it. */
  readonly holder: string;
  constructor(key: string, holder: string, state: string) {
    super(`Unique key ${JSON.stringify(key)} is held by task ${holder} (${state})`);
    this.name = "UniqueTaskError";
    this.key = key;
    this.holder = holder;
  }
}

/** One call to enqueue. */
export interface EnqueueSpec {
  /** The task function's registered name. */
  func: string;
  /** Its arguments (JSON values). */
  args: readonly unknown[];
  /** Its options. */
  options?: EnqueueOptions;
  /** The iter it belongs to (set by `createIter`). */
  iter?: MemberOf;
}

/** The options of a task, checked, with their defaults filled in. */
export interface ValidOptions {
  group: string | null;
  partition: string | null;
  priority: number;
  runAt: number | null;
  timeout: number | null;
  maxAttempts: number | null;
  backoff: Backoff | null;
  save: boolean;
  hook: string | null;
  onFailure: string | null;
  onTimeout: string | null;
  unique: { key: string; mode: UniqueMode } | null;
  cached: number | null;
  /** The start-by deadline (epoch ms), from `expireIn`. */
  expiresAt: number | null;
  /** The trace context of the enqueue's span (set by the enqueue, not an option). */
  trace: TraceContext | null;
}

const KNOWN_OPTIONS = new Set([
  "expireIn",
  "onFailure",
  "onTimeout",
  "unique",
  "cached",
  "group",
  "partition",
  "priority",
  "delay",
  "eta",
  "timeout",
  "maxAttempts",
  "backoff",
  "save",
  "hook",
]);

/** A value as an error message quotes it: JSON, cut to 120 characters with its length. */
export function shown(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 120 ? `${text.slice(0, 100)}… (${text.length} characters)` : text;
}

export function validateOptions(o: EnqueueOptions, what: string, now: number): ValidOptions {
  const bad = (field: string, rule: string, value: unknown): never => {
    throw new TypeError(`Option ${field} of ${what} ${rule}: received ${shown(value)}`);
  };
  for (const name of Object.keys(o)) {
    if (!KNOWN_OPTIONS.has(name)) {
      bad(name, `is not a known option (${[...KNOWN_OPTIONS].join(", ")})`, name);
    }
  }
  if (
    o.group !== undefined &&
    (typeof o.group !== "string" || o.group.length === 0 || o.group.length > 256)
  ) {
    bad("group", "must be a string of 1-256 characters", o.group);
  }
  if (
    o.partition !== undefined &&
    (typeof o.partition !== "string" || o.partition.length === 0 || o.partition.length > 256)
  ) {
    bad("partition", "must be a string of 1-256 characters", o.partition);
  }
  if (o.priority !== undefined && !Number.isSafeInteger(o.priority)) {
    bad("priority", "must be an integer (lower runs first)", o.priority);
  }
  const positive = (field: "timeout" | "maxAttempts", value: unknown) => {
    if (value !== undefined && (!Number.isSafeInteger(value) || (value as number) < 1)) {
      bad(field, "must be a positive integer", value);
    }
  };
  positive("timeout", o.timeout);
  if (o.timeout !== undefined && o.timeout > MAX_TIMEOUT_MS) {
    bad("timeout", `must be at most ${MAX_TIMEOUT_MS} ms (about 24.8 days)`, o.timeout);
  }
  positive("maxAttempts", o.maxAttempts);
  let runAt: number | null = null;
  if (o.delay !== undefined) {
    const most = MAX_TIME_MS - now;
    if (
      typeof o.delay !== "number" || !Number.isFinite(o.delay) || o.delay < 0 || o.delay > most
    ) {
      bad("delay", `must be milliseconds from 0 to ${most} (the latest date there is)`, o.delay);
    }
    if (o.eta !== undefined) bad("delay", "can't be combined with eta", o.delay);
  }
  if (o.eta !== undefined) runAt = parseEta(o.eta, what);
  for (const field of ["hook", "onFailure", "onTimeout"] as const) {
    const v = o[field];
    if (v !== undefined && (typeof v !== "string" || !FUNC_NAME.test(v))) {
      bad(field, "must be a task name", v);
    }
  }
  let unique: ValidOptions["unique"] = null;
  if (o.unique !== undefined) {
    const u = typeof o.unique === "string" ? { key: o.unique } : o.unique;
    if (typeof u !== "object" || u === null || typeof u.key !== "string" || u.key === "") {
      bad(
        "unique",
        'must be a non-empty key or { key, mode: "keep" | "replace" | "reject" }',
        o.unique,
      );
    }
    const mode = u.mode ?? "keep";
    if (mode !== "keep" && mode !== "replace" && mode !== "reject") {
      bad("unique.mode", 'must be "keep", "replace" or "reject"', mode);
    }
    unique = { key: u.key, mode };
  }
  if (
    o.cached !== undefined &&
    (!Number.isSafeInteger(o.cached) || (o.cached as number) < 1)
  ) bad("cached", "must be milliseconds >= 1", o.cached);
  let expiresAt: number | null = null;
  if (o.expireIn !== undefined) {
    const most = MAX_TIME_MS - now;
    if (!Number.isSafeInteger(o.expireIn) || o.expireIn < 1 || o.expireIn > most) {
      bad("expireIn", `must be whole milliseconds from 1 to ${most}`, o.expireIn);
    }
    expiresAt = now + o.expireIn;
    const startsAt = o.delay !== undefined ? now + o.delay : runAt;
    if (startsAt !== null && startsAt >= expiresAt) {
      bad(
        "expireIn",
        `must end after the task may start (${
          o.delay !== undefined ? `delay ${o.delay} ms` : `eta ${new Date(startsAt).toISOString()}`
        }), or it could never run`,
        o.expireIn,
      );
    }
  }
  if (o.save !== undefined && typeof o.save !== "boolean") {
    bad("save", "must be true or false", o.save);
  }
  let backoff: Backoff | null = null;
  if (o.backoff !== undefined) {
    try {
      backoff = validateBackoff(o.backoff);
    } catch (error) {
      bad("backoff", `is invalid (${(error as Error).message})`, o.backoff);
    }
  }
  return {
    group: o.group ?? null,
    partition: o.partition ?? null,
    priority: o.priority ?? 0,
    runAt: o.delay !== undefined ? now + o.delay : runAt,
    timeout: o.timeout ?? null,
    maxAttempts: o.maxAttempts ?? null,
    backoff,
    save: o.save ?? true,
    hook: o.hook ?? null,
    onFailure: o.onFailure ?? null,
    onTimeout: o.onTimeout ?? null,
    unique,
    cached: o.cached ?? null,
    expiresAt,
    trace: null,
  };
}

/**
 * Parses an eta: a Date, epoch milliseconds, or ISO 8601 text.
 *
 * @throws {TypeError} naming the value.
 */
export function parseEta(eta: unknown, what = "the task"): number {
  const ms = eta instanceof Date
    ? eta.getTime()
    : typeof eta === "number"
    ? eta
    : typeof eta === "string" && /^\d{4}-\d{2}-\d{2}/.test(eta)
    ? Date.parse(eta)
    : NaN;
  if (!Number.isFinite(ms)) {
    throw new TypeError(
      `Option eta of ${what} must be a Date, epoch milliseconds or ISO 8601 text like 2026-12-01T09:00:00Z: received ${
        shown(eta instanceof Date ? "Invalid Date" : eta)
      }`,
    );
  }
  if (ms < 0 || ms > MAX_TIME_MS) {
    throw new RangeError(
      `Option eta of ${what} must be from 1970-01-01T00:00:00Z to +275760-09-13T00:00:00Z: received ${
        shown(eta)
      }`,
    );
  }
  return ms;
}
