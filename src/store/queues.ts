/**
 * Which queues a KV store holds, found without scanning their tasks; whether queues are idle.
 *
 * @module
 */
import { TaskRecord } from "../task/record.ts";
import { QUEUE_PARTS, ROOT } from "./keys.ts";
import type { Store } from "./store.ts";
import { listLeases, runningRecords } from "./leases.ts";

/** The most queues `kvq info` and the dashboard discover by themselves; past it, name them. */
export const MAX_DISCOVERED_QUEUES = 1000;

/**
 * The distinct queue names in a KV store. Each queue is one prefix `["kvq", name]`, so the names
 * are found by a skip scan: read the first key under `["kvq"]`, then the first key after every
 * key of that queue (`["kvq", name + "\0"]`: queue names never hold NUL, and it sorts after any
 * `["kvq", name, …]`), and so on. That is one read of one key per queue, however many tasks
 * there are. Stops after `max` queues.
 */
export async function listQueueNames(
  kv: Deno.Kv,
  max = MAX_DISCOVERED_QUEUES,
): Promise<{ names: string[]; more: boolean }> {
  const names: string[] = [];
  let after: string | null = null;
  while (true) {
    const selector: Deno.KvListSelector = after === null
      ? { start: [ROOT, ""], end: [ROOT, false] }
      : { start: [ROOT, `${after}\0`], end: [ROOT, false] };
    let next: string | null = null;
    let first: Deno.KvKey = [];
    for await (const e of kv.list(selector, { limit: 1, consistency: "eventual" })) {
      // Strings sort before numbers, bigints and booleans: past the last string, no queue is left.
      if (typeof e.key[1] === "string") [next, first] = [e.key[1], e.key];
    }
    if (next === null) return { names, more: false };
    if (await isQueue(kv, next, first)) {
      if (names.length >= max) return { names, more: true };
      names.push(next);
    }
    after = next;
  }
}

/** The queues the store holds, `default` first (listed even while it is empty). */
export async function listQueuesDefaultFirst(kv: Deno.Kv): Promise<string[]> {
  const { names } = await listQueueNames(kv);
  return ["default", ...names.filter((n) => n !== "default")];
}

/** Where a kvq queue always has keys once used: counters, schedules, heartbeats, a pause. */
const PROBES = ["stat", "schedule", "cluster", "paused"] as const;

/**
 * Whether `["kvq", name]` holds a kvq queue rather than another app's keys: its first key is
 * one of kvq's, or else one of the prefixes every used queue has is there.
 */
async function isQueue(kv: Deno.Kv, name: string, first: Deno.KvKey): Promise<boolean> {
  if (typeof first[2] === "string" && QUEUE_PARTS.has(first[2])) return true;
  for (const part of PROBES) {
    for await (
      const _ of kv.list({ prefix: [ROOT, name, part] }, { limit: 1, consistency: "eventual" })
    ) return true;
  }
  return false;
}

/** Whether none of `stores` has a task ready to claim or running under a lease. */
export async function queuesIdle(stores: readonly Store[]): Promise<boolean> {
  for (const store of stores) {
    for await (const _ of store.kv.list({ prefix: store.keys.readyPrefix }, { limit: 1 })) {
      return false;
    }
    // Running: what the claim entries name and the records still say runs (an entry can
    // outlive its tasks for a moment, see `leases.ts`).
    const { leases } = await listLeases(store);
    if ((await runningRecords(store, leases.map((l) => l.id))).size > 0) return false;
  }
  return true;
}

/** Whether task `id` still waits to run (scheduled or queued); false when gone or damaged. */
export async function stillWaiting(store: Store, id: string): Promise<boolean> {
  const entry = await store.kv.get(store.keys.task(id));
  if (entry.versionstamp === null) return false;
  try {
    const state = TaskRecord.decode(entry.key, entry.value).state;
    return state === "scheduled" || state === "queued";
  } catch {
    return false; // a damaged record is no longer anyone's to wait for
  }
}
