/**
 * Retry backoff: how long a failed attempt waits before the next one.
 *
 * @module
 */

/** How retries are spaced. */
export type Backoff =
  /** `base · 2^(attempt-1)`, capped at `max`, with up to `jitter` of it randomised. */
  | { type: "exponential"; base?: number; max?: number; jitter?: number }
  /** The same delay every time. */
  | { type: "fixed"; delay: number }
  /** One delay per retry; the last repeats. */
  | { type: "list"; delays: number[] };

/** The default: 1 s, 2 s, 4 s … capped at 1 hour, ±25 % jitter. */
export const DEFAULT_BACKOFF: Backoff = Object.freeze({
  type: "exponential",
  base: 1_000,
  max: 3_600_000,
  jitter: 0.25,
});

/**
 * Checks a backoff option.
 *
 * @throws {TypeError} naming the bad field.
 */
export function validateBackoff(value: unknown): Backoff {
  const fail = (what: string): never => {
    throw new TypeError(`Backoff ${what}: received ${JSON.stringify(value)}`);
  };
  if (typeof value !== "object" || value === null) return fail("must be an object");
  const b = value as Record<string, unknown>;
  const ms = (v: unknown) => typeof v === "number" && Number.isFinite(v) && v >= 0;
  switch (b.type) {
    case "exponential":
      if (b.base !== undefined && !ms(b.base)) fail("base must be milliseconds >= 0");
      if (b.max !== undefined && !ms(b.max)) fail("max must be milliseconds >= 0");
      if (
        b.jitter !== undefined &&
        !(typeof b.jitter === "number" && b.jitter >= 0 && b.jitter <= 1)
      ) fail("jitter must be a fraction from 0 to 1");
      return b as Backoff;
    case "fixed":
      if (!ms(b.delay)) fail("delay must be milliseconds >= 0");
      return b as Backoff;
    case "list":
      if (!Array.isArray(b.delays) || b.delays.length === 0 || !b.delays.every(ms)) {
        fail("delays must be a non-empty list of milliseconds >= 0");
      }
      return b as Backoff;
    default:
      return fail(`type must be "exponential", "fixed" or "list"`);
  }
}

/**
 * The delay before retry number `attempt` (the attempt that just failed, 1-based).
 * `random` is injectable so tests are exact.
 */
export function backoffDelay(
  backoff: Backoff,
  attempt: number,
  random: () => number = Math.random,
): number {
  switch (backoff.type) {
    case "fixed":
      return backoff.delay;
    case "list":
      return backoff.delays[Math.min(attempt, backoff.delays.length) - 1] ?? 0;
    case "exponential": {
      const base = backoff.base ?? 1_000;
      const max = backoff.max ?? 3_600_000;
      const jitter = backoff.jitter ?? 0.25;
      const raw = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
      return Math.max(0, Math.round(raw * (1 - jitter + 2 * jitter * random())));
    }
  }
}

/** What decides whether and when a failed attempt is retried. */
export interface RetryPolicy {
  /** Attempts allowed for tasks that set none. */
  maxAttempts: number;
  /** Backoff for tasks that set none. */
  backoff: Backoff;
}

/** The default retry policy: 3 attempts, exponential backoff from 1 s. */
export const DEFAULT_RETRY: RetryPolicy = Object.freeze({
  maxAttempts: 3,
  backoff: DEFAULT_BACKOFF,
});

/** Errors that no retry can fix (the function does not exist, the payload is refused…). */
const FINAL_ERRORS = new Set(["TaskNotFoundError", "PayloadTooLargeError", "SignatureError"]);

/**
 * When a failed attempt runs again, or null when it does not: attempts are used up, or the
 * error is one a retry can't fix. Runs that ended in a crash of their cluster (`crashes`) are
 * counted apart: they use up no attempt.
 */
export function retryTime(
  task: { attempt: number; maxAttempts: number | null; backoff: Backoff | null; crashes?: number },
  errorName: string,
  policy: RetryPolicy,
  now: number,
): number | null {
  if (FINAL_ERRORS.has(errorName)) return null;
  const used = task.attempt - (task.crashes ?? 0);
  if (used >= (task.maxAttempts ?? policy.maxAttempts)) return null;
  return now + backoffDelay(task.backoff ?? policy.backoff, used);
}

/** How many crashes of its cluster a task running alone may see, by default (quarantine). */
export const DEFAULT_MAX_CRASHES = 2;
