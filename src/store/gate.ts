/**
 * What a claim under limits may take (see `flow.ts` for the limits themselves). A claim reads
 * the queue's `running` counter and its log of recent starts with the claim sequence, takes at
 * most what they allow, and checks the sequence in its commit: two clusters racing for the last
 * place can't both win. The per-partition limits work the same way on each partition's own
 * counter and log, read for the partitions of the tasks a claim looks at; a partition held by a
 * push-back starts nothing.
 *
 * @module
 */
import { gaugeValue } from "./counters.ts";
import { gatesClaims, type QueueLimits, type Rate } from "./flow.ts";
import { KV_MAX_GET_MANY } from "./limits.ts";
import type { Store } from "./store.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A commit's share of checks, mutations and bytes. */
export interface GateCost {
  checks: number;
  mutations: number;
  bytes: number;
}

/** What a claim under limits may take, and what its commit must check and write. */
export interface FlowGate {
  /** The most tasks the claim may take now. */
  allowed: number;
  /** When more may start, if the rate holds them back (epoch ms); null otherwise. */
  nextAt: number | null;
  /** The claim sequence's versionstamp as read with the counters (see {@linkcode readGate}). */
  seq: string | null;
  /**
   * Adds the check of the claim sequence (unless the commit checks it already against
   * {@linkcode FlowGate.seq}: `seqChecked`), and the log of the `n` starts, to the claim's commit.
   */
  add(atomic: Deno.AtomicOperation, n: number, now: number, seqChecked?: boolean): void;
  /** What {@linkcode FlowGate.add} costs a commit at most. */
  cost: GateCost;
  /** The per-partition limits and holds; null when the queue has none. */
  partitions: PartitionGate | null;
}

/** The per-partition side of a {@linkcode FlowGate}. */
export interface PartitionGate {
  /**
   * What one partition a claim takes from adds to its commit at most: no check (the claim
   * sequence stands for it, see {@linkcode readGate}).
   */
  costPer: Omit<GateCost, "checks">;
  /** Reads the counters of `partitions` (those of the tasks a claim looks at). */
  open(partitions: readonly string[]): Promise<PartitionPicks>;
}

/** What the partitions read by {@linkcode PartitionGate.open} allow. */
export interface PartitionPicks {
  /** Whether one more task of `partition` may start now; if so, it is counted. */
  take(partition: string): boolean;
  /** When a partition held back by its rate or a hold may start more (epoch ms); null: none. */
  readonly nextAt: number | null;
  /** Adds the rate logs of the partitions of `taken` to the claim's commit. */
  add(atomic: Deno.AtomicOperation, taken: readonly (string | null)[], now: number): void;
}

/**
 * Reads what the queue's limits allow now: the running count (the state counter every claim,
 * outcome and recovery sums) and the starts logged in the rate window. `holds` are the
 * partitions held by a push-back, until when (epoch ms).
 */
export async function readGate(
  store: Store,
  limits: QueueLimits,
  holds: ReadonlyMap<string, number> = new Map(),
): Promise<FlowGate> {
  const k = store.keys;
  const runningKey = k.stat("state", "running");
  // Holds alone need no check.
  const limited = gatesClaims(limits);
  // The claim sequence is summed by every claim, and by nothing else that starts a task or logs
  // a start: while it stands as read, no claim took a place or wrote a rate log, and the running
  // counts (in all and per partition) can only have gone down (outcomes, recoveries). So a claim
  // checks that one key for every limit, however many partitions it takes from, and an outcome
  // meanwhile fails no claim.
  const [seq, running, log] = await store.kv.getMany([k.claimSeq, runningKey, k.rateLog], {
    consistency: "strong",
  });
  const now = store.now();
  let allowed = Infinity;
  let nextAt: number | null = null;
  if (limits.concurrency !== undefined) {
    allowed = Math.max(0, limits.concurrency - gaugeValue(running!.value));
  }
  const rate = limits.rate;
  const window = rate === undefined ? null : readWindow(log!.value, rate, now);
  if (window !== null) {
    allowed = Math.min(allowed, window.left);
    nextAt = window.nextAt;
  }
  const partitioned = limits.partitionConcurrency !== undefined ||
    limits.partitionRate !== undefined || holds.size > 0;
  return {
    allowed,
    nextAt,
    cost: {
      checks: limited ? 1 : 0,
      mutations: rate !== undefined ? 1 : 0,
      bytes: rate !== undefined ? 16 * rate.count + 256 : 0,
    },
    seq: seq!.versionstamp,
    add(atomic, n, at, seqChecked) {
      if (limited && !seqChecked) {
        atomic.check({ key: k.claimSeq, versionstamp: seq!.versionstamp });
      }
      if (rate !== undefined) atomic.set(k.rateLog, logged(window!.starts, rate, n, at));
    },
    partitions: partitioned ? partitionGate(store, limits, holds) : null,
  };
}

