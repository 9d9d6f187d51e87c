/**
 * The app-facing API: open a queue, enqueue calls, await results.
 *
 * @module
 */
import type { JsonValue } from "../task/json.ts";
import type { TaskRecord } from "../task/record.ts";
import { type CancelResult, cancelTask } from "../store/cancel.ts";
import { type ChainOptions, type ChainStatus, chainStatus, createChain } from "../store/chain.ts";
import { readStateCounts, type StateCounts } from "../store/counters.ts";
import { deleteTask } from "../store/delete.ts";
import {
  addEnqueueMutations,
  type EnqueueOptions,
  enqueueTasks,
  prepareRecords,
} from "../store/enqueue.ts";
import { enqueueBatch } from "../store/enqueue_batch.ts";
import { getTask } from "../store/get.ts";
import { groupRecords } from "../store/group.ts";
import { createIter, type IterStatus, iterStatus } from "../store/iter.ts";
import { type ListOptions, listTasks, type TaskPage } from "../store/list.ts";
import { pausedInfo, type PauseInfo, pauseQueue, resumeQueue } from "../store/pause.ts";
import { type SearchOptions, type SearchPage, searchTasks } from "../store/search.ts";
import {
  clearLimits,
  type QueueLimits,
  type QueueLimitsInput,
  readLimits,
  setLimits,
} from "../store/flow.ts";
import { pruneFinished, type RetentionOptions, validateRetention } from "../store/prune.ts";
import { retryTask } from "../store/retry.ts";
import type { PartitionCounts, PartitionCountsOptions } from "../store/partitions.ts";
import { readPartitionCounts } from "../store/partitions.ts";
import { Store } from "../store/store.ts";
import { queueHandle } from "./handle.ts";
import {
  type EnqueueCall,
  type Enqueued,
  type IterResultOptions,
  type OpenQueueOptions,
  type ResultOptions,
  TaskFailedError,
} from "./types.ts";
import { FinishWaiters } from "./waiters.ts";
import { countGroup, deleteGroup, resultGroup, type ResultGroupOptions } from "./groups.ts";
import { enqueued, toSpec } from "./calls.ts";
import { iterResult, waitChain } from "./iters.ts";

export * from "./types.ts";

/**
 * Opens a queue.
 *
 * @example
 * ```ts
 * await using queue = await openQueue({ kv: ".kvq/kv.sqlite3" });
 * const { id } = await queue.enqueue("add", 1, 2);
 * console.log(await queue.result(id, { wait: 5_000 })); // 3, once a cluster ran it
 * ```
 */
export async function openQueue(options: OpenQueueOptions = {}): Promise<Queue> {
  const { handle, owned } = await queueHandle(options);
  const name = options.name ?? globalThis.process?.env?.KVQ_QUEUE ?? "default";
  try {
    const store = new Store(handle, name, {
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.maxPayloadBytes ? { maxPayloadBytes: options.maxPayloadBytes } : {}),
      ...(options.secret !== undefined ? { secret: options.secret } : {}),
    });
    const retention: RetentionOptions = {};
    if (options.keepSucceeded) retention.keepSucceeded = options.keepSucceeded;
    if (options.keepFailed) retention.keepFailed = options.keepFailed;
    if (options.keepPer) retention.keepPer = options.keepPer;
    validateRetention(retention);
    return new Queue(store, owned, retention);
  } catch (error) {
    if (owned) handle.close();
    throw error;
  }
}

/**
 * One queue: enqueue, look up, wait for, cancel and list tasks.
 */
export class Queue {
  /** The storage of this queue. */
  readonly store: Store;
  readonly #owned: boolean;
  readonly #retention: RetentionOptions;
  readonly #waiters: FinishWaiters;

  /** Wraps a store; use {@linkcode openQueue}. */
  constructor(store: Store, owned = false, retention: RetentionOptions = {}) {
    this.store = store;
    this.#waiters = new FinishWaiters(store);
    this.#owned = owned;
    this.#retention = retention;
  }

  /** The queue name. */
  get name(): string {
    return this.store.queue;
  }

