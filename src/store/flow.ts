/**
 * Flow control of a queue, enforced by every cluster that shares the KV: at most `concurrency`
 * of its tasks running at once, and at most `rate.count` starts in any window of `rate.ms`.
 * The limits live under the queue's `limits` key (read with the pause key, in the same
 * `getMany`, so a queue without limits costs nothing more). A claim under limits reads the
 * queue's `running` counter and its log of recent starts, takes at most what they allow, and
 * checks both in its commit: two clusters racing for the last place can't both win. A running
 * task of a cluster that dies holds its place until its lease is recovered.
 *
 * @module
 */
import { commitAtomic } from "./commit.ts";
import type { Store } from "./store.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The most starts a rate may allow per window: its log of start times is one KV value. */
export const MAX_RATE_COUNT = 5000;

/** A queue's limits. */
export interface QueueLimits {
  /** At most this many of its tasks run at once, across all clusters. */
  concurrency?: number;
  /** At most `count` task starts in any window of `ms`, across all clusters. */
  rate?: { count: number; ms: number };
}

/** A queue's limits in a few words: `concurrency 2 · rate 5/1000ms`. */
export function limitsText(limits: QueueLimits): string {
  const parts: string[] = [];
  if (limits.concurrency !== undefined) parts.push(`concurrency ${limits.concurrency}`);
  if (limits.rate !== undefined) parts.push(`rate ${limits.rate.count}/${limits.rate.ms}ms`);
  return parts.join(" · ") || "none";
}

/** Limits as given to {@linkcode setLimits}: a rate may also be text, such as `"100/1s"`. */
export interface QueueLimitsInput {
  /** At most this many of its tasks run at once, across all clusters. */
  concurrency?: number;
  /** At most `count` starts in any window of `ms`, or `"N/DURATION"` (see {@linkcode parseRate}). */
  rate?: { count: number; ms: number } | string;
}

/** A bad limit: the message names the option and the value. */
export class LimitError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = "LimitError";
  }
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses a rate such as `100/1s`, `5/1m` or `20/500ms` into `{ count, ms }`.
 *
 * @throws {LimitError} naming the value and what a rate looks like.
 */
export function parseRate(text: string): { count: number; ms: number } {
  const m = /^(\d+)\/(\d+)(ms|s|m|h)$/.exec(text.trim());
  if (!m) {
    throw new LimitError(
      `A rate is N/DURATION, such as 100/1s, 5/1m or 20/500ms: received ${JSON.stringify(text)}`,
    );
  }
  return checkRate({ count: Number(m[1]), ms: Number(m[2]) * UNITS[m[3]!]! }, text);
}

function checkRate(rate: { count: number; ms: number }, shown: unknown): {
  count: number;
  ms: number;
} {
  if (!Number.isSafeInteger(rate.count) || rate.count < 1 || rate.count > MAX_RATE_COUNT) {
    throw new LimitError(
      `A rate allows 1 to ${MAX_RATE_COUNT} starts per window: received ${JSON.stringify(shown)}`,
    );
  }
  if (!Number.isSafeInteger(rate.ms) || rate.ms < 1 || rate.ms > 86_400_000) {
    throw new LimitError(
      `A rate's window is 1 ms to 24 h: received ${JSON.stringify(shown)}`,
    );
  }
  return rate;
}

/**
 * Checks limits given by a caller.
 *
 * @throws {LimitError} naming the option and the value.
 */
export function validateLimits(limits: QueueLimitsInput): QueueLimits {
  const out: QueueLimits = {};
  for (const key of Object.keys(limits)) {
    if (key !== "concurrency" && key !== "rate") {
      throw new LimitError(
        `Unknown limit ${JSON.stringify(key)}: the limits are concurrency, rate`,
      );
    }
  }
  if (limits.concurrency !== undefined) {
    const n = limits.concurrency;
    if (!Number.isSafeInteger(n) || n < 1) {
      throw new LimitError(
        `Limit concurrency must be a whole number of at least 1: received ${JSON.stringify(n)}`,
      );
    }
    out.concurrency = n;
  }
  if (limits.rate !== undefined) {
    const r = limits.rate as unknown;
    out.rate = typeof r === "string"
      ? parseRate(r)
      : checkRate(r as { count: number; ms: number }, r);
  }
  return out;
}

