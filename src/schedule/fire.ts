/**
 * Firing: turns due slots into tasks. A slot fires in one atomic commit that checks the
 * schedule record's versionstamp and its `schedule_due` entry's, creates the slot's task (with
 * its counters, signal bump and doorbell) and moves `nextRun` on. Whatever the number of
 * clusters calling {@linkcode fireDueSchedules} at once, each slot fires once: every other
 * commit fails its checks and is skipped.
 *
 * One firing, for a schedule whose due entry is at or before now:
 *
 * ```
 * slots = dueSlots(spec, anchor, nextRun, now, catchUp)   (capped by repeats and commit limits)
 * noOverlap and the last task still scheduled/queued/running → no task, slots skipped
 * noOverlap otherwise → one task, for the latest slot
 * else → one task per slot, oldest first
 * repeats -= tasks created (when > 0); 0 left or no next slot → nextRun null, no due entry
 * ```
 *
 * @module
 */
import { addEnqueueMutations, doorbell } from "../store/_entries.ts";
import { prepareRecords } from "../store/spec.ts";
import { getRecord } from "../store/get.ts";
import {
  INLINE_PAYLOAD_BYTES,
  KV_MAX_COMMIT_BYTES,
  KV_MAX_MUTATIONS,
  KV_MAX_QUEUE_DELAY_MS,
} from "../store/limits.ts";
import type { Store } from "../store/store.ts";
import type { TaskRecord } from "../task/record.ts";
import { dueSlots } from "./next_run.ts";
import { ScheduleRecord } from "./record.ts";
import { addScheduleMutations, doorbellDelay, taskSpecFor } from "./_write.ts";
import { commitAtomic } from "../store/commit.ts";
import { SignatureError, verifySchedule } from "../task/signature.ts";

/** The most slots one commit fires, so a long catch-up is spread over modest commits. */
export const FIRE_BATCH_SLOTS = 100;

/**
 * The most commits one schedule gets in one {@linkcode fireDueSchedules} call; the rest of a
 * long catch-up stays due, and the next call (at once: its due time has passed) continues it.
 */
export const FIRE_COMMITS_PER_SCHEDULE = 10;

/**
 * How late a doorbell may arrive on a link of a chained long wait and still be taken for that
 * link (see {@linkcode FireDueOptions.rearm}). Native doorbells arrive late, never early.
 */
export const DOORBELL_CHAIN_TOLERANCE_MS = 10 * 60 * 1000;

/** Checks one firing commit holds: the schedule record and its due entry. */
const FIRE_CHECKS = 2;
/** Mutations one task costs: record, ready entry, name look-up. */
const MUTATIONS_PER_TASK = 3;
/** Mutations of the rest of a firing commit (schedule record, due entry moved, counters, …). */
const FIRE_FIXED_MUTATIONS = 20;
/** An upper bound for a task record and its keys besides its arguments. */
const TASK_OVERHEAD_BYTES = 2048;

/** Options for {@linkcode fireDueSchedules}. */
export interface FireDueOptions {
  /**
   * The most due schedules handled in one call; any others stay due for the next call.
   * @default 100
   */
  limit?: number;
  /**
   * Set when a native doorbell woke the caller. When nothing is due and the earliest schedule is
   * further away than a native delay allows (30 days), a doorbell that arrives on a link of its
   * chain enqueues the next link; other doorbells do not, so chains never multiply.
   * @default false
   */
  rearm?: boolean;
  /**
   * Called with the error of each stored schedule that can't be decoded. Its due entry is
   * dropped, so it does not stay due forever.
   * @default none
   */
  onCorrupt?: (error: Error) => void;
  /**
   * Called with the {@linkcode SignatureError} of each due schedule the store's secret does not
   * verify (unsigned or changed in KV). It does not fire: its due entry is dropped, and the
   * record stays for an operator to add again with the secret.
   * @default none
   */
  onRefused?: (error: Error) => void;
}

/**
 * Fires every schedule that is due at `store.now()`, and resolves with the number of tasks
 * created. When nothing is due it costs one `list` of the due index that returns nothing.
 *
 * A commit that fails its checks means another caller (another cluster) fired or changed the
 * schedule first: it is skipped, never retried blindly.
 *
 * @example
 * ```ts
 * const created = await fireDueSchedules(store);
 * const next = await nextScheduleAt(store); // arm a timer for it
 * ```
 */
