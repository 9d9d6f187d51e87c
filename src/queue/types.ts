/**
 * The types of the queue API: what enqueue takes and returns, the options of `openQueue` and of
 * the waits, and the errors a wait raises.
 *
 * @module
 */
import { type ErrorInfo, fromErrorInfo } from "../task/errors.ts";
import type { TaskRecord } from "../task/record.ts";
import type { Kv } from "../runtime/mod.ts";
import type { EnqueueOptions } from "../store/spec.ts";
import type { Retention } from "../store/prune.ts";
import type { Clock, KvHandle } from "../store/store.ts";

/** A task function, or its registered name. */
// deno-lint-ignore no-explicit-any
export type TaskRef<F extends (...args: any[]) => unknown> = F | string;

/** What enqueue returns: the new task's identity. */
export interface Enqueued {
  /** The task id (UUIDv7). */
  readonly id: string;
  /** Its human name. */
  readonly name: string;
  /** The record as stored (for a unique task kept, the holder's). */
  readonly record: TaskRecord;
  /** True when a `unique` key was held and this is the task that holds it, not a new one. */
  readonly existing: boolean;
}

/** The options form of enqueue: the call plus its options. */
export interface EnqueueCall extends EnqueueOptions {
  /** The task function, or its name. */
  // deno-lint-ignore no-explicit-any
  func: ((...args: any[]) => unknown) | string;
  /** Its arguments. */
  args?: readonly unknown[];
}

/** Options for {@linkcode openQueue}. */
export interface OpenQueueOptions {
  /**
   * A path, `:memory:`, a KV Connect URL, or an already opened `Deno.Kv` (which the queue then
   * does not close).
   * @default the KVQ_KV environment variable, else `.kvq/kv.sqlite3`
   */
  kv?: string | Kv | KvHandle;
  /**
   * The queue name.
   * @default the KVQ_QUEUE environment variable, else `"default"`
   */
  name?: string;
  /**
   * Where "now" comes from.
   * @default Date.now
   */
  clock?: Clock;
  /**
   * The largest args or result payload, in bytes.
   * @default 10 MiB
   */
  maxPayloadBytes?: number;
  /**
   * Signing secrets: new tasks are signed with the first, for clusters that verify.
   * @default KVQ_SECRET (and KVQ_OLD_SECRETS), else none
   */
  secret?: string | readonly string[] | null;
  /**
   * Use no native KV queue, as on remote KV.
   * @default false
   */
  noNativeQueue?: boolean;
  /**
   * Succeeded tasks {@linkcode Queue.prune} keeps.
   * @default { count: 250 }
   */
  keepSucceeded?: Retention;
  /**
   * Failed and cancelled tasks {@linkcode Queue.prune} keeps.
   * @default all
   */
  keepFailed?: Retention;
  /**
   * Apply retention counts per func or per group (Django Q's `save_limit_per`).
   * @default one count for the queue
   */
  keepPer?: "func" | "group";
}

/** Options for {@linkcode Queue.iterResult}. */
export interface IterResultOptions extends ResultOptions {
  /**
   * Return null in a failed or cancelled member's place instead of throwing.
   * @default false
   */
  failures?: boolean;
}

/** Raised by {@linkcode Queue.iterResult} when a member failed (without `failures`). */
export class IterFailedError extends Error {
  /** The iter id. */
  readonly iter: string;
  /** The input index of the first member that failed. */
  readonly index: number;
  constructor(iter: string, index: number, state: string, error: ErrorInfo | null) {
    super(
      `Member ${index} of iter ${iter} ${state}: ${error?.message ?? "no error recorded"}`,
      error ? { cause: fromErrorInfo(error) } : undefined,
    );
    this.name = "IterFailedError";
    this.iter = iter;
    this.index = index;
  }
}

/** Options for {@linkcode Queue.result}. */
export interface ResultOptions {
  /**
   * Milliseconds to wait for the task to finish; 0 returns at once.
   * @default 0
   */
  wait?: number;
  /** Stops waiting early. */
  signal?: AbortSignal;
}

/** Raised by {@linkcode Queue.result} when the task failed or was cancelled. */
export class TaskFailedError extends Error {
  /** The finished record. */
  readonly record: TaskRecord;
  constructor(record: TaskRecord) {
    super(
      `Task ${record.func} ${record.id} (${record.name}) ${record.state}: ${
        record.error?.message ?? "no error recorded"
      }`,
      record.error ? { cause: fromErrorInfo(record.error) } : undefined,
    );
    this.name = "TaskFailedError";
    this.record = record;
  }
}
