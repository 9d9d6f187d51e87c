/**
 * The task record: one typed, immutable value per task, stored as UTF-8 JSON so Deno, Bun and KV
 * Connect all read it. Every change is a method that returns a new record; the store writes it
 * in one atomic commit.
 *
 * Task states and the transitions that drive them:
 *
 * ```
 *              promote()            claim()             succeed()
 * scheduled ───────────▶ queued ───────────▶ running ───────────▶ succeeded
 *     ▲                                         │
 *     └──────── failAttempt(retryAt) ───────────┤ failAttempt(null) ─▶ failed
 *                                               │
 * scheduled | queued | running ── cancel() ─────┴──────────────────▶ cancelled
 * failed | cancelled ── resubmit() ─▶ queued
 * running ── release() ─▶ queued   (graceful stop: the attempt is given back, not counted)
 * ```
 *
 * @module
 */
import { type ErrorInfo, MAX_KEPT_ERRORS } from "./errors.ts";
import { formatKey } from "../runtime/kv_key.ts";
import { TASK_STATES, type TaskState } from "./states.ts";
import { type Backoff, validateBackoff } from "./backoff.ts";
import type { JsonValue } from "./json.ts";

export type { ErrorInfo, TaskState };

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
}

/** A task's place in a chain or an iter. */
export interface MemberOf {
  /** The chain's or iter's id. */
  readonly id: string;
  /** The step index (chain) or input index (iter), from 0. */
  readonly index: number;
}

/**
 * What the constructor takes. The fields added after the first stored version (`onFailure`,
 * `onTimeout`, `cached`, `chain`, `iter`, `resultBlob`) are optional and default to null.
 */
export type TaskInit = TaskFields;

/** Every field, in stored order. */
export const FIELD_NAMES: readonly (keyof TaskFields)[] = [
  "id",
  "name",
  "func",
  "args",
  "argsChunks",
  "queue",
  "group",
  "priority",
  "timeout",
  "maxAttempts",
  "attempt",
  "backoff",
  "state",
  "enqueuedAt",
  "runAt",
  "startedAt",
  "stoppedAt",
  "resultJson",
  "resultChunks",
  "error",
  "errors",
  "cluster",
  "worker",
  "progress",
  "save",
  "hook",
  "unique",
  "onFailure",
  "onTimeout",
  "cached",
  "chain",
  "iter",
  "resultBlob",
  "sig",
];

/** Raised when a stored value is not a kvq record. Names the key. */
export class CorruptRecordError extends Error {
  /** The key whose value is bad. */
  readonly key: Deno.KvKey;
  constructor(key: Deno.KvKey, reason: string) {
    super(
      `Stored value at ${
        formatKey(key)
      } is not a valid kvq record: ${reason}. It was skipped; 'kvq task ID' shows what is known of it, 'kvq delete ID' removes it, 'kvq doctor' lists every damaged record.`,
    );
    this.name = "CorruptRecordError";
    this.key = key;
  }
}

/**
 * The key of the marker a KV read gives for a value the KV engine can't decode (see
 * `store/kv.ts`): such a record is damaged, like one that isn't valid JSON.
 */
export const UNREADABLE: unique symbol = Symbol.for("kvq.unreadable");

const STORED_VERSION = 1;
const decoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/**
 * One task, as stored. Immutable: transitions return a new record.
 *
 * @example
 * ```ts
 * const running = record.claim(Date.now(), clusterId, "kvq-w1.g1");
 * ```
 */