export async function fireDueSchedules(
  store: Store,
  options: FireDueOptions = {},
): Promise<number> {
  const limit = options.limit ?? 100;
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new RangeError(`Option "limit" must be a whole number, at least 1: received ${limit}`);
  }
  if (store.handle.maxChecks < FIRE_CHECKS) {
    throw new RangeError(
      `Firing a schedule needs ${FIRE_CHECKS} checks per commit; this KV allows ${store.handle.maxChecks}`,
    );
  }
  const now = store.now();
  const prefix = store.keys.scheduleDuePrefix;
  const due = store.kv.list({ prefix, end: [...prefix, now + 1] }, {
    limit,
    consistency: "strong",
  });
  let created = 0;
  let seen = 0;
  for await (const entry of due) {
    seen++;
    const counter = { created: 0 };
    try {
      await fireOne(store, entry as Deno.KvEntry<unknown>, now, options, counter);
    } catch (error) {
      // Another process holds the KV file's write lock: it is writing, maybe this very slot.
      // Nothing of this commit applied, so the slot is still due if it didn't fire: the next
      // call (the due time has passed, so it comes at once) looks again.
      if (!isBusyError(error)) throw error;
    }
    created += counter.created;
  }
  if (seen === 0 && options.rearm) await rearmChain(store, now);
  return created;
}

/**
 * The earliest `nextRun` of an active schedule (epoch ms), or null when none is due ever: the
 * time to arm a timer for. It may be in the past: then call {@linkcode fireDueSchedules} now.
 */
export async function nextScheduleAt(store: Store): Promise<number | null> {
  const entries = store.kv.list({ prefix: store.keys.scheduleDuePrefix }, {
    limit: 1,
    consistency: "strong",
  });
  for await (const entry of entries) return entry.key[entry.key.length - 2] as number;
  return null;
}

async function fireOne(
  store: Store,
  entry: Deno.KvEntry<unknown>,
  now: number,
  options: FireDueOptions,
  counter: { created: number },
): Promise<void> {
  const k = store.keys;
  const name = entry.key[entry.key.length - 1];
  const dueAt = entry.key[entry.key.length - 2];
  let dueKey = entry.key;
  let dueStamp = entry.versionstamp;
  if (typeof name !== "string" || typeof dueAt !== "number") {
    await commitAtomic(
      store.kv.atomic().check({ key: dueKey, versionstamp: dueStamp }).delete(dueKey),
    );
    return;
  }

  const stored = await store.kv.get(k.schedule(name), { consistency: "strong" });
  let record: ScheduleRecord | null = null;
  if (stored.versionstamp !== null) {
    try {
      record = ScheduleRecord.decode(stored.key, stored.value);
    } catch (error) {
      options.onCorrupt?.(error as Error);
    }
  }
  if (record === null || !record.active || record.nextRun !== dueAt) {
    // A stale entry: its schedule is gone, corrupt, paused or has moved on. Drop it, unless
    // someone changed it meanwhile.
    await commitAtomic(
      store.kv.atomic().check({ key: dueKey, versionstamp: dueStamp }).delete(dueKey),
    );
    return;
  }

  if (store.secrets !== null) {
    try {
      verifySchedule(store.secrets, record, record.sig);
    } catch (error) {
      if (!(error instanceof SignatureError)) throw error;
      options.onRefused?.(error);
      await commitAtomic(
        store.kv.atomic()
          .check({ key: k.schedule(name), versionstamp: stored.versionstamp })
          .check({ key: dueKey, versionstamp: dueStamp })
          .delete(dueKey),
      );
      return;
    }
  }

  let stamp = stored.versionstamp!;
  for (let commit = 0; commit < FIRE_COMMITS_PER_SCHEDULE; commit++) {
    const fired = await fireBatch(store, record, now);
    const atomic = store.kv.atomic()
      .check({ key: k.schedule(name), versionstamp: stamp })
      .check({ key: dueKey, versionstamp: dueStamp });
    if (fired.tasks.length > 0) addEnqueueMutations(store, atomic, fired.tasks, now);
    addScheduleMutations(store, atomic, record, fired.after, now, fired.tasks.length === 0);
    const result = await commitAtomic(atomic);
    if (!result.ok) break; // another cluster fired or changed it first
    counter.created += fired.tasks.length;
    store.changes.notifyLocal();
    record = fired.after;
    if (!record.active || record.nextRun! > now) break;
    // A long catch-up continues in another commit; the new entries carry this commit's stamp.
    stamp = result.versionstamp;
    dueKey = k.scheduleDue(record.nextRun!, name);
    dueStamp = result.versionstamp;
  }
}

