/**
 * Leases. A running task's lease is its record: state `running`, the cluster and worker that
 * hold it, and the versionstamp of the claim commit, which every later write of that attempt
 * (its outcome, its release, its recovery) checks. No key per task marks it running.
 *
 * To find the running tasks of a cluster that died, each claim commit writes one claim entry
 * (`keys.claim`): the ids it took and which of them were held. The process that claimed them
 * counts them out in a {@linkcode ClaimRef}, and the commit that stores the last one deletes
 * the entry. An entry outlives its tasks only when its cluster died; recovery then reads the
 * records it names and deletes it.
 *
 * @module
 */
import { v7 as uuidv7 } from "uuid";
import { TaskRecord } from "../task/record.ts";
import { commitAtomic } from "./commit.ts";
import { KV_MAX_GET_MANY } from "./limits.ts";
import type { Store } from "./store.ts";

/** One claim entry as the process that wrote it holds it: its key and its tasks not done. */
export class ClaimRef {
  /** The entry's key. */
  readonly key: Deno.KvKey;
  #left: number;

  constructor(key: Deno.KvKey, tasks: number) {
    this.key = key;
    this.#left = tasks;
  }

  /** A new claim entry of cluster `cluster` for `tasks` tasks. */
  static create(store: Store, cluster: string, tasks: number): ClaimRef {
    return new ClaimRef(store.keys.claim(cluster, uuidv7()), tasks);
  }

  /** How many of its tasks this process still holds. */
  get left(): number {
    return this.#left;
  }

  /** Counts `n` of its tasks done (stored, released or lost); true once none is left. */
  leave(n = 1): boolean {
    this.#left -= n;
    return this.#left <= 0;
  }
}

