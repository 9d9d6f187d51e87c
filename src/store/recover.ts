/**
 * Lease recovery and release. A running task's lease names its cluster; when that cluster stops
 * heartbeating, any live cluster turns the attempt into a failed one (retried if attempts
 * remain). On a graceful stop a cluster releases the tasks it could not finish back to `ready`.
 * Every change checks the lease's versionstamp, so a late result and a recovery never both win.
 *
 * @module
 */
import type { ErrorInfo } from "../task/errors.ts";
import type { TaskRecord } from "../task/record.ts";
import { type Claimed, decodeLease, type Lease } from "./claim.ts";
import { addStateCounts, CountDeltas } from "./counters.ts";
import { getRecord } from "./get.ts";
import type { Store } from "./store.ts";
import { commitAtomic } from "./commit.ts";
import { KV_MAX_GET_MANY } from "./limits.ts";
import { addFinishedRecord, planFinish } from "./finish.ts";
import { sealFinished } from "./_seal.ts";

/** A lease as listed. */
export interface LeaseEntry {
  /** The task id. */
  id: string;
  /** Who holds it; null when the value is damaged. */
  lease: Lease | null;
  /** The lease's versionstamp. */
  versionstamp: string;
}

/** Every lease of the queue. */
export async function listLeases(store: Store): Promise<LeaseEntry[]> {
  const out: LeaseEntry[] = [];
  for await (const e of store.kv.list({ prefix: store.keys.leases }, { consistency: "strong" })) {
    out.push({
      id: e.key[e.key.length - 1] as string,
      lease: decodeLease(e.value),
      versionstamp: e.versionstamp,
    });
  }
  return out;
}

/**
 * Turns lost leases into failed attempts. `maxAttempts` is the default for tasks that set none.
 * A held (prefetched) task that never started goes back to `queued` without counting the
 * attempt. Returns the records as stored.
 */
export async function requeueLost(
  store: Store,
  lost: readonly LeaseEntry[],
  options: {
    maxAttempts: number;
    reason: string;
    /**
     * The held tasks the lost cluster had started (see {@linkcode readStarted}); null when
     * unknown (a damaged list): every held task then counts as started.
     * @default none started
     */
    started?: ReadonlySet<string> | null;
  },
): Promise<TaskRecord[]> {
  const out: TaskRecord[] = [];
  for (const entry of lost) {
    const found = await getRecord(store, entry.id).catch(() => null);
    const k = store.keys;
    const atomic = store.kv.atomic()
      .check({ key: k.lease(entry.id), versionstamp: entry.versionstamp })
      .delete(k.lease(entry.id))
      .delete(k.progress(entry.id));
    let record: TaskRecord | null = null;
    if (
      found && found.record.state === "running" && entry.lease?.held === true &&
      options.started !== null && !options.started?.has(entry.id)
    ) {
      // Prefetched and never handed to a worker: the attempt did not happen.
      record = found.record.release();
      atomic.check({ key: k.task(entry.id), versionstamp: found.versionstamp })
        .set(k.task(entry.id), record.encode())
        .set(k.ready(record.priority, record.id), new Uint8Array());
      addStateCounts(atomic, store, new CountDeltas().move("running", "queued"));
    } else if (found && found.record.state === "running") {
      const now = store.now();
      const max = found.record.maxAttempts ?? options.maxAttempts;
      const error: ErrorInfo = {
        name: "WorkerCrashError",
        message: `${options.reason} (attempt ${found.record.attempt} of ${max})`,
      };
      record = sealFinished(
        store,
        found.record.failAttempt(now, error, found.record.attempt < max ? now : null),
      );
      atomic.check({ key: k.task(entry.id), versionstamp: found.versionstamp });
      const counts = new CountDeltas().move("running", null);
      if (record.state === "scheduled") {
        atomic.set(k.task(entry.id), record.encode());
        atomic.set(k.delayed(record.runAt, record.id), new Uint8Array());
        counts.move(null, "scheduled");
      } else {
        // A final failure: release its unique key, run its hooks, end its chain or iter.
        const plan = await planFinish(store, record, null).catch(() => null);
        for (const c of plan?.checks ?? []) atomic.check(c);
        addFinishedRecord(atomic, store, record, counts);
        plan?.apply(atomic, counts);
      }
      addStateCounts(atomic, store, counts);
    }
    if ((await commitAtomic(atomic)).ok && record) out.push(record);
  }
  if (out.length > 0) store.changes.notifyLocal();
  return out;
}

/**
 * Writes the ids of the held tasks cluster `clusterId` has started or may start (see
 * `keys.started`), checking that the leases of `verify` are still as claimed. Returns false,
 * writing nothing, when one of them is not (see {@linkcode lostLeases}).
 */
export async function writeStarted(
  store: Store,
  clusterId: string,
  ids: Iterable<string>,
  verify: readonly Claimed[] = [],
): Promise<boolean> {
  const list = [...ids];
  const key = store.keys.started(clusterId);
  const atomic = store.kv.atomic();
  for (const c of verify) {
    atomic.check({ key: store.keys.lease(c.record.id), versionstamp: c.versionstamp });
  }
  if (list.length === 0) atomic.delete(key);
  else atomic.set(key, encoder.encode(JSON.stringify(list)));
  return (await commitAtomic(atomic)).ok;
}

/** The ids among `claimed` whose lease is no longer the one their claim wrote. */
export async function lostLeases(store: Store, claimed: readonly Claimed[]): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < claimed.length; i += KV_MAX_GET_MANY) {
    const part = claimed.slice(i, i + KV_MAX_GET_MANY);
    const leases = await store.kv.getMany(part.map((c) => store.keys.lease(c.record.id)), {
      consistency: "strong",
    });
    part.forEach((c, j) => {
      if (leases[j]!.versionstamp !== c.versionstamp) out.push(c.record.id);
    });
  }
  return out;
}

/**
 * Reads the ids of the held tasks cluster `clusterId` started: empty when it listed none, null
 * when the list is damaged (then nobody knows which started).
 */
export async function readStarted(store: Store, clusterId: string): Promise<Set<string> | null> {
  const entry = await store.kv.get(store.keys.started(clusterId), { consistency: "strong" });
  if (entry.versionstamp === null) return new Set();
  try {
    const list = JSON.parse(decoder.decode(entry.value as Uint8Array));
    if (!Array.isArray(list) || list.some((x) => typeof x !== "string")) return null;
    return new Set(list);
  } catch {
    return null;
  }
}

/** Deletes cluster `clusterId`'s started list (it stopped, or its leases were all handled). */
export async function deleteStarted(store: Store, clusterId: string): Promise<void> {
  await store.kv.delete(store.keys.started(clusterId));
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Gives running tasks this process holds back to `ready` without counting the attempt (graceful
 * stop). Returns how many were released.
 */
export async function releaseTasks(store: Store, claimed: readonly Claimed[]): Promise<number> {
  let released = 0;
  for (const c of claimed) {
    const k = store.keys;
    const record = c.record.release();
    const atomic = store.kv.atomic()
      .check({ key: k.lease(record.id), versionstamp: c.versionstamp })
      .delete(k.lease(record.id))
      .delete(k.progress(record.id))
      .set(k.task(record.id), record.encode())
      .set(k.ready(record.priority, record.id), new Uint8Array());
    addStateCounts(atomic, store, new CountDeltas().move("running", "queued"));
    if ((await commitAtomic(atomic)).ok) released++;
  }
  if (released > 0) store.changes.notifyLocal();
  return released;
}
