/**
 * The messages between the supervisor and its Web Workers. Payloads that may be large (task
 * arguments, results) travel as JSON strings, so structured clone copies one string instead of
 * walking an object graph, and the supervisor never re-parses them on the hot path. Messages
 * sent in one turn of the event loop go as one `many` message: a `postMessage` costs more than
 * a no-op task, so short tasks cross the boundary in batches.
 *
 * Worker states (driven by `worker_handle.ts`):
 *
 * ```
 * starting ──ready──▶ idle ⇄ busy ──(recycle)──▶ draining ──▶ exited
 *     │                 │      │
 *     └──init-error─────┴──────┴──error / close / terminate──▶ exited
 * ```
 *
 * @module
 */
import type { ErrorInfo } from "../task/errors.ts";

/** What the supervisor sends to a worker. */
export type ToWorker =
  /**
   * First message: the task modules to import, once. `concurrency` is the most tasks it runs at
   * once; more wait in its own queue and start in the order sent (none: no limit).
   */
  | { type: "init"; modules: string[]; name: string; concurrency?: number }
  /**
   * Run one task. `args` is a JSON array. `startBy` (epoch ms, under a queue's rate): a task
   * that waited in the worker past it is given back (`recalled`) instead of starting, since the
   * rate counted its start as at its claim.
   */
  | {
    type: "run";
    id: string;
    name: string;
    func: string;
    args: string;
    attempt: number;
    queue: string;
    startBy?: number;
  }
  /** Abort a running task's `AbortSignal` (timeout or cancel). */
  | { type: "abort"; id: string; reason: "timeout" | "cancel" }
  /**
   * Give back a task that still waits in the worker (it sits behind a long one): the worker
   * answers `recalled` if it had not started it, and nothing if it had.
   */
  | { type: "recall"; id: string }
  /** Several of the above, handled in order: one message crosses for a batch of tasks. */
  | { type: "many"; messages: ToWorker[] };

export type { ErrorInfo };

/** What a worker sends to the supervisor. */
export type FromWorker =
  /** The modules loaded; `funcs` are the task names this worker can run. */
  | { type: "ready"; funcs: string[]; tid: number | null }
  /** A task module failed to load; the worker will not run tasks. */
  | { type: "init-error"; error: ErrorInfo }
  /** A task reported progress. */
  | { type: "progress"; id: string; fraction: number; message?: string }
  /**
   * The worker is about to end itself (`self.close()` or `process.exit()` in a task). Deno never
   * fires `close` on the parent's `Worker`, so this is how the supervisor learns of it.
   */
  | { type: "closing"; code: number }
  /**
   * A task left an error uncaught (a throw in a timer, an unhandled rejection): the worker is
   * broken and the supervisor ends it, as it would on the `Worker`'s `error` event. Reported as
   * a message so that Deno does not also print it as an uncaught error.
   */
  | { type: "uncaught"; error: ErrorInfo }
  /** A task given back before it started: by `recall`, or waiting past its `startBy`. */
  | { type: "recalled"; id: string }
  /**
   * A task ended. `result` is JSON text (`"null"` for undefined); `ms`: how long it ran in the
   * worker, from its start to its end (none for one that never started).
   */
  | { type: "done"; id: string; ok: true; result: string; heap: number; ms?: number }
  | { type: "done"; id: string; ok: false; error: ErrorInfo; heap: number; ms?: number }
  /** Several of the above, handled in order (the ends of tasks that ran back to back). */
  | { type: "many"; messages: FromWorker[] };
