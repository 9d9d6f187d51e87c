/**
 * Example tasks: any named export function of a module is a task. None of them needs to import
 * kvq; a task that wants its context (abort signal, progress, attempt) gets it as `this`.
 *
 * @module
 */

/** Adds two numbers. */
export function add(a: number, b: number): number {
  return a + b;
}

/** Returns its arguments: handy for checking a round trip. */
export function echo(...args: unknown[]): unknown[] {
  return args;
}

/** Waits `ms` milliseconds, or until the task is aborted (timeout or cancel). */
export function sleep(
  this: { signal: AbortSignal },
  ms: number,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(`slept ${ms} ms`), ms);
    this.signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(this.signal.reason);
    }, { once: true });
  });
}

/** Counts to `steps`, reporting progress on the way. */
export async function countTo(
  this: {
    progress(value: { done: number; total: number }, message?: string): void;
    signal: AbortSignal;
  },
  steps: number,
  delayMs = 100,
): Promise<number> {
  for (let i = 1; i <= steps; i++) {
    this.signal.throwIfAborted();
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    this.progress({ done: i, total: steps }, `step ${i} of ${steps}`);
  }
  return steps;
}

/** Fails with a message: shows retries and the failed-task views. */
export function fail(message = "this task always fails"): never {
  throw new Error(message);
}

/** Burns CPU for `ms` milliseconds: shows per-worker CPU and parallel speed-up. */
export function burn(ms: number): number {
  const end = performance.now() + ms;
  let n = 0;
  while (performance.now() < end) n++;
  return n;
}

/** Does nothing: for throughput measurements. */
export function noop(): void {}
