/**
 * The error classes callers catch by type, and the conversion of any thrown value into the
 * {@linkcode ErrorInfo} that crosses the worker boundary and is stored on the task.
 *
 * @module
 */

/** How many task names a {@linkcode TaskNotFoundError} message lists before "and N more". */
const LISTED_NAMES = 10;

/** Longest stored error message, in UTF-8 bytes (4 KiB keeps a task record well under 64 KiB). */
/** An error as it crosses the worker boundary and is stored on the task. */
export interface ErrorInfo {
  /** The error's class name, e.g. `"TypeError"` or `"TaskTimeoutError"`. */
  name: string;
  /** Its message. */
  message: string;
  /** Its stack, if any. */
  stack?: string;
  /** A {@linkcode RateLimitedError}'s push-back, in ms. */
  retryAfter?: number;
  /** The attempt that failed with it (kept in a record's `errors`, for its timeline). */
  attempt?: number;
  /** When that attempt could run. */
  runAt?: number;
  /** When it started. */
  startedAt?: number;
  /** When it stopped. */
  stoppedAt?: number;
  /** The cluster that ran it. */
  cluster?: string;
  /** The worker that ran it. */
  worker?: string;
}

export const MAX_ERROR_MESSAGE_BYTES = 4 * 1024;

/** Longest stored stack trace, in UTF-8 bytes. */
export const MAX_ERROR_STACK_BYTES = 8 * 1024;

/** How many attempts' errors a record keeps (the newest). */
export const MAX_KEPT_ERRORS = 25;

/** Longest stored error class name, in UTF-8 bytes. */
const MAX_ERROR_NAME_BYTES = 256;

/**
 * A task payload names a function the task modules do not export as a task.
 *
 * @example
 * ```ts
 * import { TaskNotFoundError } from "./errors.ts";
 * const error = new TaskNotFoundError("mail", ["add", "echo"]);
 * error.message; // 'Task "mail" not found; the task modules export: add, echo'
 * ```
 */
export class TaskNotFoundError extends Error {
  /** The name that was asked for. */
  readonly taskName: string;
  /** The task names that exist. */
  readonly available: readonly string[];

  /**
   * @param taskName The unknown name, as it came in the payload.
   * @param available The task names the modules do export.
   */
  constructor(taskName: string, available: Iterable<string>, options?: ErrorOptions) {
    const names = [...available].sort();
    const listed = names.slice(0, LISTED_NAMES).join(", ");
    const more = names.length > LISTED_NAMES ? ` and ${names.length - LISTED_NAMES} more` : "";
    const exported = names.length === 0
      ? "the task modules export no functions"
      : `the task modules export: ${listed}${more}`;
    super(`Task ${JSON.stringify(taskName)} not found; ${exported}`, options);
    this.name = "TaskNotFoundError";
    this.taskName = taskName;
    this.available = Object.freeze(names);
  }
}

/** A task ran past its timeout. It is the reason of the task's `AbortSignal` on timeout. */
export class TaskTimeoutError extends Error {
  /** @param message What timed out, e.g. `"Task add timed out after 30000 ms"`. */
  constructor(message = "Task timed out", options?: ErrorOptions) {
    super(message, options);
    this.name = "TaskTimeoutError";
  }
}

/** A task was cancelled (by a user or a shutdown). It is the reason of the task's `AbortSignal`. */
export class TaskCancelledError extends Error {
  /** @param message Why, e.g. `"Task cancelled"` or `"Cluster shutting down"`. */
  constructor(message = "Task cancelled", options?: ErrorOptions) {
    super(message, options);
    this.name = "TaskCancelledError";
  }
}

/** The longest push-back a task may ask for, in ms (what one timer holds: about 24.8 days). */
export const MAX_RETRY_AFTER_MS = 2_147_483_647;

/**
 * Thrown by a task that is being rate limited by what it calls (an API answering 429 with
 * Retry-After), or by `this.rateLimited(ms)`: the task goes back to waiting without using an
 * attempt, and its queue starts nothing more for `retryAfter` ms, on every cluster.
 *
 * @example
 * ```ts
 * if (res.status === 429) throw new RateLimitedError(Number(res.headers.get("retry-after")) * 1000);
 * ```
 */
