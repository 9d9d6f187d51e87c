/**
 * Delete: remove a task that is not running, with every index entry and chunk that points at it.
 *
 * @module
 */
import { deleteChunks } from "./chunks.ts";
import { addStateCounts, CountDeltas } from "./counters.ts";
import { NoSuchTaskError, TaskStateError } from "./errors.ts";
import { CorruptRecordError, type TaskRecord } from "../task/record.ts";
import { deleteDamaged } from "./damaged.ts";
import { getRecord, resolveTaskRef } from "./get.ts";
import type { Store } from "./store.ts";
import { commitAtomic } from "./commit.ts";
import { planFinish } from "./finish.ts";
import { forgetDone } from "./done_index.ts";
import { deleteWaitingEntry, uncountDeleted } from "./_entries.ts";

/** Adds the mutations that remove `record` and its index entries. */
export function addDeleteMutations(
  atomic: Deno.AtomicOperation,
  store: Store,
  record: TaskRecord,
): void {
  const k = store.keys;
  atomic.delete(k.task(record.id));
  atomic.delete(k.name(record.name, record.id));
  atomic.delete(k.nameTail(record.id));
  atomic.delete(k.nameTailOne(record.id));
  atomic.delete(k.func(record.func, record.id));
  atomic.delete(k.progress(record.id));
  atomic.delete(k.cancel(record.id));
  if (record.group !== null) atomic.delete(k.group(record.group, record.id));
  if (record.expiresAt !== null) atomic.delete(k.expiring(record.expiresAt, record.id));
  if (record.finished) addFinishedIndexRemoval(atomic, store, record);
  else deleteWaitingEntry(atomic, k, record);
  // A waiting task holds its unique key until it ends; deleting it ends it.
  if (record.unique !== null && !record.finished) atomic.delete(k.unique(record.unique));
}

/**
 * Removes a finished record's `done` entry and takes it off the per func/group counters
 * (for a delete, a retry, or retention).
 */
export function addFinishedIndexRemoval(
  atomic: Deno.AtomicOperation,
  store: Store,
  record: TaskRecord,
): void {
  if (record.stoppedAt === null) return;
  const k = store.keys;
  atomic.delete(k.done(record.state, record.stoppedAt, record.id));
  if (record.cached === null && record.finished) {
    const minusOne = (1n << 64n) - 1n;
    atomic.sum(k.stat("done_by", "func", record.func, record.state), minusOne);
    if (record.group !== null) {
      atomic.sum(k.stat("done_by", "group", record.group, record.state), minusOne);
    }
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
  const counts = new CountDeltas();
  uncountDeleted(counts, record);
  if (!record.finished && (record.chain !== null || record.iter !== null)) {
    // A waiting chain step or iter member that is deleted ends like a cancelled one, so its
    // chain stops and its iter can finish.
    const ended = record.cancel(store.now(), {
      name: "TaskCancelledError",
      message: "Deleted before it started",
    });
    const plan = await planFinish(store, ended, null, { keepUnique: true });
    for (const c of plan.checks) atomic.check(c);
    plan.apply(atomic, counts);
  }
  addStateCounts(atomic, store, counts);
  if (!(await commitAtomic(atomic)).ok) return false;
  await forgetDone(store, record);
  if (record.argsChunks > 0) await deleteChunks(store, record.id, "args");
  if (record.resultChunks > 0) await deleteChunks(store, record.id, "result");
  store.changes.notifyLocal();
  return true;
}

/**
 * Deletes a finished or waiting task by id or human name; a record that can't be decoded is
 * deleted with the entries found without reading it.
 *
 * @throws {NoSuchTaskError} or {TaskStateError} (running: cancel it first).
 */
export async function deleteTask(store: Store, ref: string): Promise<void> {
  for (let i = 0; i < 10; i++) {
    const id = await resolveTaskRef(store, ref);
    let found;
    try {
      found = id === null ? null : await getRecord(store, id);
    } catch (error) {
      if (!(error instanceof CorruptRecordError) || id === null) throw error;
      if (await deleteDamaged(store, id)) return;
      continue;
    }
    if (found === null) throw new NoSuchTaskError(ref, store.queue);
    if (await deleteRecord(store, found.record, found.versionstamp)) return;
  }
  throw new Error(`Task ${ref} kept changing while being deleted; try again.`);
}
