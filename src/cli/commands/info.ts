/**
 * `kvq info` (Django Q's `qinfo`): per queue, the clusters serving it, task counts, schedules,
 * throughput and average run and wait times. Every figure comes from counters, heartbeats and
 * per-minute buckets: no scan of the tasks.
 *
 * Also the helpers `kvq monitor` and `kvq memory` share: finding the queues of a KV store and
 * reading their clusters.
 *
 * @module
 */
import { countSchedules } from "../../schedule/list.ts";
import { type Command, type CommandContext, UsageError } from "../command.ts";
import { readStateCounts, type StateCounts } from "../../store/counters.ts";
import { pausedInfo, type PauseInfo } from "../../store/pause.ts";
import { limitsText, type QueueLimits, readLimits } from "../../store/flow.ts";
import { TASK_STATES, validateQueueName } from "../../store/keys.ts";
import { listQueueNames, MAX_DISCOVERED_QUEUES } from "../../store/queues.ts";
import { type QueueRates, readHistory, readRates } from "../../store/stats.ts";
import { binFor, historyLines, MAX_HISTORY_MS, SPARK_BINS } from "../history.ts";
import { parseDuration } from "./purge.ts";
import { KvHandle, Store } from "../../store/store.ts";
import { type ClusterView, readClusters } from "../../web/data.ts";
import { bytes, duration, plural } from "../../web/format.ts";
import { countDamaged } from "../../store/damaged.ts";

/** The KV handle and the stores of the queues a command looks at. */
export interface OpenedQueues {
  handle: KvHandle;
  stores: Store[];
  /** Whether more queues exist than were discovered. */
  more: boolean;
  close(): void;
}

/**
 * Opens the KV store of `--kv` and the queues of `--queue A,B`, or every queue found in it (or
 * `default` when there is none yet).
 */
