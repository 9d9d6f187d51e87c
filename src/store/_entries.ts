/**
 * Which entries a task owns in each state, for the transitions that more than one op makes. A
 * waiting task owns its record and, by state, its `ready` entry (queued) or its `delayed` entry
 * (scheduled); a finished one its `done` entries (see `finish.ts`), which a `cached` one keeps
 * only until its expiry, uncounted.
 *
 * Each transition reads: checks, remove the old state's entries, add the new state's.
 *
 * @module
 */
import type { ErrorInfo, TaskRecord } from "../task/record.ts";
import { sealFinished } from "./_seal.ts";
import { addStateCounts, CountDeltas } from "./counters.ts";
import { addFinishedRecord, planFinish } from "./finish.ts";
import type { QueueKeys } from "./keys.ts";
import type { Store } from "./store.ts";

/** Deletes the entry that makes a waiting task claimable or due: `ready` or `delayed`. */
export function deleteWaitingEntry(
  atomic: Deno.AtomicOperation,
  keys: QueueKeys,
  record: TaskRecord,
): void {
  if (record.state === "queued") atomic.delete(keys.ready(record.priority, record.id));
  else if (record.state === "scheduled") atomic.delete(keys.delayed(record.runAt, record.id));
}

/**
 * Takes a record that is deleted off the state counters: every state counts it, except a
 * finished `cached` one, which was never counted.
 */
export function uncountDeleted(counts: CountDeltas, record: TaskRecord): void {
  if (!(record.cached !== null && record.finished)) counts.move(record.state, null);
}

/**
 * Ends a waiting (queued or scheduled) task as `cancelled` in `atomic`: the waiting entry out,
 * the finished record and its entries in (with its cache expiry, uncounted, when `cached`), the
 * state counters, and what finishing does (a chain's next step, an iter's result, hooks) with
 * its checks. The caller checks the record itself.
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
  const counts = new CountDeltas().move(record.state, null);
  const plan = await planFinish(store, cancelled, null, options);
  for (const c of plan.checks) atomic.check(c);
  addFinishedRecord(atomic, store, cancelled, counts);
  plan.apply(atomic, counts);
  addStateCounts(atomic, store, counts);
  return cancelled;
}
