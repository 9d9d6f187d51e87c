/**
 * The types of a `WorkerHandle`'s requests, events and options (`worker_handle.ts`).
 *
 * @module
 */
import type { ErrorInfo, ToWorker } from "./protocol.ts";
import type { WorkerExitReason } from "../task/errors.ts";

/** The states of a `WorkerHandle`; see the diagram above its class. */
export type WorkerState = "starting" | "idle" | "busy" | "draining" | "exited";

/** A task to run: the `run` message without its `type`. */
export type RunRequest = Omit<Extract<ToWorker, { type: "run" }>, "type">;

/** Why a task is being aborted; becomes a `TaskTimeoutError` or `TaskCancelledError` in the task. */
export type AbortReason = Extract<ToWorker, { type: "abort" }>["reason"];

/**
 * Detail of `"task:done"`: a task ended, with its JSON result or its error, and how long it ran in
 * the worker (`ms`; none for one that never started).
 */
export type TaskDoneEvent =
  | { id: string; ok: true; result: string; heap: number; ms?: number }
  | { id: string; ok: false; error: ErrorInfo; heap: number; ms?: number };

/** Detail of `"task:progress"`: a task reported progress (a fraction in [0, 1]). */
export interface TaskProgressEvent {
  /** The task id. */
  id: string;
  /** How far along, in [0, 1]. */
  fraction: number;
  /** The task's message, if it gave one. */
  message?: string;
}

/** Detail of `"worker:exit"`, emitted exactly once per handle. */
export interface WorkerExitEvent {
  /** The worker's name, e.g. `"kvq-w3.g2"`. */
  worker: string;
  /** How it ended. */
  reason: WorkerExitReason;
  /** Ids of the tasks that were running and never reported `task:done`: fail or retry them. */
  inFlight: string[];
  /** The uncaught error (reason `"error"`) or the module error (reason `"init-error"`). */
  error?: ErrorInfo;
  /** The exit code, where the worker gave one (`self.close()` is 0). */
  code?: number;
  /** Why it was terminated (reason `"terminated"`), as passed to `terminate()`. */
  detail?: string;
}

/** The events of a `WorkerHandle`, by name, with their `CustomEvent` detail. */
export interface WorkerHandleEventMap {
  "task:done": TaskDoneEvent;
  /** A task given back by `WorkerHandle.recall` before it started. */
  "task:recalled": { id: string };
  "task:progress": TaskProgressEvent;
  "worker:exit": WorkerExitEvent;
}

/** Options for `WorkerHandle`. */
export interface WorkerHandleOptions {
  /** Task modules (paths or URLs) the worker imports on start. */
  modules: string[];
  /**
   * The most tasks the worker runs at once; tasks sent beyond that wait in the worker and start
   * in the order sent, as earlier ones end (the supervisor sends the next task early, so no
   * round trip separates two short tasks).
   * @default no limit
   */
  concurrency?: number;
  /**
   * The worker's entry module.
   * @default {new URL("./worker_main.ts", import.meta.url)}
   */
  entry?: URL;
}
