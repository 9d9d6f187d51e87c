/**
 * Cancel: a scheduled or queued task becomes `cancelled` in one checked commit and never starts.
 * A running task gets a cancel request under its own key; the cluster that runs it aborts it.
 *
 * @module
 */
import { addStateCounts, CountDeltas } from "./counters.ts";
import { NoSuchTaskError, TaskStateError } from "./errors.ts";
import { getRecord, resolveTaskRef } from "./get.ts";
import type { Store } from "./store.ts";
import { commitAtomic } from "./commit.ts";
import { addFinishedRecord, planFinish } from "./finish.ts";

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
      case "queued": {
        const now = store.now();
        const cancelled = record.cancel(now, {
          name: "TaskCancelledError",
          message: "Cancelled before it started",
        });
        atomic.delete(
          record.state === "queued"
            ? k.ready(record.priority, record.id)
            : k.delayed(record.runAt, record.id),
        );
        const counts = new CountDeltas().move(record.state, null);
        const plan = await planFinish(store, cancelled, null);
        for (const c of plan.checks) atomic.check(c);
        addFinishedRecord(atomic, store, cancelled, counts);
        plan.apply(atomic, counts);
        addStateCounts(atomic, store, counts.deltas);
      }
    }
    if ((await commitAtomic(atomic)).ok) {
      store.changes.notifyLocal();
      return record.state === "running" ? "cancelling" : "cancelled";
    }
  }
  throw new Error(`Task ${ref} kept changing while being cancelled; try again.`);
}

/** The ids of running tasks whose cancel was requested. */
export async function cancelRequests(store: Store): Promise<Set<string>> {
  const out = new Set<string>();
  for await (const e of store.kv.list({ prefix: store.keys.cancels })) {
    out.add(e.key[e.key.length - 1] as string);
  }
  return out;
}
