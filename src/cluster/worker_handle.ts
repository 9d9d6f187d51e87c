/**
 * The supervisor's side of one Web Worker: starts it, sends it tasks, and turns everything it
 * says or suffers into typed events. The supervisor awaits `worker:exit` and starts the next
 * generation; nothing here polls.
 *
 * Deno and Bun end workers differently; that difference is kept to the few lines keyed by
 * `runtime.workerFiresClose`:
 *
 * - Deno never fires `close`, and an `error` event the parent does not `preventDefault()` kills
 *   the parent. So every `error` and `messageerror` is prevented, and taken to mean the worker is
 *   dead. A task that calls `self.close()` (or `process.exit()`) is heard through the
 *   `{ type: "closing" }` message that `worker_main.ts` posts first.
 * - Bun fires `close(code)` after a worker ends, including after an uncaught error. Bun's workers
 *   have no `self.close()`; `worker_main.ts` supplies one that posts `closing` and exits.
 *
 * @module
 */
import { TypedEvents } from "./typed_events.ts";
import { runtime } from "../runtime/mod.ts";
import type { ErrorInfo, FromWorker, ToWorker } from "./protocol.ts";
import {
  fromErrorInfo,
  toErrorInfo,
  WorkerCrashError,
  type WorkerExitReason,
} from "../task/errors.ts";
import type {
  AbortReason,
  RunRequest,
  TaskProgressEvent,
  WorkerExitEvent,
  WorkerHandleEventMap,
  WorkerHandleOptions,
  WorkerState,
} from "./worker_types.ts";

export type { WorkerExitReason } from "../task/errors.ts";
export type * from "./worker_types.ts";

/** Longest slot number, so `kvq-w<slot>.g<generation>` fits the 15 characters of a thread name. */
const MAX_SLOT = 999;

/**
 * The messages this process's workers and it exchanged (a `many` message counts once), for the
 * cluster's stop line and the benchmarks: a message costs more than a no-op task, so more than a
 * few per hundred tasks means tasks or their ends crossed one by one.
 */
export const messageStats = { sent: 0, received: 0 };

/**
 * One Web Worker, seen from the supervisor.
 *
 * Its name is `kvq-w<slot>.g<generation>`. Linux shows 15 characters of a thread name, so the
 * whole name is visible while slot < 1000 and generation < 100000 (`kvq-w999.g99999`); past
 * that the thread name is cut. Identify threads by {@linkcode WorkerHandle.tid}.
 *
 * States:
 *
 * ```
 *  new ──start()──▶ starting ──ready──▶ idle ⇄ busy        (busy: at least one task in flight)
 *                      │                  │      │
 *                      │                  └drain()┴──▶ draining ──last task done──▶ exited
 *                      │                        │         │                 ("terminated")
 *                      └─init-error─────────────┴─────────┴──▶ exited
 *                        error / messageerror / close / closing / terminate()
 * ```
 *
 * `exited` is final and is entered once, emitting one `"worker:exit"` with the ids of the tasks
 * still in flight. Events are `CustomEvent`s whose `detail` is typed by
 * {@linkcode WorkerHandleEventMap}; {@linkcode WorkerHandle.on} is the typed way to listen.
 *
 * @example
 * ```ts
 * import { WorkerHandle } from "./worker_handle.ts";
 * await using worker = new WorkerHandle(1, 1, { modules: ["./examples/tasks.ts"] });
 * await worker.start();
 * worker.on("task:done", (done) => console.log(done));
 * worker.run({ id: "t1", name: "calm-otter", func: "add", args: "[1,2]", attempt: 1, queue: "default" });
 * ```
 */
export class WorkerHandle extends TypedEvents<WorkerHandleEventMap> {
  /** The worker's name, `kvq-w<slot>.g<generation>`. */
  readonly name: string;
  /** The worker's slot in the pool. */
  readonly slot: number;
  /** How many workers held this slot before, plus one. */
  readonly generation: number;
  /** Resolves with the exit event once the worker has exited, whatever the reason. */
  readonly exited: Promise<WorkerExitEvent>;

