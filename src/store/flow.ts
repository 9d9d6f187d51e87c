/**
 * Flow control of a queue, enforced by every cluster that shares the KV: at most `concurrency`
 * of its tasks running at once, at most `rate.count` starts in any window of `rate.ms`, and the
 * same for each partition (`partitionConcurrency`, `partitionRate`), with weighted turns between
 * partitions (`partitionWeights`, see `turns.ts`). The limits live under the queue's `limits`
 * key (read with the pause key, in the same `getMany`, so a queue without limits costs nothing
 * more); how a claim obeys them is in `gate.ts`. A running task of a cluster that dies holds its
 * place until its lease is recovered.
 *
 * @module
 */
import { commitAtomic } from "./commit.ts";
import type { Store } from "./store.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The most starts a rate may allow per window: its log of start times is one KV value. */
export const MAX_RATE_COUNT = 5000;

/** A rate: at most `count` starts in any window of `ms`. */
export interface Rate {
  /** Starts allowed per window. */
  count: number;
  /** The window, in ms. */
  ms: number;
}

/** A queue's limits. */
export interface QueueLimits {
  /** At most this many of its tasks run at once, across all clusters. */
  concurrency?: number;
  /** At most `count` task starts in any window of `ms`, across all clusters. */
  rate?: Rate;
  /** At most this many tasks of each partition run at once, across all clusters. */
  partitionConcurrency?: number;
  /** At most `count` starts of each partition in any window of `ms`, across all clusters. */
  partitionRate?: Rate;
  /**
   * Turns per round of some partitions (1 to 100; the others have 1): a partition of weight 3
   * starts three tasks to another's one while both have tasks waiting.
   */
  partitionWeights?: Record<string, number>;
}

/** The most partitions given a weight. */
export const MAX_WEIGHTED_PARTITIONS = 1000;

/** A queue's limits in a few words: `concurrency 2 · rate 5/1000ms`. */
export function limitsText(limits: QueueLimits): string {
  const parts: string[] = [];
  const rate = (r: Rate) => `${r.count}/${r.ms}ms`;
  if (limits.concurrency !== undefined) parts.push(`concurrency ${limits.concurrency}`);
  if (limits.rate !== undefined) parts.push(`rate ${rate(limits.rate)}`);
  if (limits.partitionConcurrency !== undefined) {
    parts.push(`partition concurrency ${limits.partitionConcurrency}`);
  }
  if (limits.partitionRate !== undefined) {
    parts.push(`partition rate ${rate(limits.partitionRate)}`);
  }
  const weights = Object.entries(limits.partitionWeights ?? {});
  if (weights.length > 0) {
    parts.push(`weights ${weights.map(([p, w]) => `${p}=${w}`).join(",")}`);
  }
  return parts.join(" · ") || "none";
}

/** Whether `limits` hold back claims (weights alone only order them). */
export function gatesClaims(limits: QueueLimits | null | undefined): boolean {
  return limits !== null && limits !== undefined &&
    (limits.concurrency !== undefined || limits.rate !== undefined ||
      limits.partitionConcurrency !== undefined || limits.partitionRate !== undefined);
}

