/**
 * What the dashboard reads besides the queue API: cluster heartbeats, latency figures from the
 * newest finished tasks, and the age of the oldest ready task. Every read is bounded (a page,
 * never a scan), so a page costs the same with ten tasks or ten million.
 *
 * @module
 */
import {
  type ClusterStat,
  listHeartbeats,
  readHeartbeat,
  type WorkerStat,
} from "../store/heartbeats.ts";
import { listTasks } from "../store/list.ts";
import type { Store } from "../store/store.ts";
import type { TaskRecord } from "../task/record.ts";
import { BucketCache, type MinuteSums, readHistory } from "../store/stats.ts";
import { delay } from "../runtime/delay.ts";

export { readRecords } from "../store/get.ts";
export { type OldestReady, oldestReady, READY_PAGE } from "../store/ready.ts";

/** How many finished tasks the latency figures and histograms are computed from. */
export const RECENT_SAMPLE = 200;

/** A cluster heartbeat older than this (by its own clock) is shown as stale. */
export const STALE_HEARTBEAT_MS = 10_000;

/** The spans the overview's charts show, and the width of their bars. */
export const CHART_RANGES = {
  "1h": { span: 3_600_000, bin: 60_000, label: "minute" },
  "24h": { span: 24 * 3_600_000, bin: 15 * 60_000, label: "15 minutes" },
  "72h": { span: 72 * 3_600_000, bin: 3_600_000, label: "hour" },
} as const;

/** One of {@linkcode CHART_RANGES}. */
export type ChartRange = keyof typeof CHART_RANGES;

/** The chart range a `range` query names; the last hour for anything else. */
export function chartRange(value: string | null): ChartRange {
  return value !== null && Object.hasOwn(CHART_RANGES, value) ? value as ChartRange : "1h";
}

/** The overview chart of `store` over `range`, from the per-minute sums in KV. */
export async function readChart(store: Store, range: ChartRange, now: number): Promise<ChartData> {
  const { span, bin } = CHART_RANGES[range];
  let cache = chartCaches.get(store);
  if (!cache) chartCaches.set(store, cache = new BucketCache());
  const bins = await readHistory(store, span, bin, now, cache);
  return {
    bucket: bin,
    span,
    now,
    points: bins.map((b) => ({ at: b.at, ended: b.ended, failed: b.failed, runMs: b.runMs })),
  };
}

/** Per store, the history buckets its charts have read (see `BucketCache`). */
const chartCaches = new WeakMap<Store, BucketCache>();

/** What the overview's charts draw: a queue's attempts per bar, oldest first. */
export interface ChartData {
  /** Bar width, ms. */
  bucket: number;
  /** The span shown, ms. */
  span: number;
  /** When it was read, epoch ms. */
  now: number;
  /** One entry a bar over the span. */
  points: Pick<MinuteSums, "at" | "ended" | "failed" | "runMs">[];
}

/** A heartbeat as read back, with the queues it was found under. */
export interface ClusterView {
  /** The cluster's own snapshot. */
  stat: ClusterStat;
  /** The served queues whose prefix holds this heartbeat. */
  seenIn: string[];
  /**
   * Whether it has stopped beating. Judged on the reader's clock: a heartbeat older than
   * {@linkcode STALE_HEARTBEAT_MS} by its own clock is read again one interval later, and one
   * that changed meanwhile is alive, its clock behind (see `skewMs`). Without `confirm`, the
   * beat's age alone decides.
   */
  silent: boolean;
  /** How far behind the reader's clock the cluster's is, when it was seen alive yet old. */
  skewMs: number | null;
}

/** Options for {@linkcode readClusters}. */
export interface ReadClustersOptions {
  /**
   * Read a silent-looking heartbeat again one heartbeat interval later (at most 5 s), so a live
   * cluster whose clock is behind is not taken for a dead one.
   * @default false
   */
  confirm?: boolean;
  /** Where "now" comes from. @default Date.now */
  now?: () => number;
}

