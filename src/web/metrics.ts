/**
 * `/metrics` in the Prometheus text format (version 0.0.4).
 *
 * - `kvq_tasks{queue,state}`: the state counters (gauges; never a scan).
 * - `kvq_recent_tasks{queue,func,state}`: finished tasks per function among the newest page of
 *   succeeded and failed tasks (at most {@linkcode RECENT_SAMPLE} per queue) — cheap, bounded,
 *   and therefore not a total.
 * - `kvq_recent_task_wait_seconds` / `kvq_recent_task_run_seconds`: histograms over that same
 *   window. They describe the window, not a running total: read quantiles from them, don't
 *   `rate()` them.
 * - `kvq_oldest_ready_age_seconds{queue}`, cluster and worker gauges from the heartbeats.
 *
 * @module
 */
import { TASK_STATES } from "../store/keys.ts";
import type { ClusterView } from "./data.ts";
import { durations, type OldestReady, RECENT_SAMPLE } from "./data.ts";
import type { StateCounts } from "../store/counters.ts";
import type { TaskRecord } from "../task/record.ts";

/** Histogram bucket bounds, in seconds. */
export const BUCKETS: readonly number[] = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
  300,
  1800,
];

/** Escapes a label value: backslash, double quote and newline. */
export function labelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function labels(l: Record<string, string>): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${labelValue(v)}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

/** What one queue contributes. */
export interface QueueMetrics {
  queue: string;
  counts: StateCounts;
  recent: readonly TaskRecord[];
  oldest: OldestReady | null;
  /** Damaged records set aside (see `kvq doctor`). */
  damaged?: number;
}

/** Renders the metrics text. */
export function renderMetrics(
  queues: readonly QueueMetrics[],
  clusters: readonly ClusterView[],
  now: number,
): string {
  const out: string[] = [];
  const head = (name: string, type: string, help: string) =>
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);

  head("kvq_tasks", "gauge", "Tasks in each state, from the state counters.");
  for (const q of queues) {
    for (const s of TASK_STATES) {
      out.push(`kvq_tasks${labels({ queue: q.queue, state: s })} ${q.counts[s]}`);
    }
  }

  head(
    "kvq_damaged_records",
    "gauge",
    "Task records that can't be decoded, set aside by the clusters (kvq doctor lists them).",
  );
  for (const q of queues) {
    out.push(`kvq_damaged_records${labels({ queue: q.queue })} ${q.damaged ?? 0}`);
  }

  head(
    "kvq_recent_tasks",
    "gauge",
    `Finished tasks per function among the newest ${RECENT_SAMPLE} succeeded and failed tasks of each queue.`,
  );
  for (const q of queues) {
    const by = new Map<string, number>();
    for (const r of q.recent) {
      const k = `${r.func}\u0000${r.state}`;
      by.set(k, (by.get(k) ?? 0) + 1);
    }
    for (const [k, n] of [...by].sort()) {
      const [func, state] = k.split("\u0000") as [string, string];
      out.push(`kvq_recent_tasks${labels({ queue: q.queue, func, state })} ${n}`);
    }
  }

  const histogram = (name: string, help: string, pick: "wait" | "run") => {
    head(name, "histogram", help);
    for (const q of queues) {
      const values = durations(q.recent)[pick].map((ms) => ms / 1000);
      for (const le of BUCKETS) {
        out.push(
          `${name}_bucket${labels({ queue: q.queue, le: String(le) })} ${
            values.filter((v) => v <= le).length
          }`,
        );
      }
      out.push(`${name}_bucket${labels({ queue: q.queue, le: "+Inf" })} ${values.length}`);
      out.push(
        `${name}_sum${labels({ queue: q.queue })} ${
          Math.round(values.reduce((a, b) => a + b, 0) * 1000) / 1000
        }`,
      );
      out.push(`${name}_count${labels({ queue: q.queue })} ${values.length}`);
    }
  };
  histogram(
    "kvq_recent_task_wait_seconds",
    "Time from due to start of the newest finished tasks (a window, not a running total).",
    "wait",
  );
  histogram(
    "kvq_recent_task_run_seconds",
    "Time from start to stop of the newest finished tasks (a window, not a running total).",
    "run",
  );

  head("kvq_oldest_ready_age_seconds", "gauge", "How long the oldest ready task has been due.");
  for (const q of queues) {
    out.push(
      `kvq_oldest_ready_age_seconds${labels({ queue: q.queue })} ${
        q.oldest ? q.oldest.age / 1000 : 0
      }`,
    );
  }

  head("kvq_cluster_heartbeat_age_seconds", "gauge", "Seconds since the cluster's last heartbeat.");
  for (const { stat } of clusters) {
    out.push(
      `kvq_cluster_heartbeat_age_seconds${labels({ cluster: stat.id, host: stat.host })} ${
        Math.max(0, now - stat.beatAt) / 1000
      }`,
    );
  }
  const clusterGauge = (name: string, help: string, value: (c: ClusterView) => number) => {
    head(name, "gauge", help);
    for (const c of clusters) out.push(`${name}${labels({ cluster: c.stat.id })} ${value(c)}`);
  };
  clusterGauge("kvq_cluster_workers", "Workers of the cluster.", (c) => c.stat.workers.length);
  clusterGauge(
    "kvq_cluster_workers_busy",
    "Workers running at least one task.",
    (c) => c.stat.workers.filter((w) => w.tasks.length > 0).length,
  );
  clusterGauge("kvq_cluster_cpu_percent", "CPU of the cluster process.", (c) => c.stat.cpu);
  clusterGauge(
    "kvq_cluster_rss_bytes",
    "Resident memory of the cluster process.",
    (c) => c.stat.rss,
  );
  clusterGauge(
    "kvq_cluster_reincarnations",
    "Workers respawned since the cluster started.",
    (c) => c.stat.reincarnations,
  );
  clusterGauge(
    "kvq_cluster_stuck_workers",
    "Workers marked stuck.",
    (c) => c.stat.stuck?.length ?? 0,
  );
  clusterGauge(
    "kvq_cluster_processed",
    "Task attempts the cluster ran since it started (a retried task counts each attempt).",
    (c) => c.stat.processed,
  );

  const workerGauge = (
    name: string,
    help: string,
    value: (w: ClusterView["stat"]["workers"][number]) => number,
  ) => {
    head(name, "gauge", help);
    for (const { stat } of clusters) {
      for (const w of stat.workers) {
        out.push(`${name}${labels({ cluster: stat.id, worker: w.name })} ${value(w)}`);
      }
    }
  };
  workerGauge("kvq_worker_busy", "Tasks the worker is running.", (w) => w.tasks.length);
  workerGauge("kvq_worker_cpu_percent", "CPU of the worker's thread.", (w) => w.cpu);
  workerGauge("kvq_worker_heap_bytes", "Heap the worker last reported.", (w) => w.heap);
  workerGauge("kvq_worker_generation", "The worker slot's generation.", (w) => w.generation);
  workerGauge("kvq_worker_tasks_run", "Tasks this worker generation ran.", (w) => w.tasksRun);
  return out.join("\n") + "\n";
}