  /**
   * Enqueues a call. Pass the task function itself (its arguments are then type-checked) or its
   * registered name; or one object with `func`, `args` and options.
   *
   * @example
   * ```ts
   * await queue.enqueue(add, 1, 2);
   * await queue.enqueue({ func: "add", args: [1, 2], priority: -1, delay: 5_000 });
   * ```
   */
  // deno-lint-ignore no-explicit-any
  enqueue<F extends (...args: any[]) => unknown>(
    func: F,
    ...args: Parameters<F>
  ): Promise<Enqueued>;
  /** Enqueues a call by name. */
  enqueue(func: string, ...args: unknown[]): Promise<Enqueued>;
  /** Enqueues a call with options. */
  enqueue(call: EnqueueCall): Promise<Enqueued>;
  async enqueue(first: unknown, ...rest: unknown[]): Promise<Enqueued> {
    const spec = toSpec(first, rest);
    const existing = new Set<string>();
    const [record] = await enqueueTasks(this.store, [spec], existing);
    return enqueued(record!, existing);
  }

  /**
   * Enqueues many calls in few commits. Nothing is stored if any call is invalid. (Calls with a
   * `unique` key are stored one commit each.)
   *
   * Many commits are not one: a producer killed mid-call leaves the commits it made. With
   * `idempotencyKey`, calling again with the same key and calls (within a day) stores only what
   * is missing and returns every task, those stored before with `existing: true`.
   *
   * @throws {IdempotencyKeyError} when the key was used for other calls, or is in use right now.
   * @example
   * ```ts
   * await queue.enqueueMany(rows.map((r) => ({ func: "importRow", args: [r] })), {
   *   idempotencyKey: `import-${file}`,
   * });
   * ```
   */
  async enqueueMany(
    calls: readonly EnqueueCall[],
    options: { idempotencyKey?: string } = {},
  ): Promise<Enqueued[]> {
    const specs = calls.map((c) => toSpec(c, []));
    const existing = new Set<string>();
    const records = options.idempotencyKey === undefined
      ? await enqueueTasks(this.store, specs, existing)
      : await enqueueBatch(this.store, specs, options.idempotencyKey, existing);
    return records.map((record) => enqueued(record, existing));
  }

  /**
   * Enqueues a chain (Django Q's `async_chain`): the steps run in order, each once the previous
   * one succeeded; with `passResult`, each gets the previous result as an extra last argument.
   * A step's final failure (after its retries) or cancel ends the chain `failed`; the steps
   * after it are never created and {@linkcode chainStatus} reports them `cancelled`. Every step
   * is validated first (nothing is stored on bad input); a step naming an unknown task fails
   * with `TaskNotFoundError` when it runs, which ends the chain. Returns the chain id.
   *
   * @example
   * ```ts
   * const id = await queue.chain([
   *   { func: "download", args: [url] },
   *   { func: "resize", args: [800] }, // gets download's result as its last argument
   * ], { passResult: true });
   * await queue.chainStatus(id); // { state: "running", current: 0, results: [null, null], … }
   * ```
   */
  async chain(steps: readonly EnqueueCall[], options: ChainOptions = {}): Promise<string> {
    if (!Array.isArray(steps)) {
      throw new TypeError(`chain() takes a list of steps: received ${typeof steps}`);
    }
    const specs = steps.map((s, i) => {
      if (typeof s !== "object" || s === null) {
        throw new TypeError(`Step ${i} of the chain must be { func, args, ...options }`);
      }
      return toSpec(s, []);
    });
    return (await createChain(this.store, specs, options)).chain.id;
  }

  /**
   * A chain's state (`running`, `succeeded`, `failed`), the step that runs or ended it, and
   * every step's result (kept in the chain even with `save: false`).
   *
   * @throws {NoSuchTaskError} when there is no such chain.
   */
  chainStatus(id: string): Promise<ChainStatus> {
    return chainStatus(this.store, id);
  }

  /**
   * Waits up to `wait` ms for a chain to end and returns its status.
   */
  waitChain(id: string, options: ResultOptions = {}): Promise<ChainStatus> {
    return waitChain(this.store, id, options);
  }

