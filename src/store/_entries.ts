/**
 * Which entries a task owns in each state, for every op that moves a task between states. A
 * waiting task owns its record, its look-ups (`name` and `func`, or until a cluster writes them
 * its share of the name tail, see `names.ts`; `group`) and, by state, its `ready` entry
 * (queued) or its `delayed` entry (scheduled); a finished one its `done` entries (see
 * `finish.ts`), which a `cached` one keeps only until its expiry, uncounted.
 *
 * Each transition reads: checks, remove the old state's entries, add the new state's. Adding a
 * delayed task rings the queue's doorbell (a native KV message), so clusters wake at its time.
 *
 * A `ready` entry holds a copy of its record when the record is small (see
 * {@linkcode addReadyEntry}), so a claim reads its tasks with the list alone.
 *
 * @module
 */
import type { TaskRecord } from "../task/record.ts";
import { addStateCounts, CountDeltas } from "./counters.ts";
import type { QueueKeys } from "./keys.ts";
import { KV_MAX_QUEUE_DELAY_MS } from "./limits.ts";
import type { Store } from "./store.ts";
import { fallbackTurn } from "./turns.ts";
import { addNameTails } from "./names.ts";

const encoder = new TextEncoder();
const EMPTY = new Uint8Array();

/**
 * The largest record, in bytes, copied into its `ready` entry. A copy costs KV a few µs a KiB at
 * every write of the entry; reading the record instead costs a share of a `getMany` (about
 * 45 µs a record on a 2-core VM), so larger records are read.
 */
export const READY_COPY_BYTES = 4096;

/**
 * Adds a queued task's `ready` entry, written in the same commit as its record: it holds the
 * record's bytes (or nothing, for a record over {@linkcode READY_COPY_BYTES}). Both keys then
 * share one versionstamp, so a claim that checks the record against the entry's versionstamp
 * knows the copy is current without reading the record (see `claim.ts`). Returns the bytes the
 * entry adds to the commit.
 */
export function addReadyEntry(
  atomic: Deno.AtomicOperation,
  keys: QueueKeys,
  record: TaskRecord,
): number {
  const bytes = record.encode();
  const copy = bytes.length <= READY_COPY_BYTES ? bytes : EMPTY;
  atomic.set(readyKey(keys, record), copy);
  return copy.length;
}

/**
 * The key of a queued task's `ready` entry: by priority and id, or for a task with a partition
 * by priority, turn and id (see `turns.ts`).
 */
export function readyKey(keys: QueueKeys, record: TaskRecord): Deno.KvKey {
  return record.partition === null
    ? keys.ready(record.priority, record.id)
    : keys.readyTurn(record.priority, record.turn ?? 0, record.id);
}

/** The doorbell payload: short ASCII, as the Bun V8 codec requires. */
export function doorbell(queue: string): string {
  return `kvq:${queue}`;
}

/**
 * Adds a waiting task's entries: its record, its `ready` or `delayed` entry, its look-ups, and
 * its start-by deadline (`expiring`) until it first starts.
 * Returns the time of its delayed entry, or Infinity when it is ready.
 */
export function addWaitingEntries(
  atomic: Deno.AtomicOperation,
  keys: QueueKeys,
  record: TaskRecord,
  options: { batched?: boolean } = {},
): number {
  atomic.set(keys.task(record.id), record.encode());
  let delayed = Infinity;
  if (record.state === "scheduled") {
    atomic.set(keys.delayed(record.runAt, record.id), EMPTY);
    delayed = record.runAt;
  } else addReadyEntry(atomic, keys, record);
  // The name look-up comes later, off the enqueue's path (see `keys.nameTail`). An enqueue
  // writes one tail entry for its tasks instead, which stands for their func look-ups too
  // (`batched`, see `addNameTails`).
  if (options.batched !== true) {
    atomic.set(keys.nameTail(record.id), encoder.encode(record.name));
    atomic.set(keys.func(record.func, record.id), EMPTY);
  }
  if (record.group !== null) atomic.set(keys.group(record.group, record.id), EMPTY);
  if (record.expiresAt !== null && record.attempt === 0) {
    atomic.set(keys.expiring(record.expiresAt, record.id), EMPTY);
  }
  return delayed;
}

