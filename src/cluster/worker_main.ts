/**
 * The entry module of a kvq Web Worker. It imports the task modules once (on `init`), then runs
 * tasks as the supervisor asks (`run`), several at a time if told to, and reports results,
 * progress and its own end as {@linkcode FromWorker} messages. It never touches KV.
 *
 * It is also an extra entry point of `bun build --compile` and an `--include` of `deno compile`,
 * so it imports nothing that needs KV or the runtime adapters.
 *
 * An uncaught error in a task (say a throw inside a `setTimeout`, or an unhandled rejection)
 * breaks the worker: it is posted to the parent as an `uncaught` message, and the supervisor ends
 * this worker, fails the attempts in flight and starts the next generation. (Handled here rather
 * than left to the `Worker`'s `error` event, which Deno would also print to stderr.)
 *
 * @module
 */
import { readlinkSync, writeFileSync } from "node:fs";
import { setImmediate } from "node:timers";
import process from "node:process";
import { isMainThread } from "node:worker_threads";
import type { FromWorker, ToWorker } from "./protocol.ts";
import { createTaskContext, runInTaskContext } from "../task/context.ts";
import { TaskCancelledError, TaskTimeoutError, toErrorInfo } from "../task/errors.ts";
import { loadTaskModules, lookupTask, type TaskFunction } from "../task/loader.ts";

/** Longest OS thread name Linux keeps (16 bytes with the terminating NUL). */
const THREAD_NAME_MAX = 15;

/** At most one progress message per task per this many milliseconds; the latest is kept. */
const PROGRESS_INTERVAL_MS = 50;

type RunMessage = Extract<ToWorker, { type: "run" }>;

interface WorkerScope {
  postMessage(message: FromWorker): void;
  addEventListener(type: "message", listener: (event: MessageEvent<ToWorker>) => void): void;
  addEventListener(type: "error" | "unhandledrejection", listener: (event: Event) => void): void;
  close?: () => void;
}

interface Running {
  controller: AbortController;
  lastProgressAt: number;
  pending: Extract<FromWorker, { type: "progress" }> | undefined;
}

/**
 * Starts answering the supervisor's messages on this worker's global scope. Called once when the
 * module is evaluated inside a worker; exported for embedding in a custom worker entry.
 */
