/**
 * The context of a running task. A task is a plain exported function that needs no kvq import; it
 * reaches its context either through `this` or through {@linkcode taskContext}.
 *
 * @example
 * ```ts
 * import { taskContext } from "./context.ts";
 *
 * export async function resize(url: string) {
 *   const { signal, progress } = taskContext();
 *   const response = await fetch(url, { signal });
 *   progress(0.5, "downloaded");
 *   return (await response.arrayBuffer()).byteLength;
 * }
 * ```
 *
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { RateLimitedError } from "./errors.ts";

/** What a running task can learn about itself and report back. */
export interface TaskContext {
  /** The task id (UUIDv7). */
  readonly id: string;
  /** The task's human name (a few words), for logs. */
  readonly name: string;
  /** Which attempt this is, from 1. */
  readonly attempt: number;
  /** The queue the task came from. */
  readonly queue: string;
  /** Aborted on timeout, cancel or shutdown; the reason is a `TaskTimeoutError` or `TaskCancelledError`. */
  readonly signal: AbortSignal;
  /**
   * Reports progress: a fraction in [0, 1] or `{ done, total }`. Throws `RangeError` on values
   * outside those ranges.
   */
  progress(value: number | { done: number; total: number }, message?: string): void;
  /**
   * Stops the task, rate limited (an API answered 429): it goes back to waiting without using
   * an attempt, and its queue starts nothing more for `ms`, on every cluster. Throws the
   * {@linkcode RateLimitedError} that does it (a `RangeError` for a bad `ms`).
   */
  rateLimited(ms: number, message?: string): never;
}

/** What {@linkcode createTaskContext} needs to build a context. */
export interface TaskContextInit {
  /** The task id. */
  id: string;
  /** The human name. */
  name: string;
  /** The attempt number, from 1. */
  attempt: number;
  /** The queue name. */
  queue: string;
  /** The task's abort signal. */
  signal: AbortSignal;
  /** Receives each validated progress report as a fraction in [0, 1]. */
  onProgress(fraction: number, message?: string): void;
}

/** Longest progress message kept, in characters; longer ones are cut. */
export const MAX_PROGRESS_MESSAGE_LENGTH = 1024;

/**
 * One `AsyncLocalStorage` per process (per worker), shared through a global symbol so a task
 * module that bundles or imports another copy of kvq still sees the context set by this one.
 */
const STORAGE_KEY = Symbol.for("kvq.taskContext");

function storage(): AsyncLocalStorage<TaskContext> {
  const scope = globalThis as unknown as Record<symbol, AsyncLocalStorage<TaskContext> | undefined>;
  return scope[STORAGE_KEY] ??= new AsyncLocalStorage<TaskContext>();
}

/**
 * Returns the context of the task that is running in the current async flow.
 *
 * @throws {Error} when called outside a running task.
 * @example
 * ```ts
 * import { taskContext } from "./context.ts";
 * export async function slow() {
 *   await new Promise((resolve) => taskContext().signal.addEventListener("abort", resolve));
 * }
 * ```
 */
export function taskContext(): TaskContext {
  const context = storage().getStore();
  if (context === undefined) {
    throw new Error("taskContext() was called outside a running kvq task");
  }
  return context;
}

/**
 * Builds a frozen {@linkcode TaskContext} whose `progress` validates its input and forwards a
 * fraction to `init.onProgress`.
 */
export function createTaskContext(init: TaskContextInit): TaskContext {
  const { onProgress } = init;
  return Object.freeze({
    id: init.id,
    name: init.name,
    attempt: init.attempt,
    queue: init.queue,
    signal: init.signal,
    progress(value: number | { done: number; total: number }, message?: string): void {
      const fraction = toFraction(value);
      if (message === undefined) {
        onProgress(fraction);
        return;
      }
      if (typeof message !== "string") {
        throw new TypeError(`Progress message must be a string: received ${typeof message}`);
      }
      onProgress(fraction, message.slice(0, MAX_PROGRESS_MESSAGE_LENGTH));
    },
    rateLimited(ms: number, message?: string): never {
      throw new RateLimitedError(ms, message);
    },
  });
}

/**
 * Runs `fn` with `context` as the current task context, and with `this` bound to it.
 * Whatever `fn` returns (a value or a promise) is returned as is.
 */
export function runInTaskContext<T>(
  context: TaskContext,
  fn: (this: TaskContext) => T,
): T {
  return storage().run(context, () => fn.call(context));
}

function toFraction(value: unknown): number {
  if (typeof value === "number") {
    if (!(value >= 0 && value <= 1)) {
      throw new RangeError(`Progress must be a fraction in [0, 1]: received ${value}`);
    }
    return value;
  }
  if (value !== null && typeof value === "object") {
    const { done, total } = value as { done?: unknown; total?: unknown };
    if (typeof done !== "number" || !Number.isFinite(done) || done < 0) {
      throw new RangeError(
        `Progress "done" must be a finite number >= 0: received ${String(done)}`,
      );
    }
    if (typeof total !== "number" || !Number.isFinite(total) || total <= 0) {
      throw new RangeError(
        `Progress "total" must be a finite number > 0: received ${String(total)}`,
      );
    }
    return Math.min(done / total, 1);
  }
  throw new TypeError(
    `Progress must be a number or { done, total }: received ${
      value === null ? "null" : typeof value
    }`,
  );
}