/**
 * Deletes the entry that makes a waiting task claimable or due: `ready` or `delayed`. Taking a
 * queued task away sums the claim sequence, which claims that check no record check (see
 * `keys.claimSeq`).
 */
export function deleteWaitingEntry(
  atomic: Deno.AtomicOperation,
  keys: QueueKeys,
  record: TaskRecord,
): void {
  if (record.state === "queued") {
    atomic.delete(readyKey(keys, record));
    atomic.sum(keys.claimSeq, 1n);
  } else if (record.state === "scheduled") atomic.delete(keys.delayed(record.runAt, record.id));
}

/**
 * Takes a record that is deleted off the state counters: every state counts it, except a
 * finished `cached` one, which was never counted.
 */
export function uncountDeleted(counts: CountDeltas, record: TaskRecord): void {
  if (!(record.cached !== null && record.finished)) {
    counts.move(record.state, null, 1, record.partition);
  }
}

/** Atomic operations whose unique key check was already added (see {@linkcode skipUniqueCheck}). */
const uniqueChecked = new WeakSet<Deno.AtomicOperation>();

/**
 * Says that `atomic` already checks the unique keys of the tasks it enqueues (against the holder
 * it read), so {@linkcode addEnqueueMutations} adds no "key is free" check.
 */
export function skipUniqueCheck(atomic: Deno.AtomicOperation): void {
  uniqueChecked.add(atomic);
}

/**
 * Adds the mutations that enqueue `records` to an app's own atomic operation, so the tasks
 * commit together with the app's data or not at all: their entries, unique keys, the counters,
 * the signal, and a doorbell for the earliest delayed one. The records must come from
 * `prepareRecords`.
 */
export function addEnqueueMutations(
  store: Store,
  atomic: Deno.AtomicOperation,
  records: readonly TaskRecord[],
  now: number,
): void {
  const counts = new CountDeltas();
  let earliestDelayed = Infinity;
  // The tasks share name-tail entries: one mutation per 400 tasks instead of two each (a name
  // tail and a func look-up), one instead of two for a single task.
  for (const given of records) {
    // Nothing may be read here: a task with a partition takes the last clock seen.
    const record = fallbackTurn(store, given);
    earliestDelayed = Math.min(
      earliestDelayed,
      addWaitingEntries(atomic, store.keys, record, { batched: true }),
    );
    if (record.unique !== null) {
      // Transactional enqueue can't read the holder: the key must be free, or the commit fails.
      if (!uniqueChecked.has(atomic)) {
        atomic.check({ key: store.keys.unique(record.unique), versionstamp: null });
      }
      atomic.set(store.keys.unique(record.unique), encoder.encode(record.id));
    }
    counts.move(null, record.state, 1, record.partition);
  }
  if (records.length > 0) addNameTails(atomic, store.keys, records);
  addStateCounts(atomic, store, counts);
  store.addSignal(atomic);
  if (Number.isFinite(earliestDelayed) && store.handle.nativeQueue) {
    atomic.enqueue(doorbell(store.queue), {
      delay: Math.min(KV_MAX_QUEUE_DELAY_MS, Math.max(0, earliestDelayed - now)),
    });
  }
}

/**
 * Adds a task created by another task's outcome (a hook, the next chain step) to `atomic`:
 * record, index entry, look-ups. The caller adds the counters (`counts`) and the signal.
 * Returns the time of the task's delayed entry, or Infinity when it is ready.
 */
export function addCreatedTask(
  store: Store,
  atomic: Deno.AtomicOperation,
  record: TaskRecord,
  counts: CountDeltas,
): number {
  const delayed = addWaitingEntries(atomic, store.keys, fallbackTurn(store, record));
  counts.move(null, record.state, 1, record.partition);
  return delayed;
}