/** Limits as given to {@linkcode setLimits}: a rate may also be text, such as `"100/1s"`. */
export interface QueueLimitsInput {
  /** At most this many of its tasks run at once, across all clusters. */
  concurrency?: number;
  /** At most `count` starts in any window of `ms`, or `"N/DURATION"` (see {@linkcode parseRate}). */
  rate?: Rate | string;
  /** At most this many tasks of each partition run at once, across all clusters. */
  partitionConcurrency?: number;
  /** A rate for each partition, as `rate`. */
  partitionRate?: Rate | string;
  /** Turns per round of some partitions, 1 to 100 (see {@linkcode QueueLimits}). */
  partitionWeights?: Record<string, number>;
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

function checkRate(rate: Rate, shown: unknown): Rate {
  if (typeof rate !== "object" || rate === null) {
    throw new LimitError(
      `A rate is N/DURATION, such as 100/1s, or { count, ms }: received ${JSON.stringify(shown)}`,
    );
  }
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
  if (typeof limits !== "object" || limits === null) {
    throw new LimitError(`Limits must be an object: received ${JSON.stringify(limits)}`);
  }
  for (const key of Object.keys(limits)) {
    if (!LIMIT_NAMES.includes(key)) {
      throw new LimitError(
        `Unknown limit ${JSON.stringify(key)}: the limits are ${LIMIT_NAMES.join(", ")}`,
      );
    }
  }
  for (const name of ["concurrency", "partitionConcurrency"] as const) {
    const n = limits[name];
    if (n === undefined) continue;
    if (!Number.isSafeInteger(n) || n < 1) {
      throw new LimitError(
        `Limit ${name} must be a whole number of at least 1: received ${JSON.stringify(n)}`,
      );
    }
    out[name] = n;
  }
  for (const name of ["rate", "partitionRate"] as const) {
    const r = limits[name] as unknown;
    if (r === undefined) continue;
    out[name] = typeof r === "string" ? parseRate(r) : checkRate(r as Rate, r);
  }
  if (limits.partitionWeights !== undefined) {
    out.partitionWeights = validateWeights(limits.partitionWeights);
  }
  return out;
}

const LIMIT_NAMES = [
  "concurrency",
  "rate",
  "partitionConcurrency",
  "partitionRate",
  "partitionWeights",
];

function validateWeights(weights: unknown): Record<string, number> {
  if (typeof weights !== "object" || weights === null || Array.isArray(weights)) {
    throw new LimitError(
      `Limit partitionWeights must map partitions to weights, such as { "tenant-1": 3 }: received ${
        JSON.stringify(weights)
      }`,
    );
  }
  const entries = Object.entries(weights);
  if (entries.length > MAX_WEIGHTED_PARTITIONS) {
    throw new LimitError(
      `Limit partitionWeights names ${entries.length} partitions; at most ${MAX_WEIGHTED_PARTITIONS} may have a weight`,
    );
  }
  const out: Record<string, number> = {};
  for (const [p, w] of entries) {
    if (p.length === 0 || p.length > 256) {
      throw new LimitError(
        `A partition is 1-256 characters: received ${JSON.stringify(p.slice(0, 80))}`,
      );
    }
    if (!Number.isSafeInteger(w) || w < 1 || w > 100) {
      throw new LimitError(
        `The weight of partition ${
          JSON.stringify(p)
        } must be a whole number from 1 to 100: received ${JSON.stringify(w)}`,
      );
    }
    out[p] = w;
  }
  return out;
}

/**
 * Parses a weight given as `PARTITION=WEIGHT` (the CLI's `--partition-weight`).
 *
 * @throws {LimitError} naming the value.
 */
export function parseWeight(text: string): [string, number] {
  const at = text.lastIndexOf("=");
  const weight = Number(text.slice(at + 1));
  if (at <= 0 || !/^\d+$/.test(text.slice(at + 1))) {
    throw new LimitError(
      `A weight is PARTITION=N, such as tenant-1=3: received ${JSON.stringify(text)}`,
    );
  }
  const [p, w] = Object.entries(validateWeights({ [text.slice(0, at)]: weight }))[0]!;
  return [p, w];
}

/** Stores the queue's limits (replacing the ones it had); they apply at every cluster's next claim. */
export async function setLimits(store: Store, limits: QueueLimitsInput): Promise<QueueLimits> {
  const valid = validateLimits(limits);
  if (Object.keys(valid).length === 0) {
    await clearLimits(store);
    return valid;
  }
  await commitAtomic(
    store.addSignal(
      store.kv.atomic().set(store.keys.limits, encoder.encode(JSON.stringify(valid))),
    ),
  );
  store.changes.notifyLocal();
  return valid;
}

/** Removes the queue's limits. */
export async function clearLimits(store: Store): Promise<void> {
  await commitAtomic(
    store.addSignal(store.kv.atomic().delete(store.keys.limits).delete(store.keys.rateLog)),
  );
  store.changes.notifyLocal();
}

/** Decodes a stored limits value; null when there is none (or it is damaged: no limits). */
export function decodeLimits(value: unknown): QueueLimits | null {
  if (!(value instanceof Uint8Array)) return null;
  try {
    const v = validateLimits(JSON.parse(decoder.decode(value)));
    return Object.keys(v).length === 0 ? null : v;
  } catch {
    return null;
  }
}

/** The queue's limits, or null. */
export async function readLimits(store: Store): Promise<QueueLimits | null> {
  return decodeLimits((await store.kv.get(store.keys.limits, { consistency: "strong" })).value);
}
