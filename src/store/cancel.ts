/**
 * Cancel: a scheduled or queued task becomes `cancelled` in one checked commit and never starts.
 * A running task gets a cancel request under its own key; the cluster that runs it aborts it.
 *
 * @module
 */
import { NoSuchTaskError, TaskStateError } from "./errors.ts";
import { getRecord, resolveTaskRef } from "./get.ts";
import type { Store } from "./store.ts";
import { commitAtomic } from "./commit.ts";
import { KV_MAX_GET_MANY } from "./limits.ts";
import { type ErrorInfo, TaskRecord } from "../task/record.ts";
import { sealFinished } from "./_seal.ts";
import { addStateCounts, CountDeltas } from "./counters.ts";
import { addFinishedRecord, planFinish } from "./finish.ts";
import { deleteWaitingEntry } from "./_entries.ts";

/** What a cancel did. */
export type CancelResult =
  /** The task was waiting and is now cancelled. */
  | "cancelled"
  /** The task is running; its cluster will stop it and mark it cancelled. */
  | "cancelling";

/**
 * Cancels a task by id or human name.
 *
 * @throws {NoSuchTaskError} when there is no such task.
 * @throws {TaskStateError} when it already finished (the message says how).
 */
export async function cancelTask(store: Store, ref: string): Promise<CancelResult> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const id = await resolveTaskRef(store, ref);
    const found = id === null ? null : await getRecord(store, id);
    if (found === null) throw new NoSuchTaskError(ref, store.queue);
    const { record, versionstamp } = found;
    const k = store.keys;
    const atomic = store.kv.atomic().check({ key: k.task(record.id), versionstamp });
    switch (record.state) {
      case "succeeded":
      case "failed":
      case "cancelled":
        throw new TaskStateError(
          `Task ${record.id} (${record.name}) already ${record.state}; there is nothing to cancel.`,
        );
      case "running":
        atomic.set(
          k.cancel(record.id),
          new TextEncoder().encode(JSON.stringify({ at: store.now() })),
        );
        break;
      case "scheduled":
      case "queued":
        await addCancelWaiting(atomic, store, record, {
          name: "TaskCancelledError",
          message: "Cancelled before it started",
        });
    }
    if ((await commitAtomic(atomic)).ok) {
      store.changes.notifyLocal();
      return record.state === "running" ? "cancelling" : "cancelled";
    }
  }
  throw new Error(`Task ${ref} kept changing while being cancelled; try again.`);
}

/**
 * Deletes the cancel requests among `ids` whose task no longer runs: it ended before its
 * cluster saw the request (a cluster deletes only the requests it acted on). Each delete checks
 * that the record is still as read.
 */
export async function dropStaleCancels(store: Store, ids: readonly string[]): Promise<void> {
  const k = store.keys;
  const stale: { id: string; versionstamp: string | null }[] = [];
  for (let i = 0; i < ids.length; i += KV_MAX_GET_MANY) {
    const part = ids.slice(i, i + KV_MAX_GET_MANY);
    const records = await store.kv.getMany(part.map((id) => k.task(id)), {
      consistency: "strong",
    });
    part.forEach((id, j) => {
      const e = records[j]!;
      if (e.versionstamp === null || !isRunning(e)) {
        stale.push({ id, versionstamp: e.versionstamp });
      }
    });
  }
  for (let i = 0; i < stale.length; i += store.handle.maxChecks) {
    const atomic = store.kv.atomic();
    for (const { id, versionstamp } of stale.slice(i, i + store.handle.maxChecks)) {
      atomic.check({ key: k.task(id), versionstamp }).delete(k.cancel(id));
    }
    await commitAtomic(atomic);
  }
}

function isRunning(entry: Deno.KvEntryMaybe<unknown>): boolean {
  try {
    return TaskRecord.decode(entry.key, entry.value).state === "running";
  } catch {
    return false; // a damaged record runs nowhere
  }
}

/** The ids of running tasks whose cancel was requested. */
export async function cancelRequests(store: Store): Promise<Set<string>> {
  const out = new Set<string>();
  for await (const e of store.kv.list({ prefix: store.keys.cancels })) {
    out.add(e.key[e.key.length - 1] as string);
  }
  return out;
}

/**
 * Ends a waiting (queued or scheduled) task as `cancelled` in `atomic`: the waiting entry out,
 * the finished record and its entries in (with its cache expiry, uncounted, when `cached`), the
 * state counters, and what finishing does (a chain's next step, an iter's result, hooks) with
 * its checks. The caller checks the record itself. Cancel and a unique "replace" enqueue share
 * it.
 *
 * @returns the cancelled record, as written.
 */
export async function addCancelWaiting(
  atomic: Deno.AtomicOperation,
  store: Store,
  record: TaskRecord,
  error: ErrorInfo,
  options: { keepUnique?: boolean } = {},
): Promise<TaskRecord> {
  const cancelled = sealFinished(store, record.cancel(store.now(), error));
  deleteWaitingEntry(atomic, store.keys, record);
  const counts = new CountDeltas().move(record.state, null, 1, record.partition);
  const plan = await planFinish(store, cancelled, null, options);
  for (const c of plan.checks) atomic.check(c);
  addFinishedRecord(atomic, store, cancelled, counts);
  plan.apply(atomic, counts);
  addStateCounts(atomic, store, counts);
  return cancelled;
}
