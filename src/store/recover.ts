/**
 * Lease recovery and release. A running task's lease is its record, which names its cluster
 * (see `leases.ts`); when that cluster stops heartbeating, any live cluster turns the attempt
 * into a failed one (retried if attempts remain), finding the tasks through the dead cluster's
 * claim entries. On a graceful stop a cluster releases the tasks it could not finish back to
 * `ready`. Every change checks the record's versionstamp, so a late result and a recovery never
 * both win.
 *
 * @module
 */
import { DEFAULT_MAX_CRASHES } from "../task/backoff.ts";
import type { ErrorInfo } from "../task/errors.ts";
import type { TaskRecord } from "../task/record.ts";
import type { Claimed } from "./claim.ts";
import { addStateCounts, CountDeltas } from "./counters.ts";
import type { Store } from "./store.ts";
import { commitAtomic } from "./commit.ts";
import { addReadyEntry } from "./_entries.ts";
import { KV_MAX_GET_MANY } from "./limits.ts";
import { addFinishedRecord, planFinish } from "./finish.ts";
import { sealFinished } from "./_seal.ts";
import {
  addClaimEnds,
  type ClaimListing,
  dropClaims,
  listLeases,
  runningOf,
  runningRecords,
  settleClaims,
} from "./leases.ts";

export { type LeaseEntry, listLeases } from "./leases.ts";

/**
 * Recovers the running tasks of cluster `cluster`, which stopped heartbeating: each attempt
 * becomes a crash, retried at once and counted apart from its attempts (see `crashedOn`),
 * until a task that ran alone has seen `maxCrashes` (then it fails as poison); a held
 * (prefetched) task it never started goes back to `queued` without counting the attempt. Then deletes the cluster's claim entries whose tasks are all
 * handled. Returns the records as stored.
 */
export async function recoverCluster(
  store: Store,
  cluster: string,
  options: {
    /**
     * How many crashes of its cluster a task running alone may see before it ends failed
     * with a `PoisonTaskError`.
     * @default 2
     */
    maxCrashes?: number;
    reason: string;
    /**
     * The held tasks the lost cluster had started (see {@linkcode readStarted}); null when
     * unknown (a damaged list): every held task then counts as started.
     * @default none started
     */
    started?: ReadonlySet<string> | null;
  },
): Promise<{ records: TaskRecord[] }> {
  const { leases, claims } = await listLeases(store, cluster);
  // Held and never started: neither its claim nor the started list named it.
  const unstarted = new Set(leases.filter((l) => l.held && !l.started).map((l) => l.id));
  const alone = new Set(leases.filter((l) => l.alone).map((l) => l.id));
  const ids = new Set(leases.map((l) => l.id));
  // A damaged claim entry names no ids: find its tasks from the records themselves.
  if (claims.some((c) => c.value === null)) {
    for (const id of await runningOf(store, cluster)) ids.add(id);
  }
  const running = await runningRecords(store, [...ids]);
  const out: TaskRecord[] = [];
  let failed = false;
  for (const id of ids) {
    const found = running.get(id);
    if (!found || found.record.cluster !== cluster) continue;
    const k = store.keys;
    // The epoch sum fails the cluster's outcome commits that check only it (see `keys.epoch`).
    const atomic = store.kv.atomic()
      .check({ key: k.task(id), versionstamp: found.versionstamp })
      .delete(k.progress(id))
      .sum(k.epoch(cluster), 1n);
    let record: TaskRecord;
    if (unstarted.has(id) && options.started !== null && !options.started?.has(id)) {
      // Prefetched and never handed to a worker: the attempt did not happen.
      record = found.record.release();
      atomic.set(k.task(id), record.encode());
      addReadyEntry(atomic, k, record);
      addStateCounts(
        atomic,
        store,
        new CountDeltas().move("running", "queued", 1, record.partition),
      );
    } else {
      // It may have been running when its cluster died: a crash, counted apart from its
      // attempts, and retried at once. A task that was running alone in its cluster (it had
      // been running at an earlier crash, see `ClaimValue.alone`) is to blame when that one
      // dies too: after `maxCrashes` such recoveries it ends failed as poison.
      const now = store.now();
      const crashed = found.record.crashedIn(cluster);
      const maxCrashes = options.maxCrashes ?? DEFAULT_MAX_CRASHES;
      const poison = crashed.crashes >= maxCrashes &&
        (alone.has(id) || crashed.crashes >= 2 * maxCrashes);
      const error: ErrorInfo = poison
        ? {
          name: "PoisonTaskError",
          message:
            `Task ${id} (${found.record.name}) was running each time its cluster died, ${crashed.crashes} times (clusters ${
              crashed.crashedOn!.join(", ")
            }): it is not run again. Fix the task, then retry it.`,
        }
        : {
          name: "WorkerCrashError",
          message:
            `${options.reason} (attempt ${found.record.attempt}; crash ${crashed.crashes} of ${maxCrashes} allowed)`,
        };
      record = sealFinished(store, crashed.failAttempt(now, error, poison ? null : now));
      const counts = new CountDeltas().move("running", null, 1, record.partition);
      if (record.state === "scheduled") {
        atomic.set(k.task(id), record.encode());
        atomic.set(k.delayed(record.runAt, record.id), new Uint8Array());
        counts.move(null, "scheduled", 1, record.partition);
      } else {
        // A final failure: release its unique key, run its hooks, end its chain or iter.
        const plan = await planFinish(store, record, null).catch(() => null);
        for (const c of plan?.checks ?? []) atomic.check(c);
        addFinishedRecord(atomic, store, record, counts);
        plan?.apply(atomic, counts);
      }
      addStateCounts(atomic, store, counts);
    }
    if ((await commitAtomic(atomic)).ok) out.push(record);
    else failed = true;
  }
  // Every task of its entries is handled, unless a commit failed: then the next pass reads
  // them again (a record another cluster recovered meanwhile no longer names this cluster).
  if (!failed) await deleteClaimEntries(store, claims);
  if (out.length > 0) store.changes.notifyLocal();
  return { records: out };
}

