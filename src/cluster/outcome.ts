/**
 * The pure mapping from how a run ended to the {@linkcode Outcome} that is stored, shared by the
 * cluster and the inline runner so both end a task the same way.
 *
 * @module
 */
import { type RetryPolicy, retryTime } from "../task/backoff.ts";
import type { Claimed } from "../store/claim.ts";
import type { Outcome } from "../store/complete.ts";
import type { ErrorInfo } from "../task/errors.ts";

/** What the task function gave: its result as JSON text, or the error it threw. */
export type RunResult = { ok: true; result: string } | { ok: false; error: ErrorInfo };

/** What the runner knows about the run besides its result. */
export interface RunFacts {
  /** A cancel was acted on (or the task threw a `TaskCancelledError`). */
  cancelled: boolean;
  /** The task had started when it ended (a cancel then reads "while running"). */
  started: boolean;
  /** Its timeout fired: whatever error it ended with is stored as a `TaskTimeoutError`. */
  timedOut: boolean;
}

/**
 * The outcome of one run: `cancelled` when a cancel stopped it, `success` with its result,
 * `pushback` when it was rate limited (see `RateLimitedError`), or `failure` with its error and,
 * per the retry policy, when to retry (null: final).
 */
export function outcomeOf(
  claimed: Claimed,
  result: RunResult,
  facts: RunFacts,
  retry: RetryPolicy,
  now: number,
): Outcome {
  if (facts.cancelled && !result.ok) {
    return {
      kind: "cancelled",
      claimed,
      error: {
        name: "TaskCancelledError",
        message: facts.started ? "Cancelled while running" : "Cancelled before it started",
      },
    };
  }
  if (result.ok) return { kind: "success", claimed, resultJson: result.result };
  const after = result.error.retryAfter;
  if (result.error.name === "RateLimitedError" && !facts.timedOut && after !== undefined) {
    // Pushed back: it waits again, uncounted, and its queue starts nothing for `after` ms.
    return { kind: "pushback", claimed, error: result.error, retryAt: now + after };
  }
  const error = facts.timedOut && result.error.name !== "TaskTimeoutError"
    ? {
      ...result.error,
      name: "TaskTimeoutError",
      message: `Task timed out: ${result.error.message}`,
    }
    : result.error;
  return {
    kind: "failure",
    claimed,
    error,
    retryAt: retryTime(claimed.record, error.name, retry, now),
  };
}
