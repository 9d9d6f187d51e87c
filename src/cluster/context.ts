/**
 * What the launcher ({@linkcode Cluster}) gives each part of a cluster: the lifecycle contract
 * they share, and the parts themselves, which call one another through it.
 *
 * The contract: every part takes the launcher's `signal`, aborted when the cluster begins to
 * stop (nothing new is claimed, armed, promoted or beaten after it), reports each error it
 * survives through `report(error, context)`, clears its own timers when the signal aborts, and
 * implements `Symbol.asyncDispose` for what it must still finish (a write in flight). No part
 * imports the launcher.
 *
 * @module
 */
import type { ClusterState } from "../store/heartbeats.ts";
import type { KvHandle, Store } from "../store/store.ts";
import type { ClusterEventMap } from "./events.ts";
import type { Heartbeat } from "./heartbeat.ts";
import type { HeldTasks } from "./held.ts";
import type { ResolvedOptions } from "./options.ts";
import type { Pump } from "./pump.ts";
import type { ResultWriter } from "./result_writer.ts";
import type { RunningTable } from "./running.ts";
import type { Stager } from "./stager.ts";
import type { WorkerPool } from "./worker_pool.ts";

/** The parts of a cluster, one per role. */
export interface Parts {
  pool: WorkerPool;
  running: RunningTable;
  held: HeldTasks;
  pump: Pump;
  stager: Stager;
  writer: ResultWriter;
  heartbeat: Heartbeat;
}

/** What every part gets from the launcher. */
export interface ClusterContext {
  /** The cluster's id. */
  readonly id: string;
  readonly options: ResolvedOptions;
  /** Aborted when the cluster begins to stop. */
  readonly signal: AbortSignal;
  /** The stores of the queues served, in the order of the queues option (set at start). */
  readonly stores: readonly Store[];
  /** The KV handle (set at start). */
  readonly handle: KvHandle;
  /** The launcher's state: `stopped` once it has closed. */
  state(): ClusterState;
  /** Reports an error the cluster survives, with what it was doing. */
  report(error: Error, context: string): void;
  /** A KV write succeeded (a failed one is reported): for `Cluster.kvHealthy`. */
  kvOk(): void;
  /** Emits one of the cluster's events. */
  emit<K extends keyof ClusterEventMap>(type: K, detail: ClusterEventMap[K]): void;
  /** Begins a graceful stop (burst mode, once idle). */
  stop(): void;
  /** The other parts. */
  readonly parts: Parts;
}

/** Runs `fn` once the signal aborts (at once if it has). */
export function onAbort(signal: AbortSignal, fn: () => void): void {
  if (signal.aborted) fn();
  else signal.addEventListener("abort", fn, { once: true });
}
