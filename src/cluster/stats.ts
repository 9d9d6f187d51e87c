/**
 * What a cluster reports about itself in its heartbeat, and `Cluster.stats()` returns: its
 * state, workers and their tasks, counters, memory and CPU.
 *
 * @module
 */
import type { HeartbeatInfo } from "./liveness.ts";

/** Where a cluster is in its life. */
export type ClusterState = "new" | "running" | "stopping" | "stopped";

/** A worker as the heartbeat reports it. */
export interface WorkerStat {
  name: string;
  slot: number;
  generation: number;
  state: string;
  tasks: { id: string; name: string; func: string; startedAt: number }[];
  tasksRun: number;
  cpu: number;
  heap: number;
  tid: number | null;
}

/** What a cluster's heartbeat holds. */
export interface ClusterStat extends HeartbeatInfo {
  runtime: string;
  version: string;
  state: ClusterState;
  startedAt: number;
  beatAt: number;
  queues: string[];
  /** Each queue's weight, in the order of `queues`. */
  weights: number[];
  /** The queues this cluster found paused at its last claim. */
  paused: string[];
  workers: WorkerStat[];
  /** The task names its workers export (absent in heartbeats of older releases). */
  funcs?: string[];
  reincarnations: number;
  processed: number;
  succeeded: number;
  /** Milliseconds between its heartbeats (absent in heartbeats of older releases). */
  heartbeatMs?: number;
  /** Attempts whose outcome was dropped because the lease was lost (absent in older beats). */
  dropped?: number;
  failed: number;
  rss: number;
  cpu: number;
  lowestFreeMemory: number;
  stuck: string[];
}
