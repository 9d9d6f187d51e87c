/**
 * Cluster heartbeats: each cluster rewrites its snapshot ({@linkcode ClusterStat}) under every
 * queue it serves every few seconds, with an expiry; other clusters judge from them who is
 * alive, and `kvq info` and the dashboard show them. One validated codec reads them for all.
 *
 * @module
 */
import { commitAtomic, retryBusy } from "./commit.ts";
import type { Store } from "./store.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What a cluster's heartbeat says about where it runs. */
export interface HeartbeatInfo {
  /** Cluster id. */
  id: string;
  /** Host name. */
  host: string;
  /** Process id on that host. */
  pid: number;
}

/** Where a cluster is in its life. */
export type ClusterState = "new" | "running" | "stopping" | "stopped";

/** A worker as the heartbeat reports it. */
export interface WorkerStat {
  name: string;
  slot: number;
  generation: number;
  state: string;
  tasks: { id: string; name: string; func: string; startedAt: number }[];
  tasksRun: number;
  cpu: number;
  heap: number;
  tid: number | null;
}

/** What a cluster's heartbeat holds. */
export interface ClusterStat extends HeartbeatInfo {
  runtime: string;
  version: string;
  state: ClusterState;
  startedAt: number;
  beatAt: number;
  queues: string[];
  /** Each queue's weight, in the order of `queues`. */
  weights: number[];
  /** The queues this cluster found paused at its last claim. */
  paused: string[];
  workers: WorkerStat[];
  /** The task names its workers export (absent in heartbeats of older releases). */
  funcs?: string[];
  reincarnations: number;
  processed: number;
  succeeded: number;
  /** Milliseconds between its heartbeats (absent in heartbeats of older releases). */
  heartbeatMs?: number;
  /** Attempts whose outcome was dropped because the lease was lost (absent in older beats). */
  dropped?: number;
  failed: number;
  rss: number;
  cpu: number;
  lowestFreeMemory: number;
  stuck: string[];
}

/** The snapshot stored as `value`, or null when it is not one (damaged, or another program's). */
export function decodeHeartbeat(value: unknown): ClusterStat | null {
  let s: ClusterStat;
  try {
    s = JSON.parse(decoder.decode(value as Uint8Array));
  } catch {
    return null;
  }
  const valid = typeof s === "object" && s !== null && typeof s.id === "string" &&
    typeof s.host === "string" && typeof s.pid === "number" && Array.isArray(s.workers) &&
    Array.isArray(s.queues) && typeof s.beatAt === "number" &&
    s.workers.every((w: WorkerStat) =>
      typeof w === "object" && w !== null && typeof w.name === "string" && Array.isArray(w.tasks)
    );
  return valid ? s : null;
}

/** One stored heartbeat: the cluster id its key names, and its snapshot (null if damaged). */
export interface HeartbeatEntry {
  id: string;
  key: Deno.KvKey;
  versionstamp: string;
  stat: ClusterStat | null;
}

/** The heartbeats under `store`'s queue. */
export async function listHeartbeats(
  store: Store,
  consistency: Deno.KvConsistencyLevel = "strong",
): Promise<HeartbeatEntry[]> {
  const out: HeartbeatEntry[] = [];
  for await (const e of store.kv.list({ prefix: store.keys.clusters }, { consistency })) {
    out.push({
      id: e.key[e.key.length - 1] as string,
      key: e.key,
      versionstamp: e.versionstamp,
      stat: decodeHeartbeat(e.value),
    });
  }
  return out;
}

/** The heartbeat of cluster `id` under `store`'s queue, or null when there is none. */
export async function readHeartbeat(store: Store, id: string): Promise<HeartbeatEntry | null> {
  const e = await store.kv.get(store.keys.cluster(id));
  if (e.versionstamp === null) return null;
  return { id, key: e.key, versionstamp: e.versionstamp, stat: decodeHeartbeat(e.value) };
}

/** Writes cluster `stat.id`'s heartbeat, to expire after `expireIn` ms by this clock. */
export async function writeHeartbeat(
  store: Store,
  stat: ClusterStat,
  expireIn: number,
): Promise<void> {
  const bytes = encoder.encode(JSON.stringify(stat));
  await retryBusy(() => store.kv.set(store.keys.cluster(stat.id), bytes, { expireIn }));
}

/**
 * Deletes cluster `id`'s heartbeat: when `versionstamp` is given, only if it is still the beat
 * that was read (a dead cluster's, judged by another).
 */
export async function deleteHeartbeat(
  store: Store,
  id: string,
  versionstamp?: string,
): Promise<void> {
  const key = store.keys.cluster(id);
  if (versionstamp === undefined) await store.kv.delete(key);
  else await commitAtomic(store.kv.atomic().check({ key, versionstamp }).delete(key));
}