/** Stores the queue's limits (replacing the ones it had); they apply at every cluster's next claim. */
export async function setLimits(store: Store, limits: QueueLimitsInput): Promise<QueueLimits> {
  const valid = validateLimits(limits);
  if (valid.concurrency === undefined && valid.rate === undefined) {
    await clearLimits(store);
    return valid;
  }
  await commitAtomic(
    store.kv.atomic().set(store.keys.limits, encoder.encode(JSON.stringify(valid)))
      .sum(store.keys.signal, 1n),
  );
  store.changes.notifyLocal();
  return valid;
}

/** Removes the queue's limits. */
export async function clearLimits(store: Store): Promise<void> {
  await commitAtomic(
    store.kv.atomic().delete(store.keys.limits).delete(store.keys.rateLog)
      .sum(store.keys.signal, 1n),
  );
  store.changes.notifyLocal();
}

/** Decodes a stored limits value; null when there is none (or it is damaged: no limits). */
export function decodeLimits(value: unknown): QueueLimits | null {
  if (!(value instanceof Uint8Array)) return null;
  try {
    const v = validateLimits(JSON.parse(decoder.decode(value)));
    return v.concurrency === undefined && v.rate === undefined ? null : v;
  } catch {
    return null;
  }
}

/** The queue's limits, or null. */
export async function readLimits(store: Store): Promise<QueueLimits | null> {
  return decodeLimits((await store.kv.get(store.keys.limits, { consistency: "strong" })).value);
}

/** What a claim under limits may take, and what its commit must check and write. */
export interface FlowGate {
  /** The most tasks the claim may take now. */
  allowed: number;
  /** When more may start, if the rate holds them back (epoch ms); null otherwise. */
  nextAt: number | null;
  /** Adds the checks, and the log of the `n` starts, to the claim's commit. */
  add(atomic: Deno.AtomicOperation, n: number, now: number): void;
  /** What {@linkcode FlowGate.add} costs a commit at most. */
  cost: { checks: number; mutations: number; bytes: number };
}

/**
 * Reads what the queue's limits allow now: the running count (the state counter every claim,
 * outcome and recovery sums) and the starts logged in the rate window.
 */
export async function readGate(store: Store, limits: QueueLimits): Promise<FlowGate> {
  const k = store.keys;
  const runningKey = k.stat("state", "running");
  const [running, log] = await store.kv.getMany([runningKey, k.rateLog], {
    consistency: "strong",
  });
  const now = store.now();
  let allowed = Infinity;
  let nextAt: number | null = null;
  if (limits.concurrency !== undefined) {
    const raw = (running!.value as Deno.KvU64 | null)?.value ?? 0n;
    const count = raw >= 1n << 63n ? 0 : Number(raw); // below 0 (a wrapped sum): none
    allowed = Math.max(0, limits.concurrency - count);
  }
  let starts: number[] = [];
  if (limits.rate !== undefined) {
    // A start is logged when claimed, before the worker starts it (a held task up to the
    // prefetch window later): the window counts a little longer, so no window of task starts
    // holds more than the rate.
    const since = now - limits.rate.ms - rateMargin(limits.rate.ms);
    starts = readLog(log!.value).filter((t) => t > since);
    const left = limits.rate.count - starts.length;
    allowed = Math.min(allowed, Math.max(0, left));
    // Full: the next place frees when the oldest start in the window leaves it.
    if (left <= 0) {
      nextAt = starts[starts.length - limits.rate.count]! + limits.rate.ms +
        rateMargin(limits.rate.ms) + 1;
    }
  }
  const rate = limits.rate;
  return {
    allowed,
    nextAt,
    cost: {
      checks: (limits.concurrency !== undefined ? 1 : 0) + (rate !== undefined ? 1 : 0),
      mutations: rate !== undefined ? 1 : 0,
      bytes: rate !== undefined ? 16 * rate.count + 256 : 0,
    },
    add(atomic, n, at) {
      if (limits.concurrency !== undefined) {
        atomic.check({ key: runningKey, versionstamp: running!.versionstamp });
      }
      if (rate !== undefined) {
        atomic.check({ key: k.rateLog, versionstamp: log!.versionstamp });
        const kept = [
          ...starts.filter((t) => t > at - rate.ms - rateMargin(rate.ms)),
          ...Array(n).fill(at),
        ];
        atomic.set(k.rateLog, encoder.encode(JSON.stringify(kept.slice(-rate.count))));
      }
    },
  };
}

/**
 * How much longer than its window a rate counts starts: 50 ms (a task held ahead of a free place
 * starts within the prefetch window, 20 ms, or is recalled by 40 ms), or a tenth of a short window.
 */
function rateMargin(ms: number): number {
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
