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
import type { TaskState } from "./states.ts";
import type { JsonValue } from "./json.ts";
import {
  assignFields,
  copyFields,
  decodeFields,
  describe,
  encodeFields,
  type MemberOf,
  type Progress,
  type TaskFields,
} from "./record_fields.ts";

export type { ErrorInfo, TaskState };
export { FIELD_NAMES, type MemberOf, type Progress, type TaskFields } from "./record_fields.ts";

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

const decoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

// The record's fields, typed once in `TaskFields` and listed once in `record_fields.ts`.
export interface TaskRecord extends Readonly<Required<TaskFields>> {}

/**
 * One task, as stored. Immutable: transitions return a new record.
 *
 * @example
 * ```ts
 * const running = record.claim(Date.now(), clusterId, "kvq-w1.g1");
 * ```
 */
export class TaskRecord {
  /** The stored bytes, computed once on first use. */
  #bytes: Uint8Array | null = null;

  /**
   * Makes a record from its fields (those added after the first stored version, `onFailure` to
   * `tracestate`, may be left out: null). Use the store's enqueue to create tasks.
   */
  constructor(fields: TaskFields) {
    assignFields(this, fields);
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

  /** A copy with some fields changed: only through the named transitions below. */
  #with(patch: Partial<TaskFields>): TaskRecord {
    return new TaskRecord({ ...this.fields(), ...patch });
  }

  /** The plain fields. */
  fields(): Required<TaskFields> {
    return copyFields(this);
  }

  /** scheduled → queued: its time has come. */
  promote(): TaskRecord {
    this.#expect("promote", ["scheduled"]);
    return this.#with({ state: "queued" });
  }

  /** queued → running: a worker took it. */
  claim(now: number, cluster: string, worker: string): TaskRecord {
    this.#expect("claim", ["queued"]);
    return this.#with({
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
    return this.#with({
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
  failAttempt(
    now: number,
    error: ErrorInfo,
    retryAt: number | null,
    runTrace: string | null = null,
  ): TaskRecord {
    this.#expect("fail", ["running"]);
    // The first attempt's run span, for its retries' spans to link to.
    const firstRun = this.firstRun ?? (this.attempt === 1 ? runTrace : null);
    // Each kept error says which attempt it ended, when and where (the task's timeline).
    const kept: ErrorInfo = {
      ...error,
      attempt: this.attempt,
      runAt: this.runAt,
      ...(this.startedAt !== null ? { startedAt: this.startedAt } : {}),
      stoppedAt: now,
      ...(this.cluster !== null ? { cluster: this.cluster } : {}),
      ...(this.worker !== null ? { worker: this.worker } : {}),
    };
    const errors = [...this.errors, kept].slice(-MAX_KEPT_ERRORS);
    return retryAt === null
      ? this.#with({ state: "failed", stoppedAt: now, error, errors, firstRun })
      : this.#with({
        state: "scheduled",
        runAt: retryAt,
        error,
        errors,
        startedAt: null,
        firstRun,
      });
  }

  /**
   * running → scheduled at `retryAt`: rate limited (`RateLimitedError`), it waits again
   * without using its attempt.
   */
  pushedBack(retryAt: number, error: ErrorInfo): TaskRecord {
    this.#expect("push back", ["running"]);
    return this.#with({
      state: "scheduled",
      runAt: retryAt,
      attempt: Math.max(0, this.attempt - 1),
      startedAt: null,
      error,
      progress: null,
    });
  }

  /** running → queued: the cluster stopped before the attempt ended; it does not count. */
  release(): TaskRecord {
    this.#expect("release", ["running"]);
    return this.#with({
      state: "queued",
      attempt: Math.max(0, this.attempt - 1),
      startedAt: null,
      cluster: null,
      worker: null,
      progress: null,
    });
  }

  /** How many times a cluster died while it may have been running (see `crashedOn`). */
  get crashes(): number {
    return this.crashedOn?.length ?? 0;
  }

  /**
   * Ended by the death of `cluster` while it may have been running (a failed attempt, retried
   * or final, made by {@linkcode failAttempt}): the crash is counted apart from its attempts.
   */
  crashedIn(cluster: string): TaskRecord {
    return this.#with({ crashedOn: [...this.crashedOn ?? [], cluster] });
  }

  /** queued: its place in its partition's line (see `store/turns.ts`). */
  withTurn(turn: number): TaskRecord {
    return this.#with({ turn });
  }

  /** Whether it is waiting with its start-by deadline passed at `now`: it must never start. */
  expiredAt(now: number): boolean {
    return this.expiresAt !== null && this.attempt === 0 && now >= this.expiresAt &&
      (this.state === "queued" || this.state === "scheduled");
  }

  /** scheduled | queued | running → cancelled. */
  cancel(now: number, error: ErrorInfo | null = null): TaskRecord {
    this.#expect("cancel", ["scheduled", "queued", "running"]);
    return this.#with({ state: "cancelled", stoppedAt: now, ...(error ? { error } : {}) });
  }

  /**
   * failed | cancelled → queued again, with a fresh attempt count (Django Q's resubmit), no
   * crashes and no start-by deadline: whoever resubmits it wants it run.
   */
  resubmit(now: number): TaskRecord {
    this.#expect("resubmit", ["failed", "cancelled", "succeeded"]);
    return this.#with({
      expiresAt: null,
      crashedOn: null,
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

  /** With what is stored apart filled in: arguments or result read from chunks, progress. */
  loaded(parts: { args?: JsonValue[]; resultJson?: string; progress?: Progress }): TaskRecord {
    return this.#with(parts);
  }

  /** Signed by its creator's secret (or with the finished mark of a final record), or not. */
  signed(sig: string | null): TaskRecord {
    return this.#with({ sig });
  }

  /** A step of a chain, or a member of an iter. */
  memberOf(of: { chain?: MemberOf | null; iter?: MemberOf | null }): TaskRecord {
    return this.#with({ chain: of.chain ?? null, iter: of.iter ?? null });
  }

  /** running: a held task handed to `worker`, starting at `now` (its lease stays as claimed). */
  handedTo(worker: string, now: number): TaskRecord {
    this.#expect("hand over", ["running"]);
    return this.#with({ worker, startedAt: now });
  }

  /** running: a task that waited in its worker behind another starts at `now`. */
  began(now: number): TaskRecord {
    this.#expect("start", ["running"]);
    return this.#with({ startedAt: now });
  }

  /**
   * The stored form: UTF-8 JSON. Computed once and cached, since a commit path may ask for it
   * several times (sizing a batch, then writing it); don't modify the returned bytes.
   */
  encode(): Uint8Array {
    return this.#bytes ??= encoder.encode(this.toJsonText());
  }

  /**
   * The stored form as text (see `encodeFields`): fields at their default are left out, and
   * {@linkcode TaskRecord.decode} reads a missing field as its default.
   */
  toJsonText(): string {
    return encodeFields(this);
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
    let raw: unknown;
    try {
      raw = JSON.parse(decoder.decode(value));
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
    return new TaskRecord(decodeFields(key, raw, (why) => {
      throw new CorruptRecordError(key, why);
    }));
  }
}
