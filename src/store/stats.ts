/**
 * Throughput and timing statistics from `KvU64` sums in one-minute buckets, so `kvq info` and
 * the dashboard get rates, averages and history from small keys, never from a scan of the
 * tasks. Each claim adds the attempts it started to its minute, and each finished attempt adds
 * to its own: attempts ended, succeeded, failed, retried (failed, with a retry to come), run
 * milliseconds (start → stop) and wait milliseconds (due → start). The sums ride in commits the
 * clusters make anyway (claims and outcomes): no commit of their own.
 *
 * Buckets older than the retention (default {@linkcode STATS_KEEP_MS}) are pruned by the cluster
 * heartbeat.
 *
 * @module
 */
import { commitAtomic } from "./commit.ts";
import type { Store } from "./store.ts";

/** Bucket width. */
export const STATS_BUCKET_MS = 60_000;

/** How long buckets are kept by default: 72 hours, plus an hour of slack. */
export const STATS_KEEP_MS = 73 * 60 * 60 * 1000;

/** The fields summed per bucket. */
export type StatField =
  | "started"
  | "ended"
  | "succeeded"
  | "failed"
  | "retried"
  | "runMs"
  | "waitMs";

const FIELDS: readonly StatField[] = [
  "started",
  "ended",
  "succeeded",
  "failed",
  "retried",
  "runMs",
  "waitMs",
];

type Sums = Record<StatField, number>;
const zero = (): Sums => ({
  started: 0,
  ended: 0,
  succeeded: 0,
  failed: 0,
  retried: 0,
  runMs: 0,
  waitMs: 0,
});

/** Adds the attempts a claim started at `at` to its commit (one mutation). */
export function addStarted(
  atomic: Deno.AtomicOperation,
  store: Store,
  at: number,
  n: number,
): void {
  if (n > 0) atomic.sum(store.keys.stat("minute", bucketOf(at), "started"), BigInt(n));
}

/** The key part of the bucket holding `at`: zero-padded epoch ms so keys sort by time. */
export function bucketOf(at: number): string {
  return String(Math.floor(at / STATS_BUCKET_MS) * STATS_BUCKET_MS).padStart(15, "0");
}

/** Sums for one batch of finished attempts, added to one commit. */
export class StatDeltas {
  #by = new Map<string, Sums>();

  /** Counts one finished attempt (`retried`: it failed and will be retried). */
  add(
    at: number,
    attempt: { ok: boolean; startedAt: number | null; runAt: number; retried?: boolean },
  ): void {
    const bucket = bucketOf(at);
    let d = this.#by.get(bucket);
    if (!d) this.#by.set(bucket, d = zero());
    d.ended++;
    if (attempt.ok) d.succeeded++;
    else d.failed++;
    if (attempt.retried) d.retried++;
    if (attempt.startedAt !== null) {
      d.runMs += Math.max(0, at - attempt.startedAt);
      d.waitMs += Math.max(0, attempt.startedAt - attempt.runAt);
    }
  }

  /** Adds the sums to `atomic`. */
  apply(atomic: Deno.AtomicOperation, store: Store): void {
    for (const [bucket, d] of this.#by) {
      for (const field of FIELDS) {
        const v = Math.round(d[field]);
        if (v > 0) atomic.sum(store.keys.stat("minute", bucket, field), BigInt(v));
      }
    }
  }
}

/** Rates and averages read from the buckets. */
export interface QueueRates {
  /** Attempts ended per second over the last minute (the counts below are sliding windows). */
  perSecond: number;
  /** Attempts ended in the last minute. */
  perMinute: number;
  /** Attempts ended in the last hour. */
  perHour: number;
  /** Attempts ended in the last 24 hours. */
  perDay: number;
  /** Failed attempts in the last hour. */
  failedLastHour: number;
  /** Mean run time (ms) over the last 24 hours; null with no data. */
  avgRunMs: number | null;
  /** Mean wait from due to start (ms) over the last 24 hours; null with no data. */
  avgWaitMs: number | null;
  /** Ended and failed attempts per minute over the last hour, oldest first (60 entries). */
  lastHour: { at: number; ended: number; failed: number }[];
}