  #modules: string[];
  #concurrency: number | undefined;
  #entry: URL;
  #worker: Worker | undefined;
  /** Messages queued in this turn, posted together (see {@linkcode #post}). */
  #outbox: ToWorker[] = [];
  #state: WorkerState | "new" = "new";
  #inFlight = new Set<string>();
  #tid: number | null = null;
  #tasksRun = 0;
  #lastHeap = 0;
  #funcs: readonly string[] = [];
  #resolveExited!: (event: WorkerExitEvent) => void;
  #startSettle: { resolve(funcs: string[]): void; reject(error: Error): void } | undefined;

  /**
   * @param slot The pool slot, 0–999.
   * @param generation The generation of this slot, from 1 (any non-negative integer).
   */
  constructor(slot: number, generation: number, options: WorkerHandleOptions) {
    super();
    if (!Number.isInteger(slot) || slot < 0 || slot > MAX_SLOT) {
      throw new RangeError(`Worker slot must be an integer in [0, ${MAX_SLOT}]: received ${slot}`);
    }
    if (!Number.isSafeInteger(generation) || generation < 0) {
      throw new RangeError(`Worker generation must be an integer >= 0: received ${generation}`);
    }
    if (!Array.isArray(options.modules)) {
      throw new TypeError(`Worker modules must be an array: received ${typeof options.modules}`);
    }
    this.slot = slot;
    this.generation = generation;
    this.name = `kvq-w${slot}.g${generation}`;
    this.#modules = [...options.modules];
    this.#concurrency = options.concurrency;
    this.#entry = options.entry ?? defaultEntry();
    this.exited = new Promise((resolve) => this.#resolveExited = resolve);
  }

  /** The current state; `"new"` before {@linkcode WorkerHandle.start}. */
  get state(): WorkerState | "new" {
    return this.#state;
  }

  /** Ids of the tasks sent and not yet done. */
  get inFlight(): ReadonlySet<string> {
    return this.#inFlight;
  }

  /** The worker's Linux thread id, once ready; null before or where `/proc` is missing. */
  get tid(): number | null {
    return this.#tid;
  }

  /** How many tasks this worker has finished (either way). */
  get tasksRun(): number {
    return this.#tasksRun;
  }

  /** The worker's heap use in bytes, as of its last finished task. */
  get lastHeap(): number {
    return this.#lastHeap;
  }

  /** The task names this worker can run, once ready. */
  get funcs(): readonly string[] {
    return this.#funcs;
  }

  /**
   * Starts the worker and has it import the task modules. Resolves with the task names once it
   * is ready; rejects with the module error if a module fails to load, or with a
   * `WorkerCrashError` if the worker dies first. Aborting `signal` terminates the worker.
   */
  start(signal?: AbortSignal): Promise<string[]> {
    if (this.#state !== "new") {
      return Promise.reject(new Error(`Worker ${this.name} was already started`));
    }
    signal?.throwIfAborted();
    this.#state = "starting";
    const ready = new Promise<string[]>((resolve, reject) => {
      this.#startSettle = { resolve, reject };
    });
    let worker: Worker;
    try {
      worker = new Worker(this.#entry.href, { type: "module", name: this.name });
    } catch (error) {
      this.#exit("error", { error: toErrorInfo(error) });
      return ready;
    }
    this.#worker = worker;
    worker.addEventListener("message", (event) => {
      messageStats.received++;
      this.#onMessage(event.data as FromWorker);
    });
    worker.addEventListener("error", (event) => {
      // Deno: an error event left unprevented kills the parent process.
      event.preventDefault();
      this.#kill("error", { error: errorEventInfo(event) });
    });
    worker.addEventListener("messageerror", (event) => {
      event.preventDefault();
      const message = `Worker ${this.name} sent a message that could not be deserialised`;
      this.#kill("error", { error: { name: "DataCloneError", message } });
    });
    // Bun fires `close` when a worker ends (its own close, an uncaught error, or terminate()).
    worker.addEventListener("close", (event) => {
      const code = (event as Event & { code?: unknown }).code;
      this.#exit("close", typeof code === "number" ? { code } : {});
    });
    if (signal !== undefined) {
      const onAbort = () => this.terminate("start aborted");
      signal.addEventListener("abort", onAbort, { once: true });
      void this.exited.then(() => signal.removeEventListener("abort", onAbort));
    }
    this.#post({
      type: "init",
      modules: this.#modules,
      name: this.name,
      ...(this.#concurrency !== undefined ? { concurrency: this.#concurrency } : {}),
    });
    return ready;
  }

  /**
   * Sends a task to the worker. Its end arrives as `"task:done"`, or, if the worker dies first, in
   * the `inFlight` of `"worker:exit"`.
   *
   * @throws {Error} unless the worker is idle or busy.
   * @throws {TypeError} if a task with this id is already in flight here.
   */
  run(task: RunRequest): void {
    if (this.#state !== "idle" && this.#state !== "busy") {
      throw new Error(`Worker ${this.name} cannot run task ${task.id}: it is ${this.#state}`);
    }
    if (this.#inFlight.has(task.id)) {
      throw new TypeError(`Task ${task.id} is already running on worker ${this.name}`);
    }
    this.#inFlight.add(task.id);
    this.#state = "busy";
    this.#post({ type: "run", ...task });
  }

  /**
   * Aborts a running task's `AbortSignal`. The task decides whether to stop; terminate the worker
   * after a grace period if it does not. Returns false if the task is not in flight here.
   */
  abort(id: string, reason: AbortReason): boolean {
    if (!this.#inFlight.has(id) || this.#state === "exited") return false;
    this.#post({ type: "abort", id, reason });
    return true;
  }

  /**
   * Asks for a task back that waits in the worker and has not started. `"task:recalled"` follows
   * if it had not; if it had, its `"task:done"` comes as usual. Returns false if the task is not
   * in flight here.
   */
  recall(id: string): boolean {
    if (!this.#inFlight.has(id) || this.#state === "exited") return false;
    this.#post({ type: "recall", id });
    return true;
  }

  /**
   * Stops taking tasks and terminates the worker once those in flight are done (recycling).
   * Resolves with the exit event.
   */
  drain(): Promise<WorkerExitEvent> {
    if (this.#state === "idle" || this.#state === "new") return this.terminate("recycled");
    if (this.#state === "busy") this.#state = "draining";
    return this.exited;
  }

  /**
   * Terminates the worker now. Tasks in flight are reported in the `"worker:exit"` event, whose
   * reason is `"terminated"`. On Deno, a thread stuck in CPU-bound code keeps running after this
   * (`runtime.terminateStopsCpu` is false); watch its {@linkcode WorkerHandle.tid}.
   *
   * @param detail Why, for logs (e.g. `"timeout"`, `"recycled"`, `"shutdown"`).
   */
  terminate(detail = "terminated"): Promise<WorkerExitEvent> {
    this.#kill("terminated", { detail });
    return this.exited;
  }

  /** Terminates the worker if it is still running, so `await using` cleans up. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.terminate("disposed");
  }

  #onMessage(message: FromWorker): void {
    if (this.#state === "exited") return;
    switch (message.type) {
      case "many":
        for (const m of message.messages) this.#onMessage(m);
        return;
      case "ready":
        if (this.#state !== "starting") return;
        this.#tid = message.tid;
        this.#funcs = Object.freeze([...message.funcs]);
        this.#state = "idle";
        this.#startSettle?.resolve([...message.funcs]);
        this.#startSettle = undefined;
        return;
      case "init-error":
        this.#kill("init-error", { error: message.error });
        return;
      case "progress": {
        if (!this.#inFlight.has(message.id)) return;
        const detail: TaskProgressEvent = { id: message.id, fraction: message.fraction };
        if (message.message !== undefined) detail.message = message.message;
        this.emit("task:progress", detail);
        return;
      }
      case "recalled": {
        if (!this.#inFlight.delete(message.id)) return;
        if (this.#inFlight.size === 0 && this.#state === "busy") this.#state = "idle";
        this.emit("task:recalled", { id: message.id });
        if (this.#inFlight.size === 0 && this.#state === "draining") {
          this.#kill("terminated", { detail: "recycled" });
        }
        return;
      }
      case "done": {
        if (!this.#inFlight.delete(message.id)) return;
        this.#tasksRun++;
        this.#lastHeap = message.heap;
        const { type: _type, ...detail } = message;
        if (this.#inFlight.size === 0 && this.#state === "busy") this.#state = "idle";
        this.emit("task:done", detail);
        if (this.#inFlight.size === 0 && this.#state === "draining") {
          this.#kill("terminated", { detail: "recycled" });
        }
        return;
      }
      case "uncaught":
        this.#kill("error", { error: message.error });
        return;
      case "closing":
        if (runtime.workerFiresClose) {
          // Bun: the real `close` event follows and ends the handle.
          return;
        }
        // Deno: no `close` will ever come; the worker is gone once this message is read.
        this.#kill("close", { code: message.code });
        return;
    }
  }

  /** Ends the worker (if running) and enters `exited`. */
  #kill(reason: WorkerExitReason, extra: Partial<WorkerExitEvent>): void {
    if (this.#state === "exited") return;
    try {
      this.#worker?.terminate();
    } catch {
      // Already gone.
    }
    this.#exit(reason, extra);
  }

  #exit(reason: WorkerExitReason, extra: Partial<WorkerExitEvent>): void {
    if (this.#state === "exited") return;
    this.#state = "exited";
    const event: WorkerExitEvent = { worker: this.name, reason, inFlight: [...this.#inFlight] };
    if (extra.error !== undefined) event.error = extra.error;
    if (extra.code !== undefined) event.code = extra.code;
    if (extra.detail !== undefined) event.detail = extra.detail;
    this.#inFlight.clear();
    const settle = this.#startSettle;
    this.#startSettle = undefined;
    if (settle !== undefined) {
      settle.reject(
        reason === "init-error" && event.error !== undefined
          ? fromErrorInfo(event.error)
          : new WorkerCrashError(
            `Worker ${this.name} ended (${reason}) before it was ready` +
              (event.error ? `: ${event.error.message}` : ""),
            { worker: this.name, reason },
          ),
      );
    }
    this.#resolveExited(event);
    this.emit("worker:exit", event);
  }

  /**
   * Queues a message; the messages of one turn go as one `many` message once the turn's
   * synchronous work is done (a microtask later), in the order queued.
   */
  #post(message: ToWorker): void {
    this.#outbox.push(message);
    if (this.#outbox.length === 1) queueMicrotask(() => this.#flush());
  }

  #flush(): void {
    const messages = this.#outbox;
    this.#outbox = [];
    if (messages.length === 0 || this.#worker === undefined || this.#state === "exited") return;
    messageStats.sent++;
    this.#worker.postMessage(messages.length === 1 ? messages[0]! : { type: "many", messages });
  }
}

/** What an `error` event on a `Worker` carries, as `ErrorInfo`. */
function errorEventInfo(event: Event): ErrorInfo {
  const { error, message } = event as ErrorEvent;
  if (error !== undefined && error !== null) return toErrorInfo(error);
  return toErrorInfo({
    name: "Error",
    message: typeof message === "string" && message !== "" ? message : "Uncaught error in worker",
  });
}

/**
 * The worker entry module, beside this one: `worker_main.ts` from source, `worker_main.js` in
 * the compiled npm package (under `node_modules/kvq/dist/npm/`). Inside a `bun build --compile`
 * binary every module is bundled into the main file under `/$bunfs/`, and an extra entry point
 * keeps its path relative to the project root, so the worker is found at
 * `src/cluster/worker_main.js` there.
 */
function defaultEntry(): URL {
  const ext = import.meta.url.endsWith(".ts") ? "ts" : "js";
  const here = new URL(`./worker_main.${ext}`, import.meta.url);
  if (!here.pathname.includes("/$bunfs/")) return here;
  return new URL("file:///$bunfs/root/src/cluster/worker_main.js");
}
