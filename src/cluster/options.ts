/**
 * The options of a {@linkcode Cluster}: what each one means, its default, and the validation
 * that refuses a bad value with its name and range before anything starts. Also the queue
 * weights and the weighted order in which free places go to the queues.
 *
 * @module
 */
import { STATS_KEEP_MS } from "../store/stats.ts";
import { availableParallelism } from "node:os";
import { DEFAULT_MAX_CRASHES, DEFAULT_RETRY, type RetryPolicy } from "../task/backoff.ts";
import { MAX_TIMEOUT_MS } from "../store/limits.ts";
import { validateQueueName } from "../store/keys.ts";
import { type Retention, type RetentionOptions, validateRetention } from "../store/prune.ts";
import type { KvHandle } from "../store/store.ts";

/** Options for {@linkcode Cluster}. */
export interface ClusterOptions {
  /** Task modules (paths or URLs) every worker imports. */
  tasks: string[];
  /**
   * A KV path, `:memory:`, URL, or an opened {@linkcode KvHandle} (not closed by the cluster).
   * @default KVQ_KV, else `.kvq/kv.sqlite3`
   */
  kv?: string | KvHandle;
  /**
   * The queues to serve. Free workers are shared among them in proportion to their weights
   * (`{ name: "mail", weight: 3 }`, or `"mail:3"`); a paused queue gets none.
   * @default ["default"]
   */
  queues?: (string | QueueWeight)[];
  /**
   * Succeeded tasks to keep; the heartbeat prunes older ones.
   * @default { count: 250 } (Django Q's save_limit)
   */
  keepSucceeded?: Retention;
  /**
   * Failed and cancelled tasks to keep.
   * @default all
   */
  keepFailed?: Retention;
  /**
   * Apply the retention counts per func or per group (Django Q's save_limit_per).
   * @default one count per queue
   */
  keepPer?: "func" | "group";
  /**
   * Number of workers.
   * @default the number of CPUs
   */
  workers?: number;
  /**
   * Tasks one worker runs at once (for I/O-bound tasks). When a timeout terminates such a
   * worker, its other tasks come back as retryable failed attempts.
   * @default 1
   */
  concurrency?: number;
  /**
   * The most tasks claimed ahead of a free place (Django Q's `queue_limit`), so short tasks are
   * claimed in batches instead of one commit per task. The cluster holds only as many as its
   * workers would finish in about {@linkcode PREFETCH_WINDOW_MS} at the task durations it sees,
   * so long tasks are not hoarded while another cluster sits idle. A held task that never
   * started goes back to `queued` uncounted if the cluster dies; a graceful stop releases it at
   * once. 0 claims only for free places.
   * @default 100
   */
  prefetch?: number;
  /**
   * Quarantine: a task that was running when its cluster died is retried alone in its next
   * cluster (nothing else runs there meanwhile), and after this many crashes while it ran
   * alone it ends failed with a `PoisonTaskError` naming the clusters it took down. Crashes
   * use up no attempt.
   * @default 2
   */
  maxCrashes?: number;
  /**
   * How long the per-minute history (attempts started, ended, failed, retried; run and wait
   * time) is kept, in ms, for `kvq info --history` and the dashboard's charts: older minutes are
   * pruned by the heartbeat. At least an hour.
   * @default 73 hours (72 h shown, an hour of slack)
   */
  historyKeep?: number;
  /**
   * Milliseconds an attempt may run, for tasks that set none; 0 for no limit.
   * @default 0
   */
  timeout?: number;
  /**
   * Milliseconds between aborting a task's signal and terminating its worker.
   * @default 1000
   */
  abortGrace?: number;
  /**
   * Milliseconds a graceful stop waits for running tasks before releasing them.
   * @default 10000
   */
  grace?: number;
  /**
   * Retries for tasks that set none.
   * @default 3 attempts, exponential backoff from 1 s
   */
  retry?: RetryPolicy;
  /**
   * Replace a worker after it ran this many tasks; 0 never.
   * @default 0
   */
  recycle?: number;
  /**
   * Replace a worker whose heap passes this many MB; 0 never.
   * @default 0
   */
  maxMemoryMb?: number;
  /**
   * Exit once nothing is queued or running and no retry of a task this cluster ran still waits
   * for its backoff. Other delayed tasks (an eta in the future) are left for a later run.
   * @default false
   */
  burst?: boolean;
  /**
   * Milliseconds between heartbeats.
   * @default 2000
   */
  heartbeat?: number;
  /**
   * Milliseconds a heartbeat may stand still before its cluster's tasks are requeued.
   * @default 10000
   */
  leaseTimeout?: number;
  /**
   * Use no native KV queue (forced on for remote KV).
   * @default false
   */
  noNativeQueue?: boolean;
  /**
   * Reincarnations of this host before this cluster started: a sentinel that restarts a stuck
   * host passes how often it did, so `kvq info` counts the whole life of the service.
   * @default 0
   */
  priorReincarnations?: number;
  /** Where "now" comes from. @default Date.now */
  clock?: () => number;
  /**
   * Signing secrets: the cluster runs only tasks whose signature verifies with one of them, and
   * signs the tasks it creates (hooks, chain steps, schedules). A list's first entry signs.
   * @default KVQ_SECRET (and KVQ_OLD_SECRETS), else none: tasks are not checked
   */
  secret?: string | readonly string[] | null;
  /** An error reporter (Sentry and friends): called for every error the cluster survives. */
  onError?: (error: Error, context: string) => void;
}

