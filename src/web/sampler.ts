/**
 * The overview's throughput and failure-rate series. KV keeps per-state counters, not a log of
 * finishes, so the dashboard samples the counters every few seconds from the moment it starts
 * and keeps the last hour in memory. Between two samples, the tasks that finished are the rise
 * of the `succeeded` and `failed` counters (a fall, from a purge or a retry, counts as none), so
 * a delete or retry inside one sample interval can hide finishes. A restart of the dashboard
 * starts an empty series.
 *
 * @module
 */
import { readStateCounts, type StateCounts } from "../store/counters.ts";
import type { Store } from "../store/store.ts";

/** One point of the series. */
export interface Sample {
  /** When it was taken (epoch ms). */
  t: number;
  /** Tasks finished per minute since the previous sample (succeeded + failed). */
  rate: number;
  /** Failed share of those finishes, 0-1; null when none finished. */
  failRate: number | null;
  /** Tasks queued at that time. */
  queued: number;
  /** Tasks running at that time. */
  running: number;
}

/** Options for {@linkcode Sampler}. */
export interface SamplerOptions {
  /**
   * Milliseconds between samples.
   * @default 5000
   */
  interval?: number;
  /**
   * How much history to keep, in milliseconds.
   * @default 3_600_000 (one hour)
   */
  window?: number;
  /** Where "now" comes from. @default Date.now */
  clock?: () => number;
}

/** Samples the state counters of some queues at a fixed interval. */
export class Sampler {
  readonly #stores: readonly Store[];
  readonly #interval: number;
  readonly #capacity: number;
  readonly #clock: () => number;
  #timer: ReturnType<typeof setInterval> | null = null;
  #previous: { t: number; succeeded: number; failed: number } | null = null;
  #points: Sample[] = [];
  #counts = new Map<string, StateCounts>();
  #sampling: Promise<void> | null = null;

  constructor(stores: readonly Store[], options: SamplerOptions = {}) {
    this.#stores = stores;
    this.#interval = options.interval ?? 5000;
    if (!Number.isSafeInteger(this.#interval) || this.#interval < 100) {
      throw new RangeError(
        `Sampler interval must be an integer of at least 100 ms: received ${this.#interval}`,
      );
    }
    this.#capacity = Math.ceil((options.window ?? 3_600_000) / this.#interval) + 1;
    this.#clock = options.clock ?? Date.now;
  }

  /** Milliseconds between samples. */
  get interval(): number {
    return this.#interval;
  }

  /** Takes a first sample and then one every interval. */
  async start(): Promise<void> {
    await this.sample();
    this.#timer = setInterval(() => void this.sample(), this.#interval);
  }

  /** The next sample sets a new baseline (the set of queues changed). */
  restartBaseline(): void {
    this.#previous = null;
  }

  /** Stops sampling. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#sampling;
  }

  /** The series, oldest first. */
  get points(): readonly Sample[] {
    return this.#points;
  }

  /** The counters read by the latest sample, by queue. */
  get counts(): ReadonlyMap<string, StateCounts> {
    return this.#counts;
  }

  /** Reads the counters once and appends a point (the first read only sets the baseline). */
  sample(): Promise<void> {
    return this.#sampling ??= this.#sample().finally(() => this.#sampling = null);
  }

  async #sample(): Promise<void> {
    let succeeded = 0, failed = 0, queued = 0, running = 0;
    try {
      for (const store of this.#stores) {
        if (store.handle.closed) return;
        const c = await readStateCounts(store);
        this.#counts.set(store.queue, c);
        succeeded += c.succeeded;
        failed += c.failed;
        queued += c.queued;
        running += c.running;
      }
    } catch (error) {
      console.error("kvq dashboard: sampling counters failed:", (error as Error).message);
      return;
    }
    const t = this.#clock();
    const prev = this.#previous;
    this.#previous = { t, succeeded, failed };
    if (prev === null) return;
    const done = Math.max(0, succeeded - prev.succeeded);
    const bad = Math.max(0, failed - prev.failed);
    const minutes = Math.max(1, t - prev.t) / 60_000;
    this.#points.push({
      t,
      rate: Math.round(((done + bad) / minutes) * 10) / 10,
      failRate: done + bad === 0 ? null : bad / (done + bad),
      queued,
      running,
    });
    if (this.#points.length > this.#capacity) {
      this.#points.splice(0, this.#points.length - this.#capacity);
    }
  }
}
