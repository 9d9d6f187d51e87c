/**
 * Waiting without polling: for tasks to finish (one batched read of every awaited record per
 * change of the queue), and for any condition the caller reads again on each change.
 *
 * @module
 */
import { coalesce } from "../runtime/coalesce.ts";
import { setLongTimeout } from "../runtime/delay.ts";
import { NoSuchTaskError } from "../store/errors.ts";
import { getTask, readFinished, resolveTaskRef } from "../store/get.ts";
import type { Store } from "../store/store.ts";
import type { TaskRecord } from "../task/record.ts";

/** How long to wait, and what stops the wait early. */
export interface WaitOptions {
  /**
   * Milliseconds to wait; 0 returns at once.
   * @default 0
   */
  wait?: number;
  /** Stops waiting early. */
  signal?: AbortSignal;
}

/** The tasks awaited in one queue, read again on each of its changes. */
export class FinishWaiters {
  readonly #store: Store;
  readonly #waiters = new Map<string, Set<(record: TaskRecord) => void>>();
  #unsubscribe: (() => void) | null = null;
  readonly #check = coalesce(() => this.#checkOnce());

  constructor(store: Store) {
    this.#store = store;
  }

  /**
   * Waits up to `wait` ms for task `ref` (id or human name) to finish; resolves with its record,
   * finished or not.
   *
   * @throws {NoSuchTaskError} when there is no such task.
   * @throws {RangeError} when `wait` is negative or not a number.
   */
  async task(ref: string, options: WaitOptions): Promise<TaskRecord> {
    const wait = options.wait ?? 0;
    if (!(wait >= 0)) throw new RangeError(`wait must be milliseconds >= 0: received ${wait}`);
    const store = this.#store;
    const id = await resolveTaskRef(store, ref);
    if (id === null) throw new NoSuchTaskError(ref, store.queue);
    const first = await getTask(store, id);
    if (first === null) throw new NoSuchTaskError(ref, store.queue);
    // An abort that came while we read must count: a listener added now would never fire.
    if (first.finished || wait === 0 || options.signal?.aborted) return first;
    const finished = await this.#until(id, options);
    return (await getTask(store, id)) ?? finished ?? first;
  }

  /**
   * Resolves with task `id`'s record once it is finished, or null after `wait` ms or on abort.
   * The caller has read it unfinished just before.
   */
  #until(id: string, options: WaitOptions): Promise<TaskRecord | null> {
    return new Promise<TaskRecord | null>((resolve) => {
      const done = (record: TaskRecord | null) => {
        cancelTimer();
        options.signal?.removeEventListener("abort", onAbort);
        this.#remove(id, onRecord);
        resolve(record);
      };
      const onRecord = (record: TaskRecord) => done(record);
      const onAbort = () => done(null);
      const cancelTimer = setLongTimeout(() => done(null), options.wait ?? 0);
      options.signal?.addEventListener("abort", onAbort, { once: true });
      this.#add(id, onRecord);
    });
  }

  #add(id: string, fn: (record: TaskRecord) => void): void {
    let set = this.#waiters.get(id);
    if (!set) this.#waiters.set(id, set = new Set());
    set.add(fn);
    this.#unsubscribe ??= this.#store.changes.subscribe(() => void this.#check());
    void this.#check(); // it may have finished between the first read and now
  }

  #remove(id: string, fn: (record: TaskRecord) => void): void {
    const set = this.#waiters.get(id);
    set?.delete(fn);
    if (set?.size === 0) this.#waiters.delete(id);
    if (this.#waiters.size === 0) this.close();
  }

  async #checkOnce(): Promise<void> {
    if (this.#waiters.size === 0 || this.#store.handle.closed) return;
    try {
      for (const record of await readFinished(this.#store, [...this.#waiters.keys()])) {
        for (const fn of [...this.#waiters.get(record.id) ?? []]) fn(record);
      }
    } catch (error) {
      if (!this.#store.handle.closed) console.error("kvq: checking awaited tasks failed:", error);
    }
  }

  /** Stops listening for changes (the waits still pending end at their time). */
  close(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
  }
}

/**
 * Resolves true once `check` resolves true, re-running it on every change of `store`'s queue;
 * false after `wait` ms or on abort.
 *
 * @throws {RangeError} when `wait` is negative or not a number.
 */
export async function waitFor(
  store: Store,
  check: () => Promise<boolean>,
  options: WaitOptions,
): Promise<boolean> {
  const wait = options.wait ?? 0;
  if (!(wait >= 0)) throw new RangeError(`wait must be milliseconds >= 0: received ${wait}`);
  if (wait === 0 || options.signal?.aborted) return false;
  return await new Promise<boolean>((resolve) => {
    let settled = false;
    const finish = (value: boolean) => {
      if (settled) return;
      settled = true;
      cancelTimer();
      unsubscribe();
      options.signal?.removeEventListener("abort", onAbort);
      resolve(value);
    };
    const run = coalesce(async () => {
      if (settled) return;
      try {
        if (await check()) finish(true);
      } catch (error) {
        if (!store.handle.closed) console.error("kvq: waiting failed:", error);
      }
    });
    const onAbort = () => finish(false);
    // A wait past 2³¹ ms would fire at once with a plain timer.
    const cancelTimer = setLongTimeout(() => finish(false), wait);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const unsubscribe = store.changes.subscribe(() => void run());
    void run(); // it may have changed between the caller's read and the subscription
  });
}