export async function openQueues(ctx: CommandContext): Promise<OpenedQueues> {
  const named = typeof ctx.values.queue === "string"
    ? ctx.values.queue.split(",").map(queueNameOf).filter(Boolean)
    : [];
  for (const q of named) {
    try {
      validateQueueName(q);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  }
  const handle = await KvHandle.open({ kv: ctx.kv });
  try {
    let names = named;
    let more = false;
    if (names.length === 0) {
      const found = await listQueueNames(handle.kv);
      names = found.names.filter((n) => {
        try {
          validateQueueName(n);
          return true;
        } catch {
          return false;
        }
      });
      more = found.more;
      if (names.length === 0) names = ["default"];
    }
    const stores = names.map((q) => new Store(handle, q));
    return { handle, stores, more, close: () => handle.close() };
  } catch (error) {
    handle.close();
    throw error;
  }
}

/** What `kvq info --json` prints for one queue. */
export interface QueueInfo {
  name: string;
  /** Set while the queue is paused (`kvq pause`). */
  paused: PauseInfo | null;
  /** Its flow-control limits (`kvq limit`), or null. */
  limits: QueueLimits | null;
  clusters: number;
  workers: number;
  reincarnations: number;
  counts: StateCounts;
  schedules: number;
  /** Damaged records set aside (`kvq doctor` lists them). */
  damaged: number;
  rates: Omit<QueueRates, "lastHour">;
}

/** What `kvq info --json` prints for one cluster. */
export interface ClusterInfo {
  id: string;
  host: string;
  pid: number;
  runtime: string;
  version: string;
  state: string;
  queues: string[];
  startedAt: number;
  beatAt: number;
  uptimeMs: number;
  stale: boolean;
  /** How far behind this reader's clock the cluster's is, when it beats yet looks old. */
  skewMs: number | null;
  workers: number;
  reincarnations: number;
  processed: number;
  succeeded: number;
  failed: number;
  rss: number;
  cpu: number;
}

/** Reads everything `kvq info` shows. */
export async function readInfo(
  opened: OpenedQueues,
  now = Date.now(),
  onCorrupt?: (message: string) => void,
): Promise<{ kv: string; queues: QueueInfo[]; clusters: ClusterInfo[]; more: boolean }> {
  const views = await readClusters(opened.stores, onCorrupt, { confirm: true });
  const queues: QueueInfo[] = [];
  for (const store of opened.stores) {
    const [counts, rates, schedules, paused, damaged, limits] = await Promise.all([
      readStateCounts(store),
      readRates(store, now),
      countSchedules(store),
      pausedInfo(store),
      countDamaged(store),
      readLimits(store),
    ]);
    const serving = views.filter((v) => v.seenIn.includes(store.queue) && !v.silent);
    const { lastHour: _lastHour, ...flat } = rates;
    queues.push({
      name: store.queue,
      paused,
      limits,
      clusters: serving.length,
      workers: serving.reduce((n, v) => n + v.stat.workers.length, 0),
      reincarnations: serving.reduce((n, v) => n + (v.stat.reincarnations ?? 0), 0),
      counts,
      schedules,
      damaged,
      rates: flat,
    });
  }
  return {
    kv: opened.handle.location.location,
    queues,
    clusters: views.map((v) => clusterInfo(v, now)),
    more: opened.more,
  };
}

function clusterInfo(v: ClusterView, now: number): ClusterInfo {
  const s = v.stat;
  return {
    id: s.id,
    host: s.host,
    pid: s.pid,
    runtime: s.runtime,
    version: s.version,
    state: s.state,
    queues: s.queues,
    startedAt: s.startedAt,
    beatAt: s.beatAt,
    uptimeMs: Math.max(0, now - s.startedAt),
    stale: v.silent,
    skewMs: v.skewMs,
    workers: s.workers.length,
    reincarnations: s.reincarnations ?? 0,
    processed: s.processed ?? 0,
    succeeded: s.succeeded ?? 0,
    failed: s.failed ?? 0,
    rss: s.rss ?? 0,
    cpu: s.cpu ?? 0,
  };
}

/** ANSI styles, or none when colour is off. */
export function styles(color: boolean): Record<
  "bold" | "dim" | "red" | "green" | "yellow",
  (
    s: string,
  ) => string
> {
  const wrap = (code: string) => (s: string) => color ? `\x1b[${code}m${s}\x1b[0m` : s;
  return {
    bold: wrap("1"),
    dim: wrap("2"),
    red: wrap("31"),
    green: wrap("32"),
    yellow: wrap("33"),
  };
}

/** A rate for humans: `0.17`, `12`, `1,234`. */
function rate(n: number): string {
  return n >= 10 || Number.isInteger(n) ? Math.round(n).toLocaleString("en-US") : n.toFixed(2);
}

/** `kvq info` as text. */
export function renderInfo(
  info: Awaited<ReturnType<typeof readInfo>>,
  color: boolean,
): string[] {
  const c = styles(color);
  const lines = [c.bold(`kvq on ${info.kv}`)];
  for (const q of info.queues) {
    const counts = TASK_STATES.map((s) => {
      const text = `${s} ${q.counts[s].toLocaleString("en-US")}`;
      return s === "failed" && q.counts[s] > 0 ? c.red(text) : text;
    }).join("  ");
    const r = q.rates;
    lines.push(
      "",
      c.bold(`queue ${q.name}`) + (q.paused
        ? c.yellow(
          `  PAUSED since ${new Date(q.paused.at).toISOString()}${
            q.paused.until !== null ? ` until ${new Date(q.paused.until).toISOString()}` : ""
          }${q.paused.reason ? `: ${q.paused.reason}` : ""}`,
        )
        : ""),
      `  clusters   ${q.clusters}   workers ${q.workers}   reincarnations ${q.reincarnations}`,
      `  tasks      ${counts}   (tasks by state now)`,
      `  schedules  ${q.schedules}`,
      ...(q.limits ? [`  limits     ${limitsText(q.limits)}   ('kvq limit ${q.name}')`] : []),
      ...(q.damaged > 0
        ? [c.red(`  damaged    ${q.damaged} record(s) set aside; 'kvq doctor' lists them`)]
        : []),
      `  attempts   ${rate(r.perSecond)}/s   ${rate(r.perMinute)}/min   ${rate(r.perHour)}/h   ${
        rate(r.perDay)
      }/day ended   (${plural(r.failedLastHour, "failed attempt")} in the last hour)`,
      `  average    run ${duration(r.avgRunMs)}   wait ${duration(r.avgWaitMs)}   (last 24 h)`,
    );
  }
  lines.push("", c.bold("clusters"));
  if (info.clusters.length === 0) lines.push("  none running");
  for (const k of info.clusters) {
    const state = k.stale
      ? c.yellow(`silent ${duration(Date.now() - k.beatAt)}`)
      : k.skewMs !== null
      ? `${k.state} (clock ${duration(k.skewMs)} behind)`
      : k.state;
    lines.push(
      `  ${k.id}  ${k.host} pid ${k.pid}  ${state}  up ${duration(k.uptimeMs)}  ${
        plural(k.workers, "worker")
      }  ${plural(k.processed, "attempt")} run (${k.failed} failed)  ${
        plural(k.reincarnations, "reincarnation")
      }  rss ${bytes(k.rss)}  ${k.runtime} ${k.version}  queues ${k.queues.join(",")}`,
    );
  }
  if (info.more) {
    lines.push(
      "",
      c.yellow(`More than ${MAX_DISCOVERED_QUEUES} queues: name them with --queue A,B.`),
    );
  }
  return lines;
}

/** `kvq info [--queue A,B]` */
export const infoCommand: Command = {
  name: "info",
  readsOnly: true,
  readsCopy: true,
  summary: "Show clusters, task counts, throughput and timings per queue (Django Q's qinfo)",
  usage: "kvq info [--queue A,B] [--history DURATION] [--json]",
  options: { history: { type: "string" } },
  help: `  --queue A,B       only these queues (default: every queue found in the KV store)
  --history D       each queue's history over the last D (1m to 31d, e.g. 1h, 24h, 3d; the
                    clusters keep 72h unless told otherwise with --history-keep): a
                    sparkline of attempts ended and failed, and a table of attempts started,
                    succeeded, failed and retried with mean run and wait times

Counts come from counters, rates and averages from per-minute sums of the last 24 hours, and
clusters from their heartbeats: nothing scans the tasks. Queues are found with one key read per
queue (at most ${MAX_DISCOVERED_QUEUES}).

Examples:
  kvq info
  kvq info --queue emails --json
  kvq info --queue emails --history 24h`,
  async run(ctx) {
    if (ctx.positionals.length > 0) {
      throw new UsageError(`Unexpected argument ${JSON.stringify(ctx.positionals[0])}`);
    }
    const span = historySpan(ctx.values.history);
    const opened = await openQueues(ctx);
    try {
      if (span !== null) {
        const bin = binFor(span, SPARK_BINS);
        const all = await Promise.all(
          opened.stores.map(async (s) => ({
            queue: s.queue,
            bins: await readHistory(s, span, bin, Date.now()),
          })),
        );
        if (ctx.json) ctx.out(JSON.stringify({ spanMs: span, binMs: bin, queues: all }));
        else {
          for (const [i, q] of all.entries()) {
            if (i > 0) ctx.out("");
            for (const line of historyLines(q.queue, q.bins, span)) ctx.out(line);
          }
        }
        return 0;
      }
      const read = await readInfo(opened, Date.now(), (m) => ctx.err(`kvq: ${m}`));
      // A read-only store is read through a copy: name the store, not the copy.
      const info = ctx.copyOf ? { ...read, kv: ctx.copyOf, copy: true } : read;
      if (ctx.json) ctx.out(JSON.stringify(info));
      else for (const line of renderInfo(info, ctx.tty)) ctx.out(line);
      return 0;
    } finally {
      opened.close();
    }
  },
};

/** The span of `--history`, or null without it: a usage error naming a bad value. */
function historySpan(value: unknown): number | null {
  if (value === undefined) return null;
  let ms: number;
  try {
    ms = parseDuration(String(value));
  } catch (error) {
    throw new UsageError(`--history: ${(error as Error).message}`);
  }
  if (ms < 60_000 || ms > MAX_HISTORY_MS) {
    throw new UsageError(
      `--history must be from 1m to ${
        MAX_HISTORY_MS / 3_600_000
      }h (what the clusters keep): received ${JSON.stringify(value)}`,
    );
  }
  return ms;
}

/**
 * The queue a `--queue` entry names: `mail:3@2` is a cluster's weighted, capped queue (see
 * `parseQueueWeights`), and its name is what comes before the colon or the `@`.
 */
export function queueNameOf(entry: string): string {
  return entry.trim().replace(/(?::\d+)?(?:@\d+)?$/, "");
}