export class TaskRecord implements TaskFields {
  readonly id!: string;
  readonly name!: string;
  readonly func!: string;
  readonly args!: JsonValue[] | null;
  readonly argsChunks!: number;
  readonly queue!: string;
  readonly group!: string | null;
  readonly priority!: number;
  readonly timeout!: number | null;
  readonly maxAttempts!: number | null;
  readonly attempt!: number;
  readonly backoff!: Backoff | null;
  readonly state!: TaskState;
  readonly enqueuedAt!: number;
  readonly runAt!: number;
  readonly startedAt!: number | null;
  readonly stoppedAt!: number | null;
  readonly resultJson!: string | null;
  readonly resultChunks!: number;
  readonly error!: ErrorInfo | null;
  readonly errors!: readonly ErrorInfo[];
  readonly cluster!: string | null;
  readonly worker!: string | null;
  readonly progress!: Progress | null;
  readonly save!: boolean;
  readonly hook!: string | null;
  readonly unique!: string | null;
  readonly onFailure!: string | null;
  readonly onTimeout!: string | null;
  readonly cached!: number | null;
  readonly chain!: MemberOf | null;
  readonly iter!: MemberOf | null;
  readonly resultBlob!: string | null;
  readonly sig!: string | null;

  /** The stored bytes, computed once on first use. */
  #bytes: Uint8Array | null = null;

  /** Makes a record from complete fields. Use the store's enqueue to create tasks. */
  constructor(fields: TaskInit) {
    this.id = fields.id;
    this.name = fields.name;
    this.func = fields.func;
    this.args = fields.args;
    this.argsChunks = fields.argsChunks;
    this.queue = fields.queue;
    this.group = fields.group;
    this.priority = fields.priority;
    this.timeout = fields.timeout;
    this.maxAttempts = fields.maxAttempts;
    this.attempt = fields.attempt;
    this.backoff = fields.backoff;
    this.state = fields.state;
    this.enqueuedAt = fields.enqueuedAt;
    this.runAt = fields.runAt;
    this.startedAt = fields.startedAt;
    this.stoppedAt = fields.stoppedAt;
    this.resultJson = fields.resultJson;
    this.resultChunks = fields.resultChunks;
    this.error = fields.error;
    this.errors = fields.errors;
    this.cluster = fields.cluster;
    this.worker = fields.worker;
    this.progress = fields.progress;
    this.save = fields.save;
    this.hook = fields.hook;
    this.unique = fields.unique;
    this.onFailure = fields.onFailure ?? null;
    this.onTimeout = fields.onTimeout ?? null;
    this.cached = fields.cached ?? null;
    this.chain = fields.chain ?? null;
    this.iter = fields.iter ?? null;
    this.resultBlob = fields.resultBlob ?? null;
    this.sig = fields.sig ?? null;
    Object.freeze(this);
  }

  /** The result, parsed; `undefined` when there is none (or it is still in chunks). */
  get result(): JsonValue | undefined {
    return this.resultJson === null ? undefined : JSON.parse(this.resultJson);
  }

  /** Whether the task reached a final state. */
  get finished(): boolean {
    return this.state === "succeeded" || this.state === "failed" || this.state === "cancelled";
  }

  /** A copy with some fields changed. */
  with(patch: Partial<TaskFields>): TaskRecord {
    return new TaskRecord({ ...this.fields(), ...patch });
  }

  /** The plain fields. */
  fields(): TaskFields {
    return {
      id: this.id,
      name: this.name,
      func: this.func,
      args: this.args,
      argsChunks: this.argsChunks,
      queue: this.queue,
      group: this.group,
      priority: this.priority,
      timeout: this.timeout,
      maxAttempts: this.maxAttempts,
      attempt: this.attempt,
      backoff: this.backoff,
      state: this.state,
      enqueuedAt: this.enqueuedAt,
      runAt: this.runAt,
      startedAt: this.startedAt,
      stoppedAt: this.stoppedAt,
      resultJson: this.resultJson,
      resultChunks: this.resultChunks,
      error: this.error,
      errors: this.errors,
      cluster: this.cluster,
      worker: this.worker,
      progress: this.progress,
      save: this.save,
      hook: this.hook,
      unique: this.unique,
      onFailure: this.onFailure,
      onTimeout: this.onTimeout,
      cached: this.cached,
      chain: this.chain,
      iter: this.iter,
      resultBlob: this.resultBlob,
      sig: this.sig,
    };
  }