/** A claim entry's value. */
export interface ClaimValue {
  /** The tasks the claim took. */
  ids: string[];
  /** Those of them claimed as held (prefetched, maybe never started). */
  held: string[];
  /**
   * Held ones that may start before any other write names them: they count as started, like
   * those in the cluster's `started` list (absent: none).
   */
  started?: string[];
  /**
   * The claim took one task that had been running when a cluster died, to run it alone in its
   * cluster (quarantine): if that cluster dies too, the task is to blame.
   */
  alone?: true;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes a claim entry. */
export function encodeClaim(value: ClaimValue): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

/** Decodes a claim entry; null when it is not one. */
export function decodeClaim(value: unknown): ClaimValue | null {
  if (!(value instanceof Uint8Array)) return null;
  try {
    const v = JSON.parse(decoder.decode(value));
    const strings = (x: unknown) => Array.isArray(x) && x.every((s) => typeof s === "string");
    const ok = strings(v?.ids) && strings(v?.held) &&
      (v.started === undefined || strings(v.started)) &&
      (v.alone === undefined || v.alone === true);
    return ok ? v as ClaimValue : null;
  } catch {
    return null;
  }
}

/** What {@linkcode addClaimEnds} added to a commit. */
export interface ClaimEnds {
  /** Tasks the commit ends, per claim entry. */
  readonly counts: ReadonlyMap<ClaimRef, number>;
  /** The entries it deletes. */
  readonly deleted: ReadonlySet<ClaimRef>;
}

/**
 * Adds to `atomic` the deletes of the claim entries whose last tasks it ends: `refs` has one
 * entry per task the commit ends (null for a task of no claim). Once the commit went through,
 * pass the result to {@linkcode settleClaims}.
 */
export function addClaimEnds(
  atomic: Deno.AtomicOperation,
  refs: readonly (ClaimRef | null)[],
): ClaimEnds {
  const counts = new Map<ClaimRef, number>();
  for (const ref of refs) if (ref) counts.set(ref, (counts.get(ref) ?? 0) + 1);
  const deleted = new Set<ClaimRef>();
  for (const [ref, n] of counts) {
    if (ref.left > n) continue;
    atomic.delete(ref.key);
    deleted.add(ref);
  }
  return { counts, deleted };
}

/**
 * Counts the tasks of a committed {@linkcode addClaimEnds} out of their entries. Commits in
 * flight side by side can each leave the last task of an entry to the other: an entry that has
 * no task left and was not deleted is deleted now.
 */
export async function settleClaims(store: Store, ends: ClaimEnds): Promise<void> {
  const missed: ClaimRef[] = [];
  for (const [ref, n] of ends.counts) {
    if (ref.leave(n) && !ends.deleted.has(ref)) missed.push(ref);
  }
  if (missed.length > 0) await deleteClaims(store, missed);
}

/**
 * Counts out tasks whose outcome was not stored (their lease was lost) and deletes the entries
 * that leaves with none.
 */
export async function dropClaims(store: Store, lost: readonly (ClaimRef | null)[]): Promise<void> {
  const empty = lost.filter((ref): ref is ClaimRef => ref?.leave() === true);
  if (empty.length > 0) await deleteClaims(store, empty);
}

async function deleteClaims(store: Store, refs: readonly ClaimRef[]): Promise<void> {
  const atomic = store.kv.atomic();
  for (const ref of new Set(refs)) atomic.delete(ref.key);
  await commitAtomic(atomic);
}

/** A running task as a claim entry names it. */
export interface LeaseEntry {
  /** The task id. */
  id: string;
  /** The cluster whose claim took it. */
  cluster: string;
  /** Claimed as held (prefetched). */
  held: boolean;
  /** Held, and named started by its claim entry. */
  started: boolean;
  /** Claimed alone, to run with nothing else in its cluster (see `ClaimValue.alone`). */
  alone: boolean;
  /** The claim entry's key. */
  claimKey: Deno.KvKey;
}

/** A claim entry as listed. */
export interface ClaimListing {
  key: Deno.KvKey;
  cluster: string;
  versionstamp: string;
  /** Null when the value is damaged. */
  value: ClaimValue | null;
}

/** Every claim entry of the queue, or of one cluster. */
export async function listClaims(store: Store, cluster?: string): Promise<ClaimListing[]> {
  const out: ClaimListing[] = [];
  const prefix = cluster === undefined ? store.keys.leases : store.keys.claimsOf(cluster);
  for await (const e of store.kv.list({ prefix }, { consistency: "strong" })) {
    out.push({
      key: e.key,
      cluster: String(e.key[e.key.length - 2]),
      versionstamp: e.versionstamp,
      value: decodeClaim(e.value),
    });
  }
  return out;
}

/**
 * The tasks the claim entries name, once each (the latest claim of a task wins), with the
 * entries themselves. A damaged entry names no ids: {@linkcode runningOf} finds its tasks.
 */
export async function listLeases(
  store: Store,
  cluster?: string,
): Promise<{ leases: LeaseEntry[]; claims: ClaimListing[] }> {
  const claims = await listClaims(store, cluster);
  const byId = new Map<string, LeaseEntry>();
  // Claim ids are UUIDv7s, so a cluster's entries list oldest first: later ones overwrite.
  for (const c of claims) {
    if (c.value === null) continue;
    const held = new Set(c.value.held);
    const started = new Set(c.value.started ?? []);
    for (const id of c.value.ids) {
      byId.set(id, {
        id,
        cluster: c.cluster,
        held: held.has(id),
        started: started.has(id),
        alone: c.value.alone === true,
        claimKey: c.key,
      });
    }
  }
  return { leases: [...byId.values()], claims };
}

/**
 * The ids of the tasks whose record says cluster `cluster` runs them, found by reading every
 * record: the way to its tasks when one of its claim entries is damaged.
 */
export async function runningOf(store: Store, cluster: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of store.kv.list({ prefix: store.keys.tasks })) {
    try {
      const r = TaskRecord.decode(e.key, e.value);
      if (r.state === "running" && r.cluster === cluster) out.push(r.id);
    } catch {
      // a damaged record is for 'kvq doctor'
    }
  }
  return out;
}

/** The records of `ids` that are running, with their versionstamps, in the order given. */
export async function runningRecords(
  store: Store,
  ids: readonly string[],
): Promise<Map<string, { record: TaskRecord; versionstamp: string }>> {
  const out = new Map<string, { record: TaskRecord; versionstamp: string }>();
  for (let i = 0; i < ids.length; i += KV_MAX_GET_MANY) {
    const part = ids.slice(i, i + KV_MAX_GET_MANY);
    const entries = await store.kv.getMany(part.map((id) => store.keys.task(id)), {
      consistency: "strong",
    });
    for (const e of entries) {
      if (e.versionstamp === null) continue;
      try {
        const record = TaskRecord.decode(e.key, e.value);
        if (record.state === "running") {
          out.set(record.id, { record, versionstamp: e.versionstamp });
        }
      } catch {
        // not running as far as anyone can tell
      }
    }
  }
  return out;
}
