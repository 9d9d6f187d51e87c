/**
 * Delete many: finished tasks with all their entries, each checked against the record that was
 * read, in as few commits as KV's limits allow (see `budget.ts`). Retention and the dashboard's
 * purge both use it, so both keep the counters the same way.
 *
 * @module
 */
import type { TaskRecord } from "../task/record.ts";
import { CommitBudget, measure } from "./budget.ts";
import { deleteChunks } from "./chunks.ts";
import { commitAtomic } from "./commit.ts";
import { addStateCounts, CountDeltas } from "./counters.ts";
import { addDeleteMutations } from "./delete.ts";
import { uncountDeleted } from "./_entries.ts";
import type { Store } from "./store.ts";

/** A record as read, with the versionstamp its delete is checked against. */
export interface ReadRecord {
  record: TaskRecord;
  versionstamp: string;
}

/**
 * Deletes the tasks of `found`. A commit whose check fails (a task changed since it was read)
 * deletes none of its tasks; the caller reads them again if it wants. A `cached` record was
 * never counted in the state counters, so its delete does not uncount it.
 *
 * @returns the records deleted.
 */
export async function deleteRecords(
  store: Store,
  found: readonly ReadRecord[],
): Promise<TaskRecord[]> {
  const deleted: TaskRecord[] = [];
  const budget = new CommitBudget({ maxChecks: store.handle.maxChecks });
  let batch: ReadRecord[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const atomic = store.kv.atomic();
    const counts = new CountDeltas();
    for (const { record, versionstamp } of batch) {
      atomic.check({ key: store.keys.task(record.id), versionstamp });
      addDeleteMutations(atomic, store, record);
      uncountDeleted(counts, record);
    }
    addStateCounts(atomic, store, counts);
    if ((await commitAtomic(atomic)).ok) {
      for (const { record } of batch) {
        deleted.push(record);
        if (record.argsChunks > 0) await deleteChunks(store, record.id, "args");
        if (record.resultChunks > 0) await deleteChunks(store, record.id, "result");
      }
    }
    batch = [];
    budget.reset();
  };
  for (const item of found) {
    const cost = measure((atomic) => {
      atomic.check({ key: store.keys.task(item.record.id), versionstamp: item.versionstamp });
      addDeleteMutations(atomic, store, item.record);
    });
    if (!budget.fits(cost)) await flush();
    budget.take(cost);
    batch.push(item);
  }
  await flush();
  if (deleted.length > 0) store.changes.notifyLocal();
  return deleted;
}