  /** scheduled → queued: its time has come. */
  promote(): TaskRecord {
    this.#expect("promote", ["scheduled"]);
    return this.with({ state: "queued" });
  }

  /** queued → running: a worker took it. */
  claim(now: number, cluster: string, worker: string): TaskRecord {
    this.#expect("claim", ["queued"]);
    return this.with({
      state: "running",
      attempt: this.attempt + 1,
      startedAt: now,
      cluster,
      worker,
      progress: null,
    });
  }

  /** running → succeeded. `resultJson` is null when the result is not kept or is chunked. */
  succeed(
    now: number,
    resultJson: string | null,
    resultChunks = 0,
    resultBlob: string | null = null,
  ): TaskRecord {
    this.#expect("succeed", ["running"]);
    return this.with({
      state: "succeeded",
      stoppedAt: now,
      resultJson,
      resultChunks,
      resultBlob: resultChunks > 0 ? resultBlob : null,
      error: null,
    });
  }

  /**
   * running → scheduled for a retry at `retryAt`, or → failed when `retryAt` is null.
   */
  failAttempt(now: number, error: ErrorInfo, retryAt: number | null): TaskRecord {
    this.#expect("fail", ["running"]);
    const errors = [...this.errors, error].slice(-MAX_KEPT_ERRORS);
    return retryAt === null
      ? this.with({ state: "failed", stoppedAt: now, error, errors })
      : this.with({ state: "scheduled", runAt: retryAt, error, errors, startedAt: null });
  }

  /** running → queued: the cluster stopped before the attempt ended; it does not count. */
  release(): TaskRecord {
    this.#expect("release", ["running"]);
    return this.with({
      state: "queued",
      attempt: Math.max(0, this.attempt - 1),
      startedAt: null,
      cluster: null,
      worker: null,
      progress: null,
    });
  }

  /** scheduled | queued | running → cancelled. */
  cancel(now: number, error: ErrorInfo | null = null): TaskRecord {
    this.#expect("cancel", ["scheduled", "queued", "running"]);
    return this.with({ state: "cancelled", stoppedAt: now, ...(error ? { error } : {}) });
  }

  /** failed | cancelled → queued again, with a fresh attempt count (Django Q's resubmit). */
  resubmit(now: number): TaskRecord {
    this.#expect("resubmit", ["failed", "cancelled", "succeeded"]);
    return this.with({
      state: "queued",
      attempt: 0,
      runAt: now,
      startedAt: null,
      stoppedAt: null,
      resultJson: null,
      resultChunks: 0,
      resultBlob: null,
      cluster: null,
      worker: null,
      progress: null,
    });
  }