/** The sums of each bucket from `from` to `to` (epoch ms), by bucket key. */
async function readBuckets(
  store: Store,
  from: number,
  to: number,
): Promise<Map<string, Sums>> {
  const prefix = store.keys.stat("minute");
  const sums = new Map<string, Sums>();
  for await (
    const e of store.kv.list<Deno.KvU64>({
      start: [...prefix, bucketOf(from)],
      end: [...prefix, bucketOf(to + STATS_BUCKET_MS)],
    })
  ) {
    const bucket = e.key[e.key.length - 2] as string;
    const field = e.key[e.key.length - 1] as StatField;
    let d = sums.get(bucket);
    if (!d) sums.set(bucket, d = zero());
    if (FIELDS.includes(field)) d[field] = Number(e.value?.value ?? 0n);
  }
  return sums;
}

/** One minute of a queue's history: attempts that ended in it, how many failed, run time. */
export interface MinuteSums {
  /** The minute's start, epoch ms. */
  at: number;
  /** Attempts that ended (a retried task counts each attempt). */
  ended: number;
  /** Attempts that failed. */
  failed: number;
  /** Run time of those attempts, summed (ms). */
  runMs: number;
}

/**
 * Attempts per minute over the `minutes` minutes up to `now`, oldest first, one entry a minute
 * (zeros where nothing ended): one list of at most 5 keys a minute.
 */
export async function readMinutes(
  store: Store,
  minutes: number,
  now = store.now(),
): Promise<MinuteSums[]> {
  const first = Math.floor(now / STATS_BUCKET_MS) * STATS_BUCKET_MS -
    (minutes - 1) * STATS_BUCKET_MS;
  const sums = await readBuckets(store, first, now);
  const out: MinuteSums[] = [];
  for (let at = first; at <= now; at += STATS_BUCKET_MS) {
    const d = sums.get(bucketOf(at));
    out.push({ at, ended: d?.ended ?? 0, failed: d?.failed ?? 0, runMs: d?.runMs ?? 0 });
  }
  return out;
}

/** The sums of one bin of a queue's history. */
export interface HistoryBin extends Sums {
  /** The bin's start, epoch ms. */
  at: number;
}

/**
 * The minute buckets a long-lived reader (the dashboard) has read, so that a chart over 72 h
 * (4,320 buckets of up to 7 keys) reads only its last minutes again. A bucket is read again
 * until {@linkcode BucketCache.SETTLE_MS} after its minute: a cluster's result commit, or one
 * whose clock is a little behind, may still add to it. The whole span is read again every
 * {@linkcode BucketCache.REFRESH_MS} in case a clock was further behind.
 */
export class BucketCache {
  /** How long after its minute a bucket may still change, in ms. */
  static readonly SETTLE_MS = 10 * 60_000;
  /** How often everything is read again, in ms. */
  static readonly REFRESH_MS = 30 * 60_000;
  #sums = new Map<string, Sums>();
  /** Buckets from `#from` up to (not including) `#settled` are held and final. */
  #from = Infinity;
  #settled = -Infinity;
  #refreshedAt = -Infinity;
  /** One read at a time: a read drops the buckets it reads again. */
  #turn: Promise<unknown> = Promise.resolve();

  /** The sums of each bucket from `from` to `to`, reading only what may have changed. */
  read(store: Store, from: number, to: number): Promise<Map<string, Sums>> {
    const next = this.#turn.then(() => this.#read(store, from, to));
    this.#turn = next.catch(() => {});
    return next;
  }

