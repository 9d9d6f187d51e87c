/**
 * What every schedule operation shares: reading a record with its versionstamp, and the
 * mutations that store a record together with its `schedule_due` entry and doorbell.
 *
 * @module
 */
import { doorbell } from "../store/_entries.ts";
import type { EnqueueSpec } from "../store/spec.ts";
import { KV_MAX_QUEUE_DELAY_MS } from "../store/limits.ts";
import type { Store } from "../store/store.ts";
import { NoSuchScheduleError } from "./errors.ts";
import { ScheduleRecord, validateScheduleName } from "./record.ts";
import { commitAtomic } from "../store/commit.ts";

/** How often a changing schedule is re-read and its commit retried before giving up. */
export const SCHEDULE_COMMIT_ATTEMPTS = 10;

/** A record and the versionstamp it was read at. */
export interface ReadSchedule {
  record: ScheduleRecord;
  versionstamp: string;
}

/** Reads a schedule with strong consistency; null when absent. */
export async function readSchedule(store: Store, name: string): Promise<ReadSchedule | null> {
  const entry = await store.kv.get(store.keys.schedule(name), { consistency: "strong" });
  if (entry.versionstamp === null) return null;
  return {
    record: ScheduleRecord.decode(entry.key, entry.value),
    versionstamp: entry.versionstamp,
  };
}

/**
 * The native queue delay of the doorbell for a run at `nextRun`. A wait longer than a native
 * delay allows is chained in links of {@linkcode KV_MAX_QUEUE_DELAY_MS} that end exactly at
 * `nextRun`: the first link fires at `nextRun - k × 30 days`, so a doorbell that arrives on a
 * link's time can be told from any other and re-arms the next link (see `fireDueSchedules`).
 */
export function doorbellDelay(nextRun: number, now: number): number {
  const wait = Math.max(0, nextRun - now);
  if (wait <= KV_MAX_QUEUE_DELAY_MS) return wait;
  return wait % KV_MAX_QUEUE_DELAY_MS || KV_MAX_QUEUE_DELAY_MS;
}

/**
 * Adds to `atomic` the mutations that replace `before` (null: none stored) with `after` (null:
 * delete): the record, its due entry moved, a doorbell for the next run where there is a native
 * queue, and the signal bump that wakes clusters watching remote KV (left out with
 * `bumpSignal: false` when the same commit enqueues tasks, which bump it already). The caller
 * adds the checks.
 */
export function addScheduleMutations(
  store: Store,
  atomic: Deno.AtomicOperation,
  before: ScheduleRecord | null,
  after: ScheduleRecord | null,
  now: number,
  bumpSignal = true,
): void {
  const k = store.keys;
  const name = (after ?? before)?.name;
  if (name === undefined) return;
  const beforeDue = before?.active ? before.nextRun : null;
  const afterDue = after?.active ? after.nextRun : null;
  if (after === null) atomic.delete(k.schedule(name));
  else atomic.set(k.schedule(name), after.encode());
  if (beforeDue !== null && beforeDue !== afterDue) atomic.delete(k.scheduleDue(beforeDue, name));
  if (afterDue !== null) {
    if (afterDue !== beforeDue) atomic.set(k.scheduleDue(afterDue, name), new Uint8Array());
    if (store.handle.nativeQueue) {
      atomic.enqueue(doorbell(store.queue), { delay: doorbellDelay(afterDue, now) });
    }
  }
  if (bumpSignal) store.addSignal(atomic);
}

/**
 * Reads schedule `name`, applies `change` and commits the result with a check of the
 * versionstamp it read, retrying when another writer got there first. `change` returns the new
 * record, or null to delete it.
 *
 * @throws {NoSuchScheduleError} when there is no such schedule.
 */
export async function updateSchedule(
  store: Store,
  name: string,
  change: (record: ScheduleRecord, now: number) => ScheduleRecord | null,
): Promise<ScheduleRecord | null> {
  validateScheduleName(name);
  for (let attempt = 0; attempt < SCHEDULE_COMMIT_ATTEMPTS; attempt++) {
    const found = await readSchedule(store, name);
    if (found === null) throw new NoSuchScheduleError(name, store.queue);
    const now = store.now();
    const after = change(found.record, now);
    const atomic = store.kv.atomic()
      .check({ key: store.keys.schedule(name), versionstamp: found.versionstamp });
    addScheduleMutations(store, atomic, found.record, after, now);
    if ((await commitAtomic(atomic)).ok) {
      store.changes.notifyLocal();
      return after;
    }
  }
  throw new Error(`Schedule ${JSON.stringify(name)} kept changing while being updated; try again.`);
}

/** The enqueue call a schedule makes for a slot intended at `intended` (epoch ms). */
export function taskSpecFor(record: ScheduleRecord, intended: number): EnqueueSpec {
  return {
    func: record.func,
    args: record.intendedDateArg ? [...record.args, new Date(intended).toISOString()] : record.args,
    options: {
      priority: record.priority,
      ...(record.timeout !== null ? { timeout: record.timeout } : {}),
      ...(record.maxAttempts !== null ? { maxAttempts: record.maxAttempts } : {}),
    },
  };
}