  /**
   * Enqueues one task per argument set (Django Q's `async_iter`); they run in parallel and
   * their results collate in input order ({@linkcode iterResult}). Each item of `argsList` is
   * an argument list; an item that is not an array is the single argument. Returns the iter id.
   *
   * @throws {TypeError} when `argsList` is not iterable.
   * @example
   * ```ts
   * const id = await queue.iter("add", [[1, 2], [3, 4]]);
   * await queue.iterResult(id, { wait: 10_000 }); // [3, 7]
   * ```
   */
  async iter(
    // deno-lint-ignore no-explicit-any
    func: ((...args: any[]) => unknown) | string,
    argsList: Iterable<unknown>,
    options: EnqueueOptions = {},
  ): Promise<string> {
    const name = typeof func === "function" ? func.name : func;
    return (await createIter(this.store, name, argsList, options)).id;
  }

  /** How far an iter got. */
  iterStatus(id: string): Promise<IterStatus> {
    return iterStatus(this.store, id);
  }

  /**
   * The collated results of an iter, in input order, once every member finished; waits up to
   * `wait` ms for that (woken by changes). Returns `undefined` when not finished by then.
   *
   * @throws {IterFailedError} when a member failed or was cancelled (unless `failures`).
   * @throws {NoSuchTaskError} when there is no such iter.
   */
  iterResult(
    id: string,
    options: IterResultOptions = {},
  ): Promise<(JsonValue | null)[] | undefined> {
    return iterResult(this.store, id, options);
  }

  /**
   * Pauses the queue: clusters finish what runs and claim nothing more from it until
   * {@linkcode resume}. They learn of it through their change feed.
   */
  pause(reason?: string): Promise<void> {
    return pauseQueue(this.store, reason ?? null);
  }

  /** Resumes a paused queue. */
  resume(): Promise<void> {
    return resumeQueue(this.store);
  }

  /** Whether the queue is paused (and since when). */
  async paused(): Promise<PauseInfo | null> {
    return await pausedInfo(this.store);
  }

  /**
   * Sets the queue's limits, for every cluster (see `QueueLimits`), replacing the ones it had:
   * `concurrency`, `rate` as `{ count, ms }` or `"100/1s"`, the same per partition
   * (`partitionConcurrency`, `partitionRate`), and `partitionWeights`.
   * @throws {LimitError} naming a bad one; nothing is stored.
   */
  setLimits(limits: QueueLimitsInput): Promise<QueueLimits> {
    return setLimits(this.store, limits);
  }

  /** The queue's limits, or null. */
  limits(): Promise<QueueLimits | null> {
    return readLimits(this.store);
  }

  /** Removes the queue's limits. */
  clearLimits(): Promise<void> {
    return clearLimits(this.store);
  }

  /** The queue's partitions with how many of their tasks wait and run, busiest first. */
  async partitions(options: PartitionCountsOptions = {}): Promise<PartitionCounts[]> {
    return (await readPartitionCounts(this.store, options)).partitions;
  }

  /**
   * Deletes finished tasks past the retention limits of {@linkcode openQueue} (default: keep
   * the 250 newest successes and every failure). Clusters do this from their heartbeat.
   * Returns how many were deleted.
   */
  prune(options: RetentionOptions = this.#retention): Promise<number> {
    return pruneFinished(this.store, options);
  }

  /**
   * Adds calls to the app's own atomic operation on the same KV: they commit with the app's
   * data, or not at all. Call {@linkcode notify} after a successful commit so local clusters
   * wake at once (others wake through their file or KV watch anyway).
   *
   * @example
   * ```ts
   * const atomic = db.atomic().set(["orders", id], order); // db: the app's Deno.Kv
   * queue.enqueueIn(atomic, [{ func: "sendReceipt", args: [id] }]);
   * if ((await atomic.commit()).ok) queue.notify();
   * ```
   */
  enqueueIn(atomic: Deno.AtomicOperation, calls: readonly EnqueueCall[]): Enqueued[] {
    const records = prepareRecords(this.store, calls.map((c) => toSpec(c, [])));
    addEnqueueMutations(this.store, atomic, records, this.store.now());
    return records.map((record) => ({ id: record.id, name: record.name, record, existing: false }));
  }