export class RateLimitedError extends Error {
  /** How long its queue should start nothing, in ms. */
  readonly retryAfter: number;
  /**
   * @param retryAfter milliseconds, from 1 to {@linkcode MAX_RETRY_AFTER_MS} (fractions round up)
   * @throws {RangeError} for anything else, naming the value.
   */
  constructor(retryAfter: number, message?: string) {
    if (
      typeof retryAfter !== "number" || !Number.isFinite(retryAfter) || retryAfter <= 0 ||
      retryAfter > MAX_RETRY_AFTER_MS
    ) {
      throw new RangeError(
        `rateLimited() needs milliseconds from 1 to ${MAX_RETRY_AFTER_MS}: received ${
          String(retryAfter)
        }`,
      );
    }
    const ms = Math.ceil(retryAfter);
    super(message ?? `Rate limited: its queue starts nothing for ${ms} ms`);
    this.name = "RateLimitedError";
    this.retryAfter = ms;
  }
}

/** How a worker ended; see `WorkerHandle`. */
export type WorkerExitReason = "error" | "close" | "terminated" | "init-error";

/** Options for {@linkcode WorkerCrashError}. */
export interface WorkerCrashErrorOptions extends ErrorOptions {
  /** The worker's name, e.g. `"kvq-w3.g2"`. */
  worker?: string;
  /** How the worker ended. */
  reason?: WorkerExitReason;
}

/** The worker running a task died mid-task (uncaught error, `self.close()`, or terminated). */
export class WorkerCrashError extends Error {
  /** The worker's name, if known. */
  readonly worker: string | undefined;
  /** How the worker ended, if known. */
  readonly reason: WorkerExitReason | undefined;

  /** @param message What happened, naming the worker. */
  constructor(message: string, options: WorkerCrashErrorOptions = {}) {
    const { worker, reason, ...errorOptions } = options;
    super(message, errorOptions);
    this.name = "WorkerCrashError";
    this.worker = worker;
    this.reason = reason;
  }
}

/**
 * Converts anything a task may throw into an {@linkcode ErrorInfo}: `Error`s keep their name,
 * message and stack; strings become the message; other values are described. The message is cut
 * to {@linkcode MAX_ERROR_MESSAGE_BYTES} and the stack to {@linkcode MAX_ERROR_STACK_BYTES}.
 *
 * @example
 * ```ts
 * import { toErrorInfo } from "./errors.ts";
 * toErrorInfo("nope"); // { name: "Error", message: "nope" }
 * ```
 */
export function toErrorInfo(error: unknown): ErrorInfo {
  let name = "Error";
  let message: string;
  let stack: string | undefined;
  if (typeof error === "string") {
    message = error;
  } else if (error !== null && typeof error === "object") {
    const record = error as { name?: unknown; message?: unknown; stack?: unknown };
    const readName = safeRead(() => record.name);
    const readMessage = safeRead(() => record.message);
    const readStack = safeRead(() => record.stack);
    if (typeof readName === "string" && readName !== "") name = readName;
    message = typeof readMessage === "string" ? readMessage : describe(error);
    if (typeof readStack === "string" && readStack !== "") stack = readStack;
  } else {
    message = describe(error);
  }
  const info: ErrorInfo = {
    name: truncateUtf8(name, MAX_ERROR_NAME_BYTES),
    message: truncateUtf8(message, MAX_ERROR_MESSAGE_BYTES),
  };
  if (stack !== undefined) info.stack = truncateUtf8(stack, MAX_ERROR_STACK_BYTES);
  if (name === "RateLimitedError" && error !== null && typeof error === "object") {
    const after = safeRead(() => (error as { retryAfter?: unknown }).retryAfter);
    if (typeof after === "number" && Number.isFinite(after) && after > 0) {
      info.retryAfter = Math.min(MAX_RETRY_AFTER_MS, Math.ceil(after));
    }
  }
  return info;
}

/**
 * Rebuilds an `Error` from an {@linkcode ErrorInfo}, keeping its name and stack, for code that
 * wants to throw what a worker reported.
 */
export function fromErrorInfo(info: ErrorInfo): Error {
  const error = new Error(info.message);
  error.name = info.name;
  if (info.stack !== undefined) error.stack = info.stack;
  return error;
}

function safeRead(read: () => unknown): unknown {
  try {
    return read();
  } catch {
    return undefined;
  }
}

function describe(value: unknown): string {
  if (value === undefined) return "undefined";
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "symbol" || typeof value === "function") return String(value);
  try {
    const json = JSON.stringify(value);
    if (typeof json === "string") return json;
  } catch {
    // Circular or otherwise unserialisable: fall through.
  }
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** Cuts `text` to at most `maxBytes` UTF-8 bytes, never inside a character, marking the cut. */
function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= maxBytes) return text;
  const marker = "…[truncated]";
  let end = maxBytes - new TextEncoder().encode(marker).length;
  // Step back over UTF-8 continuation bytes (0b10xxxxxx) so no character is split.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return new TextDecoder().decode(bytes.subarray(0, end)) + marker;
}
