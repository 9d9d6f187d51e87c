/**
 * Delete: remove a task that is not running, with every index entry and chunk that points at it.
 *
 * @module
 */
import { deleteChunks } from "./chunks.ts";
import { addStateCounts, CountDeltas } from "./counters.ts";
import { TaskStateError } from "./errors.ts";
import type { TaskRecord } from "../task/record.ts";
import type { Store } from "./store.ts";
import { commitAtomic } from "./commit.ts";

/** Adds the mutations that remove `record` and its index entries. */
export function addDeleteMutations(
  atomic: Deno.AtomicOperation,
  store: Store,
  record: TaskRecord,
): void {
  const k = store.keys;
  atomic.delete(k.task(record.id));
  atomic.delete(k.name(record.name, record.id));
  atomic.delete(k.progress(record.id));
  atomic.delete(k.cancel(record.id));
  if (record.group !== null) atomic.delete(k.group(record.group, record.id));
  if (record.state === "queued") atomic.delete(k.ready(record.priority, record.id));
  else if (record.state === "scheduled") atomic.delete(k.delayed(record.runAt, record.id));
  else if (record.stoppedAt !== null) {
    atomic.delete(k.done(record.state, record.stoppedAt, record.id));
  }
}

/**
 * Deletes a task given its record and versionstamp. Returns false when the record changed
 * meanwhile (read it again and retry).
 *
 * @throws {TaskStateError} for a running task: cancel it first.
 */
export async function deleteRecord(
  store: Store,
  record: TaskRecord,
  versionstamp: string,
): Promise<boolean> {
  if (record.state === "running") {
    throw new TaskStateError(
      `Task ${record.id} (${record.name}) is running; cancel it first ('kvq cancel ${record.id}').`,
    );
  }
  const atomic = store.kv.atomic().check({ key: store.keys.task(record.id), versionstamp });
  addDeleteMutations(atomic, store, record);
  addStateCounts(atomic, store, new CountDeltas().move(record.state, null).deltas);
  if (!(await commitAtomic(atomic)).ok) return false;
  if (record.argsChunks > 0) await deleteChunks(store, record.id, "args");
  if (record.resultChunks > 0) await deleteChunks(store, record.id, "result");
  store.changes.notifyLocal();
  return true;
}