function partitionGate(
  store: Store,
  limits: QueueLimits,
  holds: ReadonlyMap<string, number>,
): PartitionGate {
  const k = store.keys;
  const { partitionConcurrency: most, partitionRate: rate } = limits;
  return {
    costPer: {
      mutations: rate !== undefined ? 1 : 0,
      bytes: rate !== undefined ? 16 * rate.count + 512 : 0,
    },
    async open(partitions) {
      const keys: Deno.KvKey[] = [];
      for (const p of partitions) {
        if (most !== undefined) keys.push(k.partitionStat(p, "running"));
        if (rate !== undefined) keys.push(k.partitionRateLog(p));
      }
      const parts: Promise<Deno.KvEntryMaybe<unknown>[]>[] = [];
      for (let i = 0; i < keys.length; i += KV_MAX_GET_MANY) {
        parts.push(store.kv.getMany(keys.slice(i, i + KV_MAX_GET_MANY), { consistency: "strong" }));
      }
      const read = (await Promise.all(parts)).flat();
      const now = store.now();
      const state = new Map<string, {
        left: number;
        taken: number;
        running: Deno.KvEntryMaybe<unknown> | undefined;
        log: Deno.KvEntryMaybe<unknown> | undefined;
        starts: number[];
      }>();
      let nextAt: number | null = null;
      const later = (at: number) => nextAt = nextAt === null ? at : Math.min(nextAt, at);
      let at = 0;
      for (const p of partitions) {
        const running = most !== undefined ? read[at++] : undefined;
        const log = rate !== undefined ? read[at++] : undefined;
        let left = most !== undefined ? Math.max(0, most - gaugeValue(running!.value)) : Infinity;
        let starts: number[] = [];
        if (rate !== undefined) {
          const window = readWindow(log!.value, rate, now);
          starts = window.starts;
          left = Math.min(left, window.left);
          if (window.nextAt !== null) later(window.nextAt);
        }
        const held = holds.get(p);
        if (held !== undefined && held > now) {
          left = 0;
          later(held + 1);
        }
        state.set(p, { left, taken: 0, running, log, starts });
      }
      return {
        get nextAt() {
          return nextAt;
        },
        take(p) {
          const s = state.get(p);
          if (s === undefined || s.left <= 0) return false;
          s.left--;
          s.taken++;
          return true;
        },
        add(atomic, taken, now) {
          const counts = new Map<string, number>();
          for (const p of taken) if (p !== null) counts.set(p, (counts.get(p) ?? 0) + 1);
          for (const [p, n] of counts) {
            const s = state.get(p);
            if (s === undefined) continue;
            if (s.log) atomic.set(s.log.key, logged(s.starts, rate!, n, now));
          }
        },
      };
    },
  };
}

/** The starts in a rate's window, how many more it allows, and when the next place frees. */
function readWindow(
  value: unknown,
  rate: Rate,
  now: number,
): { starts: number[]; left: number; nextAt: number | null } {
  // A start is logged when claimed, before the worker starts it (a held task up to the
  // prefetch window later): the window counts a little longer, so no window of task starts
  // holds more than the rate.
  const since = now - rate.ms - rateMargin(rate.ms);
  const starts = readLog(value).filter((t) => t > since);
  const left = rate.count - starts.length;
  // Full: the next place frees when the oldest start in the window leaves it.
  const nextAt = left <= 0
    ? starts[starts.length - rate.count]! + rate.ms + rateMargin(rate.ms) + 1
    : null;
  return { starts, left: Math.max(0, left), nextAt };
}

/** The log of a window's starts with `n` more at `at`, as stored. */
function logged(starts: readonly number[], rate: Rate, n: number, at: number): Uint8Array {
  const kept = [
    ...starts.filter((t) => t > at - rate.ms - rateMargin(rate.ms)),
    ...Array(n).fill(at),
  ];
  return encoder.encode(JSON.stringify(kept.slice(-rate.count)));
}

/**
 * How much longer than its window a rate counts starts: 50 ms (a task held ahead of a free place
 * starts within the prefetch window, 20 ms, or is recalled by 40 ms), or a tenth of a short window.
 */
export function rateMargin(ms: number): number {
  return Math.min(50, Math.floor(ms / 10));
}

function readLog(value: unknown): number[] {
  if (!(value instanceof Uint8Array)) return [];
  try {
    const v = JSON.parse(decoder.decode(value));
    return Array.isArray(v)
      ? v.filter((t): t is number => typeof t === "number").sort((a, b) => a - b)
      : [];
  } catch {
    return [];
  }
}