/**
 * Whether `error` is SQLite's "database is locked": another process held the local KV file's
 * write lock for longer than the busy timeout. The commit did not apply.
 */
function isBusyError(error: unknown): boolean {
  return error instanceof Error && /database is locked|SQLITE_BUSY/i.test(error.message);
}

/** The tasks one commit creates for `record`, and the record after it. */
async function fireBatch(
  store: Store,
  record: ScheduleRecord,
  now: number,
): Promise<{ tasks: TaskRecord[]; after: ScheduleRecord }> {
  const slots = dueSlots(record.spec, {
    anchor: new Date(record.anchor),
    nextRun: new Date(record.nextRun!),
    now: new Date(now),
    catchUp: record.catchUp,
    limit: Math.min(slotsPerCommit(record), record.repeats > 0 ? record.repeats : Infinity),
  });
  let fire = slots.fire.map((d) => d.getTime());
  if (record.noOverlap && fire.length > 0) {
    // Tasks of one firing would overlap one another: only the latest slot gets one.
    fire = (await lastTaskActive(store, record)) ? [] : [fire[fire.length - 1]!];
  }
  const tasks = prepareRecords(store, fire.map((slot) => taskSpecFor(record, slot)));
  const repeats = record.repeats > 0 ? record.repeats - tasks.length : record.repeats;
  const last = tasks[tasks.length - 1];
  const after = record.with({
    repeats,
    nextRun: repeats === 0 || slots.next === null ? null : slots.next.getTime(),
    ...(last !== undefined ? { lastTaskId: last.id, lastRunAt: now } : {}),
  });
  return { tasks, after };
}

/** How many slots of `record` fit one commit's mutation and byte limits. */
function slotsPerCommit(record: ScheduleRecord): number {
  const argsBytes = Math.min(INLINE_PAYLOAD_BYTES, JSON.stringify(record.args).length * 3);
  const byBytes = Math.floor(
    (KV_MAX_COMMIT_BYTES - 2 * INLINE_PAYLOAD_BYTES) / (argsBytes + TASK_OVERHEAD_BYTES),
  );
  const byMutations = Math.floor((KV_MAX_MUTATIONS - FIRE_FIXED_MUTATIONS) / MUTATIONS_PER_TASK);
  return Math.max(1, Math.min(FIRE_BATCH_SLOTS, byBytes, byMutations));
}

/** Whether the schedule's last task is still waiting or running. */
async function lastTaskActive(store: Store, record: ScheduleRecord): Promise<boolean> {
  if (record.lastTaskId === null) return false;
  let found: { record: TaskRecord } | null;
  try {
    found = await getRecord(store, record.lastTaskId);
  } catch {
    return false; // a corrupt task record runs nothing
  }
  return found !== null && !found.record.finished;
}

/**
 * Enqueues the next link of the doorbell chain for a wait over 30 days, when this doorbell
 * arrived on a link's time (links end exactly at the earliest `nextRun`, see `doorbellDelay`).
 */
async function rearmChain(store: Store, now: number): Promise<void> {
  if (!store.handle.nativeQueue) return;
  const earliest = await nextScheduleAt(store);
  if (earliest === null) return;
  const wait = earliest - now;
  if (wait <= KV_MAX_QUEUE_DELAY_MS) return;
  const late = (KV_MAX_QUEUE_DELAY_MS - (wait % KV_MAX_QUEUE_DELAY_MS)) % KV_MAX_QUEUE_DELAY_MS;
  if (late > DOORBELL_CHAIN_TOLERANCE_MS) return;
  await commitAtomic(
    store.kv.atomic().enqueue(doorbell(store.queue), { delay: doorbellDelay(earliest, now) }),
  );
}
