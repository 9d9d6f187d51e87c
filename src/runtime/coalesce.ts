/**
 * `coalesce(fn)`: "run again if asked while running". Calls while `fn` runs do not start a
 * second run at once; they make it run once more when it ends, however many came meanwhile.
 *
 * @module
 */

/** A coalesced function: call it to run, or to ask for one more run after the current one. */
export interface Coalesced {
  /** Runs now, or once more after the run in progress; resolves when the runs end. */
  (): Promise<void>;
  /** Asks for one more run after the current one (from inside the run, say). */
  again(): void;
  /** The run in progress, or null. */
  readonly running: Promise<void> | null;
}

/**
 * Wraps `fn` so that it never runs twice at once, and a call while it runs makes it run again
 * after. An error of `fn` rejects the promise of that round and ends it.
 *
 * @example
 * ```ts
 * import { coalesce } from "./coalesce.ts";
 * const refresh = coalesce(async () => { await new Promise((r) => setTimeout(r, 10)); });
 * void refresh();
 * void refresh(); // runs once more after the first
 * ```
 */
export function coalesce(fn: () => Promise<void>): Coalesced {
  let running: Promise<void> | null = null;
  // Set before the first run starts: fn may ask again() before its first await.
  let busy = false;
  let again = false;
  const run = (() => {
    if (busy) {
      again = true;
      return running ?? Promise.resolve();
    }
    busy = true;
    running = (async () => {
      try {
        do {
          again = false;
          await fn();
        } while (again);
      } finally {
        busy = false;
        running = null;
      }
    })();
    return running;
  }) as Coalesced;
  run.again = () => {
    if (busy) again = true;
  };
  Object.defineProperty(run, "running", { get: () => running });
  return run;
}