  /** Wakes clusters in this process after a commit made outside kvq. */
  notify(): void {
    this.store.changes.notifyLocal();
  }

  /** A task by id or human name, or null. */
  fetch(ref: string): Promise<TaskRecord | null> {
    return getTask(this.store, ref);
  }

  /**
   * The result of a task. Waits up to `wait` ms for it to finish, woken by changes (never a
   * sleep loop). Returns `undefined` when it has not finished by then.
   *
   * @throws {TaskFailedError} when it failed or was cancelled.
   * @throws {NoSuchTaskError} when there is no such task.
   */
  async result(ref: string, options: ResultOptions = {}): Promise<JsonValue | undefined> {
    const record = await this.wait(ref, options);
    if (!record.finished) return undefined;
    if (record.state !== "succeeded") throw new TaskFailedError(record);
    return record.result ?? null;
  }

  /**
   * Waits up to `wait` ms for a task to finish and returns its record (finished or not).
   *
   * @throws {NoSuchTaskError} when there is no such task.
   */
  wait(ref: string, options: ResultOptions = {}): Promise<TaskRecord> {
    return this.#waiters.task(ref, options);
  }

  /** How many tasks are in each state (from counters, not a scan). */
  counts(): Promise<StateCounts> {
    return readStateCounts(this.store);
  }

  /** How many tasks wait to run now (Django Q's `queue_size`). */
  async queueSize(): Promise<number> {
    return (await this.counts()).queued;
  }

  /** One page of tasks, newest first. */
  tasks(options: ListOptions = {}): Promise<TaskPage> {
    return listTasks(this.store, options);
  }

  /** One page of the tasks that hold `text`, newest first, across every state (`search.ts`). */
  search(text: string, options: SearchOptions = {}): Promise<SearchPage> {
    return searchTasks(this.store, text, options);
  }

  /**
   * Cancels a task. A waiting task is cancelled at once; a running one is stopped by its
   * cluster.
   *
   * @throws {NoSuchTaskError} or {TaskStateError} (already finished).
   */
  cancel(ref: string): Promise<CancelResult> {
    return cancelTask(this.store, ref);
  }

  /**
   * Puts a failed, cancelled or succeeded task back in the queue with a fresh attempt count
   * (Django Q's resubmit).
   */
  retry(ref: string): Promise<TaskRecord> {
    return retryTask(this.store, ref);
  }

  /**
   * Deletes a finished or waiting task.
   *
   * @throws {NoSuchTaskError} or {TaskStateError} (running: cancel it first).
   */
  delete(ref: string): Promise<void> {
    return deleteTask(this.store, ref);
  }

  /** Every task of a group. */
  async fetchGroup(group: string): Promise<TaskRecord[]> {
    return (await groupRecords(this.store, group)).map((g) => g.record);
  }

  /**
   * How many of a group's tasks finished: successes only, or with `failures` also failed ones.
   */
  countGroup(group: string, options: { failures?: boolean } = {}): Promise<number> {
    return countGroup(this.store, group, options);
  }

  /**
   * The results of a group's succeeded tasks, in enqueue order. With `count`, waits up to
   * `wait` ms until that many have finished (with `failures`, failed ones count too).
   */
  resultGroup(group: string, options: ResultGroupOptions = {}): Promise<JsonValue[]> {
    return resultGroup(this.store, group, options);
  }

  /**
   * Deletes a group's index; with `tasks`, its tasks too (running ones are left alone and
   * counted in `skipped`).
   */
  deleteGroup(
    group: string,
    options: { tasks?: boolean } = {},
  ): Promise<{ deleted: number; skipped: number }> {
    return deleteGroup(this.store, group, options);
  }

  /** Closes the KV handle if this queue opened it. */
  close(): void {
    this.#waiters.close();
    if (this.#owned) this.store.handle.close();
  }

  /** Same as {@linkcode close}. */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}
