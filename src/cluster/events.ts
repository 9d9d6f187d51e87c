/**
 * The cluster's typed events. They play the part of Django Q's signals: `task:start` is
 * `pre_execute`, `task:finish` is `post_execute`, `worker:spawn` is `post_spawn`.
 *
 * @module
 */
import type { TaskRecord } from "../task/record.ts";
import type { WorkerExitEvent } from "./worker_handle.ts";

/** The events of a {@linkcode Cluster}, by name, with their detail. */
export interface ClusterEventMap {
  /** A task was handed to a worker. */
  "task:start": { record: TaskRecord };
  /** A running task's progress was stored (its `progress` key). */
  "task:progress": { id: string; fraction: number; message: string | null };
  /** A task's attempt ended and its outcome was stored (`record` null if its lease was lost). */
  "task:finish": {
    id: string;
    /** `pushback`: rate limited, it waits again (see `RateLimitedError`). */
    kind: "success" | "failure" | "cancelled" | "pushback";
    record: TaskRecord | null;
  };
  /** A worker started (first generation or a reincarnation). */
  "worker:spawn": { worker: string; slot: number; generation: number };
  /** A worker ended. */
  "worker:exit": WorkerExitEvent;
  /** A terminated worker's thread kept burning CPU (Deno); the process must be recycled. */
  "cluster:stuck": { worker: string; tid: number };
  /** Something failed that the cluster survived: a hook, a commit, a corrupt record. */
  "cluster:error": { error: Error; context: string };
  /** Burst mode found nothing queued or running. */
  "cluster:idle": Record<string, never>;
  /** Running tasks of a cluster that stopped heartbeating were requeued. */
  "cluster:recovered": { cluster: string; tasks: number };
}

export { TypedEvents } from "./typed_events.ts";