  async #read(store: Store, from: number, to: number): Promise<Map<string, Sums>> {
    const start = Math.floor(from / STATS_BUCKET_MS) * STATS_BUCKET_MS;
    if (to - this.#refreshedAt >= BucketCache.REFRESH_MS || to < this.#settled) {
      this.#sums.clear();
      this.#from = Infinity;
      this.#settled = -Infinity;
      this.#refreshedAt = to;
    }
    if (this.#from === Infinity) {
      this.#sums = await readBuckets(store, start, to);
      this.#from = start;
    } else {
      // Older buckets than held: read them, up to what is held.
      if (start < this.#from) {
        const older = await readBuckets(store, start, this.#from - STATS_BUCKET_MS);
        for (const [k, v] of older) this.#sums.set(k, v);
        this.#from = start;
      }
      // The buckets that may still change: dropped and read again.
      const fresh = Math.max(start, this.#settled);
      for (const k of this.#sums.keys()) if (Number(k) >= fresh) this.#sums.delete(k);
      for (const [k, v] of await readBuckets(store, fresh, to)) this.#sums.set(k, v);
    }
    const settled = Math.floor((to - BucketCache.SETTLE_MS) / STATS_BUCKET_MS) * STATS_BUCKET_MS;
    this.#settled = Math.max(this.#from, settled);
    // Past the longest span kept: not read again.
    for (const k of this.#sums.keys()) if (Number(k) < to - STATS_KEEP_MS) this.#sums.delete(k);
    const out = new Map<string, Sums>();
    for (const [k, v] of this.#sums) if (Number(k) >= start && Number(k) <= to) out.set(k, v);
    return out;
  }
}

/**
 * A queue's history over `spanMs` up to `now`, in bins of `binMs` (a whole number of minutes),
 * oldest first, zeros where nothing happened: one list of the minute buckets (of those that may
 * have changed, through `cache`).
 */
export async function readHistory(
  store: Store,
  spanMs: number,
  binMs: number,
  now = store.now(),
  cache?: BucketCache,
): Promise<HistoryBin[]> {
  const bin = Math.max(STATS_BUCKET_MS, Math.round(binMs / STATS_BUCKET_MS) * STATS_BUCKET_MS);
  const last = Math.floor(now / bin) * bin;
  const first = last - (Math.ceil(spanMs / bin) - 1) * bin;
  const sums = cache ? await cache.read(store, first, now) : await readBuckets(store, first, now);
  const out: HistoryBin[] = [];
  for (let at = first; at <= last; at += bin) out.push({ at, ...zero() });
  for (const [bucket, d] of sums) {
    const i = Math.floor((Number(bucket) - first) / bin);
    const b = out[i];
    if (b === undefined) continue;
    for (const f of FIELDS) b[f] += d[f];
  }
  return out;
}

/** Reads the rates of the last day, as of `now`. */
export async function readRates(store: Store, now = store.now()): Promise<QueueRates> {
  const sums = await readBuckets(store, now - 24 * 3_600_000, now);
  // A sliding window: whole buckets inside it count in full; the bucket it starts in counts for
  // the part inside the window (as if its attempts were spread evenly), so "the last minute"
  // does not drop to zero each time a new minute begins.
  const sumSince = (since: number, field: StatField) => {
    let n = 0;
    for (const [bucket, d] of sums) {
      const start = Number(bucket);
      if (start >= since) n += d[field];
      else if (start + STATS_BUCKET_MS > since) {
        n += d[field] * (start + STATS_BUCKET_MS - since) / STATS_BUCKET_MS;
      }
    }
    return Math.round(n);
  };
  const perMinute = sumSince(now - 60_000, "ended");
  const ended = sumSince(-Infinity, "ended");
  const lastHour: QueueRates["lastHour"] = [];
  const first = Math.floor(now / STATS_BUCKET_MS) * STATS_BUCKET_MS - 59 * STATS_BUCKET_MS;
  for (let at = first; at <= now; at += STATS_BUCKET_MS) {
    const d = sums.get(bucketOf(at));
    lastHour.push({ at, ended: d?.ended ?? 0, failed: d?.failed ?? 0 });
  }
  return {
    perSecond: perMinute / 60,
    perMinute,
    perHour: sumSince(now - 3_600_000, "ended"),
    perDay: sumSince(now - 24 * 3_600_000, "ended"),
    failedLastHour: sumSince(now - 3_600_000, "failed"),
    avgRunMs: ended > 0 ? sumSince(-Infinity, "runMs") / ended : null,
    avgWaitMs: ended > 0 ? sumSince(-Infinity, "waitMs") / ended : null,
    lastHour,
  };
}

/**
 * Deletes buckets older than `keepMs` (default {@linkcode STATS_KEEP_MS}). Returns how many keys
 * went.
 */
export async function pruneStats(
  store: Store,
  now = store.now(),
  keepMs = STATS_KEEP_MS,
): Promise<number> {
  const prefix = store.keys.stat("minute");
  let atomic = store.kv.atomic();
  let n = 0;
  for await (
    const e of store.kv.list({ start: prefix, end: [...prefix, bucketOf(now - keepMs)] }, {
      limit: 1000,
    })
  ) {
    atomic.delete(e.key);
    if (++n % 500 === 0) {
      await commitAtomic(atomic);
      atomic = store.kv.atomic();
    }
  }
  if (n % 500 !== 0) await commitAtomic(atomic);
  return n;
}