export function serveWorker(): void {
  const scope = globalThis as unknown as WorkerScope;
  /**
   * The ends of tasks that ran back to back, sent together: a task's end waits while the next
   * sent task starts at once (a batch of short ones), and goes at the next macrotask at the
   * latest, so a long task never holds back the end of the one before it. The ends of tasks
   * that run side by side go at the end of their turn instead (see `postThisTurn`).
   */
  let outbox: FromWorker[] = [];
  let flushing = false;
  const flush = () => {
    flushing = false;
    const messages = outbox;
    outbox = [];
    if (messages.length === 1) scope.postMessage(messages[0]!);
    else if (messages.length > 1) scope.postMessage({ type: "many", messages });
  };
  const post = (message: FromWorker) => {
    outbox.push(message);
    flush();
  };
  const postLater = (message: FromWorker) => {
    outbox.push(message);
    if (outbox.length >= MAX_BATCH) flush();
    else if (!flushing) {
      flushing = true;
      setImmediate(flush);
    }
  };
  /**
   * Queues an end to go once this turn's microtasks are done, with the ends of the tasks that
   * ended in the same turn: tasks run side by side, started by one message. Not later: another
   * task running beside it may compute for long in the next callback.
   */
  let turnQueued = false;
  const postThisTurn = (message: FromWorker) => {
    outbox.push(message);
    if (outbox.length >= MAX_BATCH) flush();
    else if (!turnQueued) {
      turnQueued = true;
      queueMicrotask(() => {
        turnQueued = false;
        flush();
      });
    }
  };
  const running = new Map<string, Running>();
  /** Tasks sent while `limit` ran already: they start in order as others end. */
  const waiting: RunMessage[] = [];
  let limit = Infinity;
  let tasks: Map<string, TaskFunction> | undefined;
  let initialised = false;

  announceSelfExit(scope, post);
  reportUncaught(scope, post);

  scope.addEventListener("message", (event) => handle(event.data));

  function handle(message: ToWorker): void {
    switch (message?.type) {
      case "init":
        if (initialised) return;
        initialised = true;
        if (Number.isSafeInteger(message.concurrency) && message.concurrency! > 0) {
          limit = message.concurrency!;
        }
        nameThread(message.name);
        loadTaskModules(message.modules).then(
          (loaded) => {
            tasks = loaded;
            post({ type: "ready", funcs: [...loaded.keys()], tid: threadId() });
          },
          (error) => post({ type: "init-error", error: toErrorInfo(error) }),
        );
        return;
      case "many":
        for (const m of message.messages) handle(m);
        return;
      case "run":
        // Under a rate, a task that reaches an idle worker past its start-by time (the thread
        // was starved) goes back unstarted too: started now, it would start outside the window
        // its start was counted in.
        if (running.size < limit && late(message)) post({ type: "recalled", id: message.id });
        else if (running.size < limit) void runTask(message);
        else waiting.push(message);
        return;
      case "recall": {
        const at = waiting.findIndex((w) => w.id === message.id);
        if (at < 0) return; // it started: its end comes as usual
        waiting.splice(at, 1);
        post({ type: "recalled", id: message.id });
        return;
      }
      case "abort": {
        const at = waiting.findIndex((w) => w.id === message.id);
        if (at >= 0) {
          // Never started: it ends here.
          waiting.splice(at, 1);
          const error = message.reason === "timeout"
            ? new TaskTimeoutError(`Task ${message.id} timed out`)
            : new TaskCancelledError(`Task ${message.id} was cancelled before it started`);
          post({
            type: "done",
            id: message.id,
            ok: false,
            error: toErrorInfo(error),
            heap: heapUsed(),
          });
          return;
        }
        const task = running.get(message.id);
        if (task === undefined || task.controller.signal.aborted) return;
        task.controller.abort(
          message.reason === "timeout"
            ? new TaskTimeoutError(`Task ${message.id} timed out`)
            : new TaskCancelledError(`Task ${message.id} was cancelled`),
        );
        return;
      }
    }
  }

  async function runTask(message: RunMessage): Promise<void> {
    const { id } = message;
    if (running.has(id)) return;
    const task: Running = {
      controller: new AbortController(),
      lastProgressAt: -Infinity,
      pending: undefined,
    };
    running.set(id, task);
    let reply: Extract<FromWorker, { type: "done" }>;
    const started = performance.now();
    try {
      if (tasks === undefined) throw new Error("The worker received a task before init");
      const args = parseArgs(message.args);
      const fn = lookupTask(tasks, message.func);
      const context = createTaskContext({
        id,
        name: message.name,
        attempt: message.attempt,
        queue: message.queue,
        signal: task.controller.signal,
        onProgress(fraction, text) {
          const progress: Extract<FromWorker, { type: "progress" }> = {
            type: "progress",
            id,
            fraction,
          };
          if (text !== undefined) progress.message = text;
          const now = performance.now();
          if (now - task.lastProgressAt >= PROGRESS_INTERVAL_MS || fraction === 1) {
            task.lastProgressAt = now;
            task.pending = undefined;
            post(progress);
          } else {
            task.pending = progress;
          }
        },
      });
      const value = await runInTaskContext(context, function () {
        return fn.apply(this, args);
      });
      reply = {
        type: "done",
        id,
        ok: true,
        result: serialise(message.func, value),
        heap: heapUsed(),
      };
    } catch (error) {
      reply = { type: "done", id, ok: false, error: toErrorInfo(error), heap: heapUsed() };
    } finally {
      running.delete(id);
    }
    reply.ms = performance.now() - started;
    if (task.pending !== undefined) post(task.pending);
    // Tasks that waited past their start-by time go back unstarted, posted before this end:
    // the supervisor then starts the next it sent in their place, as this worker does.
    let next = waiting.shift();
    while (next !== undefined && late(next)) {
      postLater({ type: "recalled", id: next.id });
      next = waiting.shift();
    }
    // More sent already: this end goes with theirs (see `postLater`). Others still running (a
    // worker with `concurrency` above 1): it goes with those that end in this turn. The last one
    // running goes at once.
    if (next !== undefined) {
      postLater(reply);
      void runTask(next);
    } else if (running.size > 0) postThisTurn(reply);
    else post(reply);
  }
}

