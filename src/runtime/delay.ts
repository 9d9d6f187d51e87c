/**
 * `delay(ms, { signal })`: a promise that resolves after `ms`, or rejects with the signal's
 * reason once it aborts (the timer is cleared). Delays past the 2³¹ − 1 ms a timer can hold are
 * chained, so a long delay is never cut to a millisecond.
 *
 * @module
 */

/** The longest delay one `setTimeout` holds (about 24.8 days); longer ones fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Options for {@linkcode delay}. */
export interface DelayOptions {
  /** Aborting rejects the promise with the signal's reason and clears the timer. */
  signal?: AbortSignal;
}

/**
 * Resolves after `ms` milliseconds.
 *
 * @throws {RangeError} when `ms` is negative or not a finite number.
 * @example
 * ```ts
 * import { delay } from "./delay.ts";
 * await delay(100, { signal: AbortSignal.timeout(1000) });
 * ```
 */
export function delay(ms: number, options: DelayOptions = {}): Promise<void> {
  if (!Number.isFinite(ms) || ms < 0) {
    throw new RangeError(`Delay must be a finite number of milliseconds ≥ 0: received ${ms}`);
  }
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const end = Date.now() + ms;
    let timer: ReturnType<typeof setTimeout>;
    const arm = () => {
      const left = end - Date.now();
      if (left <= 0) {
        signal?.removeEventListener("abort", onAbort);
        resolve();
        return;
      }
      timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    };
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    timer = setTimeout(arm, Math.min(ms, MAX_TIMER_MS));
  });
}

/**
 * Calls `fn` after `ms`, however long (past {@linkcode MAX_TIMER_MS} the timer is chained).
 * Returns the function that cancels it.
 */
export function setLongTimeout(fn: () => void, ms: number): () => void {
  const controller = new AbortController();
  delay(Math.max(0, ms), { signal: controller.signal }).then(fn, () => {});
  return () => controller.abort();
}
