/**
 * What the launcher ({@linkcode Cluster}) gives each part of a cluster: the lifecycle contract
 * they share, the roles by which they call one another, and the entry of a leased task.
 *
 * The contract: every part takes the launcher's `signal`, aborted when the cluster begins to
 * stop (nothing new is claimed, armed, promoted or beaten after it), reports each error it
 * survives through `report(error, context)`, clears its own timers when the signal aborts, and
 * implements `Symbol.asyncDispose` for what it must still finish (a write in flight). No part
 * imports the launcher, and this file imports no part: each implements its role below.
 *
 * @module
 */
import type { Claimed } from "../store/claim.ts";
import type { Outcome } from "../store/complete.ts";
import type { ClusterState, WorkerStat } from "../store/heartbeats.ts";
import type { KvHandle, Store } from "../store/store.ts";
import type { ClusterEventMap } from "./events.ts";
import type { RunResult } from "./outcome.ts";
import type { ResolvedOptions } from "./options.ts";
import type {
  TaskDoneEvent,
  TaskProgressEvent,
  WorkerExitEvent,
  WorkerHandle,
} from "./worker_handle.ts";

/** A task this cluster holds a lease on, from its claim to its stored outcome. */
export interface Running {
  claimed: Claimed;
  store: Store;
  /** Null while held: claimed ahead of a free place, not handed to a worker yet. */
  worker: WorkerHandle | null;
  /** When it started in its worker (performance.now), for the prefetch estimate. */
  startedAt: number;
  /** When it was last held, claimed or recalled (performance.now): held too long goes back. */
  heldAt: number;
  /** Its place in claim order (this process counts up): FIFO among equals in the held line. */
  line: number;
  /** When its claim logged it started (the store's clock, before the commit): a rate counts its start from then. */
  claimedAt: number;
  /** Sent to a worker that was running all it may: it starts when one of those ends. */
  waiting: boolean;
  /**
   * When it began to wait in its worker (performance.now); Infinity once recalled. A task still
   * waiting after the recall period is taken back.
   */
  waitingSince: number;
  timer: ReturnType<typeof setTimeout> | null;
  graceTimer: ReturnType<typeof setTimeout> | null;
  timedOut: boolean;
  cancelled: boolean;
  progress: boolean;
}

/** The worker pool (`worker_pool.ts`). */
export interface PoolRole {
  readonly reincarnations: number;
  readonly stuck: readonly string[];
  byName(name: string): WorkerHandle | null;
  names(): string[];
  serving(): WorkerHandle[];
  drainSlotOf(worker: WorkerHandle): void;
  tids(): number[];
  funcs(): string[];
  stats(cpuByTid: ReadonlyMap<number, number>): WorkerStat[];
}

/** The running table (`running.ts`). */
export interface RunningRole {
  readonly size: number;
  countOf(store: Store): number;
  readonly taskMs: number;
  /** How long a task runs in its worker, on average, in ms (Infinity until one has ended). */
  readonly runMs: number;
  get(id: string): Running | undefined;
  add(running: Running): void;
  delete(id: string): void;
  holds(running: Running): boolean;
  longRunning(now: number): number;
  recallQueue(store: Store, partition?: string | null): void;
  runsLong(worker: WorkerHandle, now: number): boolean;
  tasksOf(worker: WorkerHandle): WorkerStat["tasks"];
  dispatch(store: Store, claimed: Claimed, held?: Running): void;
  recalled(worker: WorkerHandle, id: string): void;
  done(worker: WorkerHandle, done: TaskDoneEvent): boolean;
  progress(p: TaskProgressEvent): void;
  workerExited(worker: WorkerHandle, exit: WorkerExitEvent): void;
  scheduleCancelCheck(): void;
  finish(running: Running, result: RunResult): void;
}

/** The held tasks and the started list (`held.ts`). */
export interface HeldRole {
  readonly length: number;
  readonly writing: boolean;
  hold(store: Store, claimed: Claimed): void;
  armable(): number;
  dispatch(): void;
  takeBack(running: Running): void;
  giveBack(tasks: Running[]): Promise<void>;
  remove(running: Running): void;
  forget(store: Store, id: string): void;
}

/** The pump (`pump.ts`). */
export interface PumpRole {
  readonly paused: string[];
  wake(): void;
  again(): void;
  awaitRetry(id: string, store: Store): void;
  freePlaces(ahead?: number): string[];
  heldTarget(): number;
  readPaused(): Promise<void>;
  hold(store: Store, until: number, partition?: string | null): void;
  readonly holdingAny: boolean;
  holding(queue: string, partition?: string | null): boolean;
  rateSlack(queue: string): number | null;
}

/** The stager (`stager.ts`). */
export interface StagerRole {
  promote(): Promise<void>;
  expireSoon(): void;
}

/** The result writer (`result_writer.ts`). */
export interface WriterRole {
  readonly pending: number;
  readonly counts: { processed: number; succeeded: number; failed: number; dropped: number };
  unstored(worker: string): number;
  push(outcome: Outcome): void;
}

/** The parts of a cluster, by role. */
export interface Parts {
  pool: PoolRole;
  running: RunningRole;
  held: HeldRole;
  pump: PumpRole;
  stager: StagerRole;
  writer: WriterRole;
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
  /** The `traceparent` of a running task's span, when tracing is on (see `telemetry/`). */
  runTrace(id: string): string | null;
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