/** A queue a cluster serves, with its share of the workers. */
export interface QueueWeight {
  /** The queue name. */
  name: string;
  /**
   * Its share: a queue of weight 3 gets three claims for each one of a queue of weight 1.
   * @default 1
   */
  weight?: number;
  /**
   * The most of its tasks this cluster runs (or holds claimed) at once, whatever its workers:
   * a local cap, beside the queue's own limits for all clusters (`Queue.setLimits`).
   * @default no cap
   */
  max?: number;
}

/** A queue a cluster serves, checked: its weight filled in, and its local cap if it has one. */
export type ServedQueue = Required<Omit<QueueWeight, "max">> & Pick<QueueWeight, "max">;

/**
 * Parses the queues option: names, `"name:weight"` or `"name:weight@max"` text (`"mail@2"`:
 * weight 1, at most 2 at once here), or `{ name, weight, max }`.
 *
 * @throws {TypeError | RangeError} naming the bad entry.
 */
export function parseQueueWeights(
  queues: readonly (string | QueueWeight)[],
): ServedQueue[] {
  if (!Array.isArray(queues) || queues.length === 0) {
    throw new TypeError(
      `Cluster option queues must name at least one queue: received ${JSON.stringify(queues)}`,
    );
  }
  const out: ServedQueue[] = [];
  for (const q of queues) {
    let name: string;
    let weight: number;
    let max: number | undefined;
    if (typeof q === "string") {
      const m = /^(.*?)(?::(\d+))?(?:@(\d+))?$/.exec(q.trim())!;
      name = m[1]!;
      weight = m[2] === undefined ? 1 : Number(m[2]);
      max = m[3] === undefined ? undefined : Number(m[3]);
    } else if (typeof q === "object" && q !== null) {
      name = q.name;
      weight = q.weight ?? 1;
      max = q.max;
    } else {
      throw new TypeError(
        `Cluster option queues holds ${JSON.stringify(q)}: expected a name or { name, weight }`,
      );
    }
    validateQueueName(name);
    if (!Number.isSafeInteger(weight) || weight < 1 || weight > 1000) {
      throw new RangeError(
        `Weight of queue ${name} must be an integer from 1 to 1000: received ${weight}`,
      );
    }
    if (max !== undefined && (!Number.isSafeInteger(max) || max < 1)) {
      throw new RangeError(
        `The most tasks of queue ${name} at once here (max, "${name}@N") must be an integer of at least 1: received ${max}`,
      );
    }
    if (out.some((o) => o.name === name)) {
      throw new TypeError(`Cluster option queues names ${JSON.stringify(name)} twice`);
    }
    out.push(max === undefined ? { name, weight } : { name, weight, max });
  }
  return out;
}

/** The options with their defaults filled in and checked. */
export type ResolvedOptions =
  & Required<
    Omit<
      ClusterOptions,
      | "kv"
      | "clock"
      | "onError"
      | "keepSucceeded"
      | "keepFailed"
      | "keepPer"
      | "queues"
      | "secret"
      | "priorReincarnations"
    >
  >
  & ClusterOptions;