/** Posts the first uncaught error or unhandled rejection as `{ type: "uncaught" }`. */
function reportUncaught(scope: WorkerScope, post: (message: FromWorker) => void): void {
  let reported = false;
  const report = (event: Event, error: unknown) => {
    event.preventDefault();
    if (reported) return;
    reported = true;
    post({ type: "uncaught", error: toErrorInfo(error) });
  };
  scope.addEventListener("error", (event) => {
    const e = event as ErrorEvent;
    report(e, e.error ?? new Error(e.message || "Uncaught error in worker"));
  });
  scope.addEventListener("unhandledrejection", (event) => {
    report(event, (event as PromiseRejectionEvent).reason);
  });
}

/**
 * Makes `self.close()` and `process.exit()` post `{ type: "closing" }` first: Deno's parent never
 * hears of either otherwise. Bun has no `self.close` in workers; give it one that exits.
 */
function announceSelfExit(scope: WorkerScope, post: (message: FromWorker) => void): void {
  const nativeClose = scope.close?.bind(scope);
  const nativeExit = process.exit.bind(process);
  let announced = false;
  const announce = (code: number) => {
    if (announced) return;
    announced = true;
    post({ type: "closing", code });
  };
  scope.close = () => {
    announce(0);
    if (nativeClose !== undefined) nativeClose();
    else nativeExit(0);
  };
  process.exit = ((code?: number | string | null) => {
    announce(typeof code === "number" ? code : Number(code ?? process.exitCode ?? 0) || 0);
    return nativeExit(code as number | undefined);
  }) as typeof process.exit;
}

function parseArgs(text: string): unknown[] {
  let args: unknown;
  try {
    args = JSON.parse(text);
  } catch (error) {
    throw new TypeError(`Task arguments are not valid JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(args)) {
    throw new TypeError(`Task arguments must be a JSON array: received ${text.slice(0, 100)}`);
  }
  return args;
}

function serialise(func: string, value: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    const why = error instanceof RangeError && /call stack/i.test(error.message)
      ? "it nests arrays and objects too deeply to write as JSON"
      : (error as Error).message;
    throw new TypeError(`Task ${func} returned a value that is not JSON-serialisable: ${why}`, {
      cause: error,
    });
  }
  return json ?? "null";
}

let heapValue = 0;
let heapReadAt = -Infinity;

/**
 * The worker's heap in bytes, read at most every {@linkcode HEAP_READ_EVERY_MS}: reading it
 * costs more than a no-op task, and the memory limit is a coarse guard anyway.
 */
function heapUsed(): number {
  const now = performance.now();
  if (now - heapReadAt < HEAP_READ_EVERY_MS) return heapValue;
  heapReadAt = now;
  try {
    heapValue = process.memoryUsage().heapUsed;
  } catch {
    heapValue = 0;
  }
  return heapValue;
}

/** The most task ends one message carries. */
const MAX_BATCH = 64;

/** How often a busy worker reads its heap size for the supervisor, in ms. */
const HEAP_READ_EVERY_MS = 20;

/** Names this OS thread, so `/proc/self/task/<tid>/comm` and `top -H` show the worker's name. */
function nameThread(name: string): void {
  try {
    writeFileSync("/proc/thread-self/comm", name.slice(0, THREAD_NAME_MAX));
  } catch {
    // Not Linux, or /proc not mounted: the name is only cosmetic there.
  }
}

/** This thread's Linux thread id, or null where `/proc/thread-self` is unavailable. */
function threadId(): number | null {
  try {
    const match = /task\/(\d+)$/.exec(readlinkSync("/proc/thread-self"));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

// Deno reports `isMainThread` as true inside Web Workers, so also look for `WorkerGlobalScope`
// (Deno has it; Bun's workers do not, but there `isMainThread` is right).
if ("WorkerGlobalScope" in globalThis || !isMainThread) serveWorker();

/** Whether a task sent with a start-by time (under a rate) can no longer start in time. */
function late(message: RunMessage): boolean {
  return message.startBy !== undefined && Date.now() > message.startBy;
}