async function deleteClaimEntries(store: Store, claims: readonly ClaimListing[]): Promise<void> {
  for (let i = 0; i < claims.length; i += store.handle.maxChecks) {
    const atomic = store.kv.atomic();
    for (const c of claims.slice(i, i + store.handle.maxChecks)) {
      atomic.check({ key: c.key, versionstamp: c.versionstamp }).delete(c.key);
    }
    await commitAtomic(atomic);
  }
}

/**
 * Writes the ids of the held tasks cluster `clusterId` has started or may start (see
 * `keys.started`), checking that the leases of `verify` are still as claimed: when all were
 * claimed under one epoch of `clusterId` (see `keys.epoch`), with one check of it, else with a
 * check of each record. Returns false, writing nothing, when one of them is not (see
 * {@linkcode lostLeases}).
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
  const epoch = sharedEpoch(verify);
  if (epoch !== undefined && verify.length > 1) {
    atomic.check({ key: store.keys.epoch(clusterId), versionstamp: epoch });
  } else {
    for (const c of verify) {
      atomic.check({ key: store.keys.task(c.record.id), versionstamp: c.versionstamp });
    }
  }
  if (list.length === 0) atomic.delete(key);
  else atomic.set(key, encoder.encode(JSON.stringify(list)));
  return (await commitAtomic(atomic)).ok;
}

/**
 * The epoch versionstamp all of `claimed` were claimed under, or undefined when they were not
 * all claimed under one known epoch.
 */
export function sharedEpoch(claimed: readonly Claimed[]): string | null | undefined {
  const first = claimed[0]?.epoch;
  return claimed.every((c) => c.epoch === first) ? first : undefined;
}

/** The ids among `claimed` whose lease (record) is no longer the one their claim wrote. */
export async function lostLeases(store: Store, claimed: readonly Claimed[]): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < claimed.length; i += KV_MAX_GET_MANY) {
    const part = claimed.slice(i, i + KV_MAX_GET_MANY);
    const leases = await store.kv.getMany(part.map((c) => store.keys.task(c.record.id)), {
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
export async function releaseTasks(
  store: Store,
  claimed: readonly Claimed[],
  options: {
    /**
     * Whether the tasks may still end in a worker (a stop past its grace): then the release
     * sums the cluster's epoch, so an outcome still on its way is checked against the record.
     * Tasks held and never handed to a worker have no outcome to come.
     * @default true
     */
    mayEnd?: boolean;
  } = {},
): Promise<number> {
  let released = 0;
  for (const c of claimed) {
    const k = store.keys;
    const record = c.record.release();
    const atomic = store.kv.atomic()
      .check({ key: k.task(record.id), versionstamp: c.versionstamp })
      .delete(k.progress(record.id))
      .set(k.task(record.id), record.encode());
    addReadyEntry(atomic, k, record);
    addStateCounts(atomic, store, new CountDeltas().move("running", "queued", 1, record.partition));
    // The epoch sum fails any outcome of it still on its way (a worker past the grace).
    if (options.mayEnd !== false) atomic.sum(k.epoch(c.record.cluster ?? ""), 1n);
    const ends = addClaimEnds(atomic, [c.claim]);
    if ((await commitAtomic(atomic)).ok) {
      released++;
      await settleClaims(store, ends);
    } else await dropClaims(store, [c.claim]);
  }
  if (released > 0) store.changes.notifyLocal();
  return released;
}
