/**
 * Counters kept as `KvU64` sums, so totals never need a scan. A gauge (tasks now queued, running,
 * …) goes down by adding its two's complement: KV sums wrap modulo 2^64.
 *
 * @module
 */
import { TASK_STATES, type TaskState } from "./keys.ts";
import type { Store } from "./store.ts";

const U64 = 1n << 64n;
const I64_MAX = (1n << 63n) - 1n;

/** How many tasks are in each state. */
export type StateCounts = Record<TaskState, number>;

/**
 * Adds a batch's counter deltas to an atomic operation: the state gauges and any other
 * counters collected with {@linkcode CountDeltas.add}. Zero deltas are left out.
 */
export function addStateCounts(
  atomic: Deno.AtomicOperation,
  store: Store,
  counts: CountDeltas,
): void {
  for (const [state, delta] of Object.entries(counts.deltas)) {
    if (!delta) continue;
    atomic.sum(store.keys.stat("state", state), ((BigInt(delta) % U64) + U64) % U64);
  }
  for (const { key, n } of counts.others.values()) {
    if (n !== 0) atomic.sum(key, ((BigInt(n) % U64) + U64) % U64);
  }
  for (const [partition, deltas] of counts.partitions) {
    for (const [state, delta] of Object.entries(deltas)) {
      if (!delta) continue;
      atomic.sum(
        store.keys.partitionStat(partition, state as TaskState),
        ((BigInt(delta) % U64) + U64) % U64,
      );
    }
  }
}

/** The states counted per partition: the waiting and running ones. */
export const PARTITION_STATES: readonly TaskState[] = ["scheduled", "queued", "running"];
const partitionCounted = new Set<TaskState | null>(PARTITION_STATES);

/**
 * Collects counter deltas for a batch, so one commit sums each counter once (every `sum` is a
 * KV mutation of its own, even on the same key).
 */
export class CountDeltas {
  readonly deltas: Partial<Record<TaskState, number>> = {};
  /** Other counters, by their key's JSON. */
  readonly others = new Map<string, { key: Deno.KvKey; n: number }>();
  /** Per partition, its gauges' deltas (see {@linkcode PARTITION_STATES}). */
  readonly partitions = new Map<string, Partial<Record<TaskState, number>>>();
  /**
   * Moves `n` tasks from one state to another (either may be null); tasks of a `partition`
   * move on its gauges too.
   */
  move(from: TaskState | null, to: TaskState | null, n = 1, partition: string | null = null): this {
    if (from) this.deltas[from] = (this.deltas[from] ?? 0) - n;
    if (to) this.deltas[to] = (this.deltas[to] ?? 0) + n;
    if (partition !== null && from !== to) {
      let p = this.partitions.get(partition);
      if (!p) this.partitions.set(partition, p = {});
      if (from && partitionCounted.has(from)) p[from] = (p[from] ?? 0) - n;
      if (to && partitionCounted.has(to)) p[to] = (p[to] ?? 0) + n;
    }
    return this;
  }
  /** Adds `n` to the counter at `key`. */
  add(key: Deno.KvKey, n = 1): this {
    const id = JSON.stringify(key);
    const entry = this.others.get(id);
    if (entry) entry.n += n;
    else this.others.set(id, { key, n });
    return this;
  }
}

/** Reads a KvU64 gauge's value: a sum that wrapped below 0 reads as 0. */
export function gaugeValue(value: unknown): number {
  const raw = (value as Deno.KvU64 | null)?.value ?? 0n;
  const signed = raw > I64_MAX ? raw - U64 : raw;
  return Math.max(0, Number(signed));
}

/** Reads the per-state counts of a queue. */
export async function readStateCounts(store: Store): Promise<StateCounts> {
  const keys = TASK_STATES.map((s) => store.keys.stat("state", s));
  const entries = await store.kv.getMany<Deno.KvU64[]>(keys);
  const out = {} as StateCounts;
  TASK_STATES.forEach((state, i) => {
    const raw = entries[i]?.value?.value ?? 0n;
    const signed = raw > I64_MAX ? raw - U64 : raw;
    out[state] = Math.max(0, Number(signed));
  });
  return out;
}