/** What {@linkcode resolveOptions} gives the cluster. */
export interface Resolved {
  options: ResolvedOptions;
  queues: ServedQueue[];
  retention: RetentionOptions;
  /** The weighted order in which free places go to the queues: `a:2,b:1` is [a, a, b]. */
  turns: number[];
  priorReincarnations: number;
}

/**
 * Checks `options` and fills in the defaults.
 *
 * @throws {TypeError | RangeError} naming the option, what it must be, and what was given.
 */
export function resolveOptions(options: ClusterOptions): Resolved {
  if (!Array.isArray(options.tasks) || options.tasks.length === 0) {
    throw new TypeError(
      "Cluster needs at least one task module in options.tasks (e.g. ['./tasks.ts'])",
    );
  }
  const positive = (name: string, value: number, min: number) => {
    if (!Number.isSafeInteger(value) || value < min) {
      throw new RangeError(
        `Cluster option ${name} must be an integer >= ${min}: received ${value}`,
      );
    }
    return value;
  };
  const queues = parseQueueWeights(options.queues ?? ["default"]);
  const retention: RetentionOptions = {};
  if (options.keepSucceeded) retention.keepSucceeded = options.keepSucceeded;
  if (options.keepFailed) retention.keepFailed = options.keepFailed;
  if (options.keepPer) retention.keepPer = options.keepPer;
  validateRetention(retention);
  const turns = weightedTurns(queues.map((q) => q.weight));
  const resolved: ResolvedOptions = {
    ...options,
    workers: positive("workers", options.workers ?? availableParallelism(), 1),
    concurrency: positive("concurrency", options.concurrency ?? 1, 1),
    prefetch: positive("prefetch", options.prefetch ?? 100, 0),
    maxCrashes: positive("maxCrashes", options.maxCrashes ?? DEFAULT_MAX_CRASHES, 1),
    historyKeep: positive("historyKeep", options.historyKeep ?? STATS_KEEP_MS, 3_600_000),
    timeout: positive("timeout", options.timeout ?? 0, 0),
    abortGrace: positive("abortGrace", options.abortGrace ?? 1000, 0),
    grace: positive("grace", options.grace ?? 10_000, 0),
    retry: options.retry ?? DEFAULT_RETRY,
    recycle: positive("recycle", options.recycle ?? 0, 0),
    maxMemoryMb: positive("maxMemoryMb", options.maxMemoryMb ?? 0, 0),
    burst: options.burst ?? false,
    heartbeat: positive("heartbeat", options.heartbeat ?? 2000, 50),
    leaseTimeout: positive("leaseTimeout", options.leaseTimeout ?? 10_000, 100),
    noNativeQueue: options.noNativeQueue ?? false,
  };
  for (const name of ["timeout", "abortGrace", "grace", "heartbeat", "leaseTimeout"] as const) {
    if (resolved[name] > MAX_TIMEOUT_MS) {
      throw new RangeError(
        `Cluster option ${name} must be at most ${MAX_TIMEOUT_MS} ms (about 24.8 days): received ${
          resolved[name]
        }`,
      );
    }
  }
  if (resolved.prefetch > 1000) {
    // The started list names up to this many ids in one KV value (64 KiB).
    throw new RangeError(
      `Cluster option prefetch must be at most 1000: received ${resolved.prefetch}`,
    );
  }
  if (resolved.workers > 999) {
    throw new RangeError(
      `Cluster option workers must be at most 999: received ${resolved.workers}`,
    );
  }
  const priorReincarnations = positive("priorReincarnations", options.priorReincarnations ?? 0, 0);
  return { options: resolved, queues, retention, turns, priorReincarnations };
}

/**
 * Spreads turns by weight, smoothly (nginx's smooth weighted round-robin): weights [3, 1] give
 * [0, 0, 1, 0], so a queue with a small weight is not served only at the end of each cycle.
 */
function weightedTurns(weights: number[]): number[] {
  const total = weights.reduce((a, b) => a + b, 0);
  const current = weights.map(() => 0);
  const out: number[] = [];
  for (let n = 0; n < total; n++) {
    let best = 0;
    for (let i = 0; i < weights.length; i++) {
      current[i]! += weights[i]!;
      if (current[i]! > current[best]!) best = i;
    }
    current[best]! -= total;
    out.push(best);
  }
  return out;
}