  #expect(action: string, states: TaskState[]): void {
    if (!states.includes(this.state)) {
      throw new RangeError(
        `Cannot ${action} task ${this.id} (${this.name}): it is ${this.state}, not ${
          states.join(" or ")
        }`,
      );
    }
  }

  /**
   * The stored form: UTF-8 JSON. Computed once and cached, since a commit path may ask for it
   * several times (sizing a batch, then writing it); don't modify the returned bytes.
   */
  encode(): Uint8Array {
    return this.#bytes ??= encoder.encode(this.toJsonText());
  }

  /**
   * The stored form as text. The result JSON text is spliced in, never re-parsed. Fields at
   * their default (null, 0, an empty list, `save: true`) are left out: every record is written
   * two or three times, and half its bytes were defaults. {@linkcode TaskRecord.decode} reads
   * a missing field as its default, so records written with every field read the same.
   */
  toJsonText(): string {
    // One object literal of a fixed shape: much faster to stringify than a spread copy.
    // JSON.stringify leaves out the fields that are undefined.
    const head = JSON.stringify({
      v: STORED_VERSION,
      id: this.id,
      name: this.name,
      func: this.func,
      args: this.args ?? undefined,
      argsChunks: this.argsChunks || undefined,
      queue: this.queue,
      group: this.group ?? undefined,
      priority: this.priority,
      timeout: this.timeout ?? undefined,
      maxAttempts: this.maxAttempts ?? undefined,
      attempt: this.attempt || undefined,
      backoff: this.backoff ?? undefined,
      state: this.state,
      enqueuedAt: this.enqueuedAt,
      runAt: this.runAt,
      startedAt: this.startedAt ?? undefined,
      stoppedAt: this.stoppedAt ?? undefined,
      resultChunks: this.resultChunks || undefined,
      error: this.error ?? undefined,
      errors: this.errors.length > 0 ? this.errors : undefined,
      cluster: this.cluster ?? undefined,
      worker: this.worker ?? undefined,
      progress: this.progress ?? undefined,
      save: this.save ? undefined : false,
      hook: this.hook ?? undefined,
      unique: this.unique ?? undefined,
      onFailure: this.onFailure ?? undefined,
      onTimeout: this.onTimeout ?? undefined,
      cached: this.cached ?? undefined,
      chain: this.chain ?? undefined,
      iter: this.iter ?? undefined,
      resultBlob: this.resultBlob ?? undefined,
      sig: this.sig ?? undefined,
    });
    const result = this.resultJson;
    return result === null ? head : `${head.slice(0, -1)},"result":${result}}`;
  }

  /** A plain object for JSON output (CLI `--json`, the dashboard). */
  toJSON(): Record<string, unknown> {
    const { resultJson: _, ...rest } = this.fields();
    return { ...rest, result: this.result ?? null };
  }

  /**
   * Reads a stored record back, checking every field.
   *
   * @throws {CorruptRecordError} naming `key` when the value is not a kvq task record.
   */
  static decode(key: Deno.KvKey, value: unknown): TaskRecord {
    if (typeof value === "object" && value !== null && UNREADABLE in value) {
      throw new CorruptRecordError(
        key,
        `KV can't decode the stored value (${(value as Record<symbol, string>)[UNREADABLE]})`,
      );
    }
    if (!(value instanceof Uint8Array)) {
      throw new CorruptRecordError(key, `expected bytes, found ${describe(value)}`);
    }
    let text: string;
    let raw: unknown;
    try {
      text = decoder.decode(value);
      raw = JSON.parse(text);
    } catch (error) {
      throw new CorruptRecordError(key, `not UTF-8 JSON (${(error as Error).message})`);
    }
    return TaskRecord.fromJSON(key, raw);
  }

  /**
   * Validates a parsed record (from KV or from an export file).
   *
   * @throws {CorruptRecordError} naming `key`.
   */
  static fromJSON(key: Deno.KvKey, raw: unknown): TaskRecord {
    const bad = (why: string): never => {
      throw new CorruptRecordError(key, why);
    };
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      return bad(`expected an object, found ${describe(raw)}`);
    }
    const r = raw as Record<string, unknown>;
    if (r.v !== STORED_VERSION) bad(`unknown record version ${JSON.stringify(r.v)}`);
    const str = (name: string): string =>
      typeof r[name] === "string" ? r[name] as string : bad(`field "${name}" is not a string`);
    const strOrNull = (name: string): string | null =>
      r[name] === null || r[name] === undefined ? null : str(name);
    const num = (name: string): number =>
      typeof r[name] === "number" && Number.isFinite(r[name])
        ? r[name] as number
        : bad(`field "${name}" is not a number`);
    const numOrNull = (name: string): number | null =>
      r[name] === null || r[name] === undefined ? null : num(name);
    const int = (name: string): number =>
      Number.isSafeInteger(num(name))
        ? r[name] as number
        : bad(`field "${name}" is not an integer`);
    const count = (name: string): number =>
      r[name] === undefined
        ? 0
        : Number.isSafeInteger(r[name]) && (r[name] as number) >= 0
        ? r[name] as number
        : bad(`field "${name}" is not an integer >= 0`);
    const bool = (name: string, fallback: boolean): boolean =>
      r[name] === undefined
        ? fallback
        : typeof r[name] === "boolean"
        ? r[name] as boolean
        : bad(`field "${name}" is not a boolean`);
    const errorInfo = (v: unknown, name: string): ErrorInfo => {
      const e = v as Record<string, unknown> | null;
      if (
        typeof e !== "object" || e === null || typeof e.name !== "string" ||
        typeof e.message !== "string" || (e.stack !== undefined && typeof e.stack !== "string")
      ) {
        return bad(`field "${name}" is not an error`);
      }
      return e as unknown as ErrorInfo;
    };
    const state = str("state") as TaskState;
    if (!TASK_STATES.includes(state)) bad(`unknown state ${JSON.stringify(state)}`);
    const argsChunks = count("argsChunks");
    const args = r.args === undefined || r.args === null ? null : r.args;
    if (args !== null && !Array.isArray(args)) bad(`field "args" is not an array`);
    if (args === null && argsChunks === 0) bad(`field "args" is missing`);
    const errors = r.errors === undefined ? [] : r.errors;
    if (!Array.isArray(errors)) bad(`field "errors" is not a list`);
    const progress = r.progress ?? null;
    if (
      progress !== null &&
      (typeof progress !== "object" ||
        typeof (progress as Progress).fraction !== "number")
    ) bad(`field "progress" is malformed`);
    let backoff: Backoff | null = null;
    if (r.backoff !== undefined && r.backoff !== null) {
      try {
        backoff = validateBackoff(r.backoff);
      } catch (error) {
        bad(`field "backoff": ${(error as Error).message}`);
      }
    }
    const member = (name: string): MemberOf | null => {
      const m = r[name];
      if (m === undefined || m === null) return null;
      const o = m as Record<string, unknown>;
      if (
        typeof o !== "object" || typeof o.id !== "string" || !Number.isSafeInteger(o.index) ||
        (o.index as number) < 0
      ) return bad(`field "${name}" is not { id, index }`);
      return { id: o.id, index: o.index as number };
    };
    const id = str("id");
    if (key.length > 0 && key[key.length - 1] !== id && key.includes("task")) {
      bad(`its id ${JSON.stringify(id)} does not match the key`);
    }
    return new TaskRecord({
      id,
      name: str("name"),
      func: str("func"),
      args: args as JsonValue[] | null,
      argsChunks,
      queue: str("queue"),
      group: strOrNull("group"),
      priority: int("priority"),
      timeout: numOrNull("timeout"),
      maxAttempts: numOrNull("maxAttempts"),
      attempt: count("attempt"),
      backoff,
      state,
      enqueuedAt: num("enqueuedAt"),
      runAt: num("runAt"),
      startedAt: numOrNull("startedAt"),
      stoppedAt: numOrNull("stoppedAt"),
      resultJson: r.result === undefined ? null : JSON.stringify(r.result),
      resultChunks: count("resultChunks"),
      error: r.error === undefined || r.error === null ? null : errorInfo(r.error, "error"),
      errors: (errors as unknown[]).map((e, i) => errorInfo(e, `errors[${i}]`)),
      cluster: strOrNull("cluster"),
      worker: strOrNull("worker"),
      progress: progress as Progress | null,
      save: bool("save", true),
      hook: strOrNull("hook"),
      unique: strOrNull("unique"),
      onFailure: strOrNull("onFailure"),
      onTimeout: strOrNull("onTimeout"),
      cached: numOrNull("cached"),
      chain: member("chain"),
      iter: member("iter"),
      resultBlob: strOrNull("resultBlob"),
      sig: strOrNull("sig"),
    });
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (typeof value === "object") return (value as object).constructor?.name ?? "an object";
  return typeof value;
}