/**
 * Every cluster heartbeat under the given queues, one entry per cluster. A damaged heartbeat is
 * skipped (reported through `onCorrupt`).
 */
export async function readClusters(
  stores: readonly Store[],
  onCorrupt?: (message: string) => void,
  options: ReadClustersOptions = {},
): Promise<ClusterView[]> {
  const byId = new Map<string, ClusterView & { store: Store; versionstamp: string }>();
  for (const store of stores) {
    for (const beat of await listHeartbeats(store, "eventual")) {
      const stat = beat.stat;
      if (stat === null) {
        onCorrupt?.(`Heartbeat at ${JSON.stringify(beat.key)} is not a cluster snapshot; skipped.`);
        continue;
      }
      const seen = byId.get(stat.id);
      const where = { store, versionstamp: beat.versionstamp };
      if (seen) {
        seen.seenIn.push(store.queue);
        if (stat.beatAt > seen.stat.beatAt) Object.assign(seen, { stat }, where);
      } else {byId.set(stat.id, {
          stat,
          seenIn: [store.queue],
          silent: false,
          skewMs: null,
          ...where,
        });}
    }
  }
  const clock = options.now ?? Date.now;
  const old = [...byId.values()].filter((v) => clock() - v.stat.beatAt > STALE_HEARTBEAT_MS);
  for (const v of old) v.silent = true;
  if (options.confirm && old.length > 0) {
    const interval = Math.max(...old.map((v) => v.stat.heartbeatMs ?? 2000));
    await delay(Math.min(5000, interval) + 250);
    for (const v of old) {
      const again = await readHeartbeat(v.store, v.stat.id);
      if (again === null || again.versionstamp === v.versionstamp) continue;
      if (again.stat === null) continue;
      v.stat = again.stat;
      v.silent = false;
      v.skewMs = Math.max(0, clock() - v.stat.beatAt);
    }
  }
  return [...byId.values()].map(({ stat, seenIn, silent, skewMs }) => ({
    stat,
    seenIn,
    silent,
    skewMs,
  })).sort((a, b) => a.stat.startedAt - b.stat.startedAt);
}

/** The newest finished (succeeded or failed) tasks, newest first: at most `limit`. */
export async function recentFinished(store: Store, limit = RECENT_SAMPLE): Promise<TaskRecord[]> {
  const [ok, bad] = await Promise.all([
    listTasks(store, { state: "succeeded", limit }),
    listTasks(store, { state: "failed", limit }),
  ]);
  return [...ok.tasks, ...bad.tasks]
    .sort((a, b) => (b.stoppedAt ?? 0) - (a.stoppedAt ?? 0))
    .slice(0, limit);
}

/** Wait (due → start) and run (start → stop) times of finished tasks, in milliseconds. */
export function durations(records: readonly TaskRecord[]): { wait: number[]; run: number[] } {
  const wait: number[] = [];
  const run: number[] = [];
  for (const r of records) {
    if (r.startedAt === null) continue;
    wait.push(Math.max(0, r.startedAt - r.runAt));
    if (r.stoppedAt !== null) run.push(Math.max(0, r.stoppedAt - r.startedAt));
  }
  return { wait, run };
}

/** The nearest-rank percentile `p` (0-100) of `values`; null when there are none. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1]!;
}

/** Whether a worker should stand out: marked stuck, or a task running far past its timeout. */
export function stuckReason(
  cluster: ClusterStat,
  worker: WorkerStat,
  timeouts: ReadonlyMap<string, number | null>,
  now: number,
): string | null {
  if (cluster.stuck?.includes(worker.name)) {
    return "its thread kept burning CPU after terminate";
  }
  for (const t of worker.tasks) {
    const timeout = timeouts.get(t.id);
    if (timeout && now - t.startedAt > 2 * timeout + 5_000) {
      return `task ${t.name} has run ${Math.round((now - t.startedAt) / 1000)} s, timeout ${
        Math.round(timeout / 1000)
      } s`;
    }
  }
  return null;
}
