/**
 * The app-facing API: open a queue, enqueue calls, await results.
 *
 * @module
 */
import { fromErrorInfo } from "../task/errors.ts";
import type { JsonValue } from "../task/json.ts";
import { TaskRecord } from "../task/record.ts";
import { type CancelResult, cancelTask } from "../store/cancel.ts";
import { readStateCounts, type StateCounts } from "../store/counters.ts";
import { deleteRecord } from "../store/delete.ts";
import {
  addEnqueueMutations,
  type EnqueueOptions,
  type EnqueueSpec,
  enqueueTasks,
  prepareRecords,
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

/** A task function, or its registered name. */
// deno-lint-ignore no-explicit-any
export type TaskRef<F extends (...args: any[]) => unknown> = F | string;

/** What enqueue returns: the new task's identity. */
export interface Enqueued {
  /** The task id (UUIDv7). */
  readonly id: string;
  /** Its human name. */
  readonly name: string;
  /** The record as stored. */
  readonly record: TaskRecord;
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
   * Use no native KV queue, as on remote KV.
   * @default false
   */
  noNativeQueue?: boolean;
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
    });
    return new Queue(store, owned);
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
  readonly #waiters = new Map<string, Set<(record: TaskRecord) => void>>();
  #unsubscribe: (() => void) | null = null;
  #checking = false;
  #recheck = false;

  /** Wraps a store; use {@linkcode openQueue}. */
  constructor(store: Store, owned = false) {
    this.store = store;
    this.#owned = owned;
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
    const [record] = await enqueueTasks(this.store, [spec]);
    return { id: record!.id, name: record!.name, record: record! };
  }

  /** Enqueues many calls in few commits. Nothing is stored if any call is invalid. */
  async enqueueMany(calls: readonly EnqueueCall[]): Promise<Enqueued[]> {
    const specs = calls.map((c) => toSpec(c, []));
    const records = await enqueueTasks(this.store, specs);
    return records.map((record) => ({ id: record.id, name: record.name, record }));
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
    return records.map((record) => ({ id: record.id, name: record.name, record }));
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
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
        this.#removeWaiter(id, onRecord);
        resolve(record);
      };
      const onRecord = (record: TaskRecord) => done(record);
      const onAbort = () => done(null);
      const timer = setTimeout(() => done(null), wait);
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
      const queued = record.resubmit(now);
      const k = this.store.keys;
      const atomic = this.store.kv.atomic()
        .check({ key: k.task(record.id), versionstamp })
        .set(k.task(record.id), queued.encode())
        .delete(k.done(record.state, record.stoppedAt!, record.id))
        .set(k.ready(queued.priority, queued.id), new Uint8Array())
        .sum(k.signal, 1n);
      addStateCounts(atomic, this.store, new CountDeltas().move(record.state, "queued").deltas);
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
      const found = id === null ? null : await getRecord(this.store, id);
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
    options: { failures?: boolean; wait?: number; count?: number } = {},
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
      finished = await new Promise((resolve) => {
        let last = finished;
        const stop = () => {
          clearTimeout(timer);
          unsubscribe();
          resolve(last);
        };
        const timer = setTimeout(stop, options.wait);
        const unsubscribe = this.store.changes.subscribe(async () => {
          last = (await read()).finished;
          if (last.length >= want) stop();
        });
      });
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

function toSpec(first: unknown, rest: unknown[]): EnqueueSpec {
  if (typeof first === "function") return { func: first.name, args: rest };
  if (typeof first === "string") return { func: first, args: rest };
  if (typeof first === "object" && first !== null && "func" in first) {
    const { func, args, ...options } = first as EnqueueCall;
    return {
      func: typeof func === "function" ? func.name : func,
      args: args ?? [],
      options,
    };
  }
  throw new TypeError(
    `enqueue() takes a task function, its name, or { func, args, ...options }: received ${typeof first}`,
  );
}
