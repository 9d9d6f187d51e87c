/**
 * The app-facing API: open a queue, enqueue calls, await results.
 *
 * @module
 */
import { fromErrorInfo } from "../task/errors.ts";
import type { JsonValue } from "../task/json.ts";
import { CorruptRecordError, TaskRecord } from "../task/record.ts";
import { type CancelResult, cancelTask } from "../store/cancel.ts";
import { readStateCounts, type StateCounts } from "../store/counters.ts";
import { deleteRecord } from "../store/delete.ts";
import {
  addEnqueueMutations,
  type EnqueueOptions,
  type EnqueueSpec,
  enqueueTasks,
  prepareRecords,
  UniqueTaskError,
} from "../store/enqueue.ts";
import { NoSuchTaskError, TaskStateError } from "../store/errors.ts";
import { getRecord, getTask, resolveTaskRef } from "../store/get.ts";
import { groupRecords } from "../store/group.ts";
import { type ListOptions, listTasks, type TaskPage } from "../store/list.ts";
import { KV_MAX_GET_MANY } from "../store/limits.ts";
import { type Clock, KvHandle, Store } from "../store/store.ts";
import type { Kv } from "../runtime/mod.ts";
import { addStateCounts, CountDeltas } from "../store/counters.ts";
import { commitAtomic } from "../store/commit.ts";
import type { ErrorInfo } from "../task/errors.ts";
import { addFinishedIndexRemoval } from "../store/delete.ts";
import { type ChainOptions, type ChainStatus, chainStatus, createChain } from "../store/chain.ts";
import {
  collate,
  createIter,
  getIter,
  iterDone,
  iterOutcomes,
  type IterStatus,
  iterStatus,
} from "../store/iter.ts";
import { readChunks } from "../store/chunks.ts";
import { enqueueBatch } from "../store/enqueue_batch.ts";
import { sign } from "../task/signature.ts";
import { setLongTimeout } from "../runtime/delay.ts";
import { pausedInfo, type PauseInfo, pauseQueue, resumeQueue } from "../store/pause.ts";
import {
  pruneFinished,
  type Retention,
  type RetentionOptions,
  validateRetention,
} from "../store/prune.ts";
import { deleteDamaged } from "../store/damaged.ts";

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
  let handle: KvHandle;
  let owned = false;
  if (options.kv instanceof KvHandle) handle = options.kv;
  else if (typeof options.kv === "object" && options.kv !== null) {
    handle = new KvHandle(options.kv, { location: ":app:", remote: false, path: null }, {
      noNativeQueue: options.noNativeQueue ?? false,
    });
    owned = true;
  } else {
    handle = await KvHandle.open({
      kv: options.kv ?? null,
      noNativeQueue: options.noNativeQueue ?? false,
    });
    owned = true;
  }
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
  readonly #waiters = new Map<string, Set<(record: TaskRecord) => void>>();
  #unsubscribe: (() => void) | null = null;
  #checking = false;
  #recheck = false;

  /** Wraps a store; use {@linkcode openQueue}. */
  constructor(store: Store, owned = false, retention: RetentionOptions = {}) {
    this.store = store;
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
  async waitChain(id: string, options: ResultOptions = {}): Promise<ChainStatus> {
    let status = await this.chainStatus(id);
    if (status.state !== "running") return status;
    await this.#waitFor(async () => {
      status = await this.chainStatus(id);
      return status.state !== "running";
    }, options);
    return status;
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
  async iterResult(
    id: string,
    options: IterResultOptions = {},
  ): Promise<(JsonValue | null)[] | undefined> {
    const iter = await getIter(this.store, id);
    const done = async () => (await iterDone(this.store, id)) >= iter.total;
    if (!(await done()) && !(await this.#waitFor(done, options))) return undefined;
    const outcomes = await iterOutcomes(this.store, iter);
    if (!options.failures) {
      const bad = outcomes.findIndex((o) => o !== null && o.state !== "succeeded");
      if (bad >= 0) throw new IterFailedError(id, bad, outcomes[bad]!.state, outcomes[bad]!.error);
    }
    return collate(outcomes);
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
   * Deletes finished tasks past the retention limits of {@linkcode openQueue} (default: keep
   * the 250 newest successes and every failure). Clusters do this from their heartbeat.
   * Returns how many were deleted.
   */
  prune(options: RetentionOptions = this.#retention): Promise<number> {
    return pruneFinished(this.store, options);
  }

  /**
   * Resolves true once `check` resolves true, re-running it on every change of the queue;
   * false after `wait` ms or on abort.
   */
  async #waitFor(check: () => Promise<boolean>, options: ResultOptions): Promise<boolean> {
    const wait = options.wait ?? 0;
    if (!(wait >= 0)) throw new RangeError(`wait must be milliseconds >= 0: received ${wait}`);
    if (wait === 0 || options.signal?.aborted) return false;
    return await new Promise<boolean>((resolve) => {
      let running = false;
      let again = false;
      let settled = false;
      const finish = (value: boolean) => {
        if (settled) return;
        settled = true;
        cancelTimer();
        unsubscribe();
        options.signal?.removeEventListener("abort", onAbort);
        resolve(value);
      };
      const run = async () => {
        if (running) {
          again = true;
          return;
        }
        running = true;
        try {
          do {
            again = false;
            if (await check()) return finish(true);
          } while (again && !settled);
        } catch (error) {
          if (!this.store.handle.closed) console.error("kvq: waiting failed:", error);
        } finally {
          running = false;
        }
      };
      const onAbort = () => finish(false);
      // A wait past 2³¹ ms would fire at once with a plain timer.
      const cancelTimer = setLongTimeout(() => finish(false), wait);
      options.signal?.addEventListener("abort", onAbort, { once: true });
      const unsubscribe = this.store.changes.subscribe(() => void run());
      void run(); // it may have changed between the caller's read and the subscription
    });
  }

  /**
   * Adds calls to the app's own atomic operation on the same KV: they commit with the app's
   * data, or not at all. Call {@linkcode notify} after a successful commit so local clusters
   * wake at once (others wake through their file or KV watch anyway).
   *
   * @example
   * ```ts
   * const atomic = kv.atomic().set(["orders", id], order);
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
  async wait(ref: string, options: ResultOptions = {}): Promise<TaskRecord> {
    const wait = options.wait ?? 0;
    if (!(wait >= 0)) throw new RangeError(`wait must be milliseconds >= 0: received ${wait}`);
    const id = await resolveTaskRef(this.store, ref);
    if (id === null) throw new NoSuchTaskError(ref, this.name);
    const first = await getTask(this.store, id);
    if (first === null) throw new NoSuchTaskError(ref, this.name);
    // An abort that came while we read must count: a listener added now would never fire.
    if (first.finished || wait === 0 || options.signal?.aborted) return first;
    const finished = await new Promise<TaskRecord | null>((resolve) => {
      const done = (record: TaskRecord | null) => {
        cancelTimer();
        options.signal?.removeEventListener("abort", onAbort);
        this.#removeWaiter(id, onRecord);
        resolve(record);
      };
      const onRecord = (record: TaskRecord) => done(record);
      const onAbort = () => done(null);
      const cancelTimer = setLongTimeout(() => done(null), wait);
      options.signal?.addEventListener("abort", onAbort, { once: true });
      this.#addWaiter(id, onRecord);
    });
    return finished === null
      ? (await getTask(this.store, id)) ?? first
      : await getTask(this.store, id) ?? finished;
  }

  #addWaiter(id: string, fn: (record: TaskRecord) => void): void {
    let set = this.#waiters.get(id);
    if (!set) this.#waiters.set(id, set = new Set());
    set.add(fn);
    this.#unsubscribe ??= this.store.changes.subscribe(() => void this.#checkWaiters());
    void this.#checkWaiters(); // it may have finished between the first read and now
  }

  #removeWaiter(id: string, fn: (record: TaskRecord) => void): void {
    const set = this.#waiters.get(id);
    set?.delete(fn);
    if (set?.size === 0) this.#waiters.delete(id);
    if (this.#waiters.size === 0 && this.#unsubscribe) {
      this.#unsubscribe();
      this.#unsubscribe = null;
    }
  }

  async #checkWaiters(): Promise<void> {
    if (this.#checking) {
      this.#recheck = true;
      return;
    }
    this.#checking = true;
    try {
      do {
        this.#recheck = false;
        const ids = [...this.#waiters.keys()];
        for (let i = 0; i < ids.length; i += KV_MAX_GET_MANY) {
          const part = ids.slice(i, i + KV_MAX_GET_MANY);
          const entries = await this.store.kv.getMany(part.map((id) => this.store.keys.task(id)));
          for (const e of entries) {
            if (e.versionstamp === null) continue;
            let record: TaskRecord;
            try {
              record = TaskRecord.decode(e.key, e.value);
            } catch {
              continue;
            }
            if (!record.finished) continue;
            for (const fn of [...this.#waiters.get(record.id) ?? []]) fn(record);
          }
        }
      } while (this.#recheck && this.#waiters.size > 0 && !this.store.handle.closed);
    } catch (error) {
      if (!this.store.handle.closed) console.error("kvq: checking awaited tasks failed:", error);
    } finally {
      this.#checking = false;
    }
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
  async retry(ref: string): Promise<TaskRecord> {
    for (let i = 0; i < 10; i++) {
      const id = await resolveTaskRef(this.store, ref);
      const found = id === null ? null : await getRecord(this.store, id);
      if (found === null) throw new NoSuchTaskError(ref, this.name);
      const { record, versionstamp } = found;
      if (!record.finished) {
        throw new TaskStateError(
          `Task ${record.id} (${record.name}) is ${record.state}; only finished tasks can be retried.`,
        );
      }
      const now = this.store.now();
      let queued = record.resubmit(now);
      // With a secret, a retry signs the task runnable again (its final record carries only the
      // finished mark). Without one, a cluster with a secret refuses the retried task.
      const secrets = this.store.secrets;
      if (secrets !== null) {
        const argsJson = record.args !== null
          ? JSON.stringify(record.args)
          : new TextDecoder().decode(
            await readChunks(this.store, record.id, "args", record.argsChunks),
          );
        queued = queued.with({ sig: sign(secrets, queued, argsJson) });
      }
      const k = this.store.keys;
      const atomic = this.store.kv.atomic().check({ key: k.task(record.id), versionstamp });
      // Drop the finished index entries (and the per func/group counters), then queue it.
      addFinishedIndexRemoval(atomic, this.store, record);
      atomic.set(k.task(record.id), queued.encode())
        .set(k.ready(queued.priority, queued.id), new Uint8Array())
        .sum(k.signal, 1n);
      if (record.cached !== null) {
        // A cached record's look-ups were set to expire: keep them again.
        atomic.set(k.name(record.name, record.id), new Uint8Array());
        if (record.group !== null) atomic.set(k.group(record.group, record.id), new Uint8Array());
      }
      if (record.unique !== null) {
        // It holds its unique key again while it waits, if no other task took it meanwhile.
        const held = await this.store.kv.get(k.unique(record.unique));
        if (held.versionstamp !== null) {
          const holder = new TextDecoder().decode(held.value as Uint8Array);
          const other = await getTask(this.store, holder).catch(() => null);
          if (other !== null && !other.finished) {
            throw new UniqueTaskError(record.unique, holder, other.state);
          }
        }
        atomic.check({ key: k.unique(record.unique), versionstamp: held.versionstamp });
        atomic.set(k.unique(record.unique), new TextEncoder().encode(record.id));
      }
      const counts = new CountDeltas().move(null, "queued");
      if (record.cached === null) counts.move(record.state, null);
      addStateCounts(atomic, this.store, counts);
      if ((await commitAtomic(atomic)).ok) {
        this.notify();
        return queued;
      }
    }
    throw new Error(`Task ${ref} kept changing while being retried; try again.`);
  }

  /**
   * Deletes a finished or waiting task.
   *
   * @throws {NoSuchTaskError} or {TaskStateError} (running: cancel it first).
   */
  async delete(ref: string): Promise<void> {
    for (let i = 0; i < 10; i++) {
      const id = await resolveTaskRef(this.store, ref);
      let found;
      try {
        found = id === null ? null : await getRecord(this.store, id);
      } catch (error) {
        // A record that can't be read is deleted with what can be found without reading it.
        if (!(error instanceof CorruptRecordError) || id === null) throw error;
        if (await deleteDamaged(this.store, id)) return;
        continue;
      }
      if (found === null) throw new NoSuchTaskError(ref, this.name);
      if (await deleteRecord(this.store, found.record, found.versionstamp)) return;
    }
    throw new Error(`Task ${ref} kept changing while being deleted; try again.`);
  }

  /** Every task of a group. */
  async fetchGroup(group: string): Promise<TaskRecord[]> {
    return (await groupRecords(this.store, group)).map((g) => g.record);
  }

  /**
   * How many of a group's tasks finished: successes only, or with `failures` also failed ones.
   */
  async countGroup(group: string, options: { failures?: boolean } = {}): Promise<number> {
    const records = await this.fetchGroup(group);
    return records.filter((r) => r.state === "succeeded" || (options.failures && r.finished))
      .length;
  }

  /**
   * The results of a group's succeeded tasks, in enqueue order. With `count`, waits up to
   * `wait` ms until that many have finished (with `failures`, failed ones count too).
   */
  async resultGroup(
    group: string,
    options: { failures?: boolean; wait?: number; count?: number; signal?: AbortSignal } = {},
  ): Promise<JsonValue[]> {
    const read = async () => {
      const records = await this.fetchGroup(group);
      const finished = records.filter((r) =>
        r.state === "succeeded" || (options.failures && r.finished)
      );
      return { records, finished };
    };
    let { finished } = await read();
    const want = options.count ?? 0;
    if (want > 0 && finished.length < want && (options.wait ?? 0) > 0) {
      await this.#waitFor(async () => {
        finished = (await read()).finished;
        return finished.length >= want;
      }, { wait: options.wait ?? 0, ...(options.signal ? { signal: options.signal } : {}) });
    }
    const out: JsonValue[] = [];
    for (const r of finished) {
      const full = r.resultChunks > 0 ? await getTask(this.store, r.id) : r;
      out.push(full?.state === "succeeded" ? full.result ?? null : null);
    }
    return out;
  }

  /**
   * Deletes a group's index; with `tasks`, its tasks too (running ones are left alone and
   * counted in `skipped`).
   */
  async deleteGroup(
    group: string,
    options: { tasks?: boolean } = {},
  ): Promise<{ deleted: number; skipped: number }> {
    let deleted = 0;
    let skipped = 0;
    for (const { record, versionstamp } of await groupRecords(this.store, group)) {
      if (options.tasks) {
        if (record.state === "running") {
          skipped++;
          continue;
        }
        if (await deleteRecord(this.store, record, versionstamp)) deleted++;
        else skipped++;
      } else {
        await this.store.kv.delete(this.store.keys.group(group, record.id));
        deleted++;
      }
    }
    return { deleted, skipped };
  }

  /** Closes the KV handle if this queue opened it. */
  close(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    if (this.#owned) this.store.handle.close();
  }

  /** Same as {@linkcode close}. */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

function enqueued(record: TaskRecord, existing: Set<string>): Enqueued {
  return { id: record.id, name: record.name, record, existing: existing.has(record.id) };
}

function toSpec(first: unknown, rest: unknown[]): EnqueueSpec {
  if (typeof first === "function") return { func: first.name, args: rest };
  if (typeof first === "string") return { func: first, args: rest };
  if (typeof first === "object" && first !== null && "func" in first) {
    const { func, args, ...options } = first as EnqueueCall;
    return {
      func: typeof func === "function" ? func.name : func,
      // Left out means no arguments; anything else must be an array (null is refused).
      args: args === undefined ? [] : args,
      options,
    };
  }
  throw new TypeError(
    `enqueue() takes a task function, its name, or { func, args, ...options }: received ${typeof first}`,
  );
}
