/**
 * The running table: every task this cluster holds a lease on, from its claim to its stored
 * outcome. It hands tasks to workers, waits for them there, takes back a task that waits too
 * long behind another (recall), starts timeouts, aborts (then terminates) on timeout or cancel,
 * checks for cancel requests, and turns each end into an outcome for the result writer.
 *
 * @module
 */
import { verify } from "../task/signature.ts";
import { toErrorInfo } from "../task/errors.ts";
import { cancelRequests, dropStaleCancels } from "../store/cancel.ts";
import type { Claimed } from "../store/claim.ts";
import { newRunning, PREFETCH_WINDOW_MS, RECALL_MS, START_SLACK_MS } from "./entry.ts";
import { writeProgress } from "../store/progress.ts";
import type { Store } from "../store/store.ts";
import { type ClusterContext, onAbort, type Running, type RunningRole } from "./context.ts";
import { outcomeOf, type RunResult } from "./outcome.ts";
import type { ErrorInfo } from "../task/errors.ts";
import type {
  TaskDoneEvent,
  TaskProgressEvent,
  WorkerExitEvent,
  WorkerHandle,
} from "./worker_handle.ts";

/** How long after a wake the cancel requests are read, in ms. */
const CANCEL_CHECK_MS = 50;

/** The tasks this cluster holds a lease on, by id. */
export class RunningTable implements RunningRole {
  readonly #ctx: ClusterContext;
  #running = new Map<string, Running>();
  /** Per worker: tasks sent to it that wait there to start, in the order sent. */
  #waiting = new Map<WorkerHandle, Running[]>();
  /** Per worker: the one timer that takes back its tasks that waited a recall period. */
  #recallTimers = new Map<WorkerHandle, ReturnType<typeof setTimeout>>();
  /**
   * A moving average of how long a task keeps its place, in ms (for prefetch); unknown until a
   * task ends, and nothing is prefetched until then.
   */
  #taskMs = Infinity;
  /** A moving average of how long a task runs in its worker, in ms, as the worker measures it. */
  #runMs = Infinity;
  #cancelCheck: ReturnType<typeof setTimeout> | null = null;

  constructor(ctx: ClusterContext) {
    this.#ctx = ctx;
    onAbort(ctx.signal, () => {
      if (this.#cancelCheck) clearTimeout(this.#cancelCheck);
      this.#cancelCheck = null;
    });
  }

  /** How many tasks it holds (held ones included). */
  get size(): number {
    return this.#running.size;
  }

  /** How many tasks of `store` it holds (held ones included). */
  countOf(store: Store): number {
    let n = 0;
    for (const r of this.#running.values()) if (r.store === store) n++;
    return n;
  }

  /** How long a task keeps its place, on average, in ms (Infinity until one has ended). */
  get taskMs(): number {
    return this.#taskMs;
  }

  /**
   * How long a task runs in its worker, on average, in ms (Infinity until one has ended): its
   * place time less the messages to and from the worker, which a batch of short tasks shares.
   */
  get runMs(): number {
    return this.#runMs;
  }

  /** The entry of task `id`. */
  get(id: string): Running | undefined {
    return this.#running.get(id);
  }

  /** Enters a held task. */
  add(running: Running): void {
    this.#running.set(running.claimed.record.id, running);
  }

  /** Removes the entry of task `id` (a held task given back or lost). */
  delete(id: string): void {
    this.#running.delete(id);
  }

  /** Whether `running` is still the entry of its task (not ended, given back, or replaced). */
  holds(running: Running): boolean {
    return this.#running.get(running.claimed.record.id) === running;
  }

  /** How many tasks in workers started more than {@linkcode PREFETCH_WINDOW_MS} ago. */
  longRunning(now: number): number {
    let n = 0;
    for (const r of this.#running.values()) {
      if (r.worker !== null && !r.waiting && now - r.startedAt > PREFETCH_WINDOW_MS) n++;
    }
    return n;
  }

  /** Whether a task in flight on `w` started more than {@linkcode PREFETCH_WINDOW_MS} ago. */
  runsLong(w: WorkerHandle, now: number): boolean {
    for (const id of w.inFlight) {
      const r = this.#running.get(id);
      if (r && !r.waiting && now - r.startedAt > PREFETCH_WINDOW_MS) return true;
    }
    return false;
  }

  /** The tasks in flight on `w`, for the heartbeat. */
  tasksOf(w: WorkerHandle): { id: string; name: string; func: string; startedAt: number }[] {
    return [...w.inFlight].map((id) => this.#running.get(id)).filter((r) => r !== undefined).map(
      (r) => ({
        id: r.claimed.record.id,
        name: r.claimed.record.name,
        func: r.claimed.record.func,
        startedAt: r.claimed.record.startedAt ?? 0,
      }),
    );
  }

  /** Hands a claimed (or held, now armed) task to the worker its record names. */
  dispatch(store: Store, claimed: Claimed, held?: Running): void {
    const r = claimed.record;
    const worker = this.#ctx.parts.pool.byName(r.worker!);
    const running = held ?? newRunning(store, claimed);
    running.worker = worker;
    running.startedAt = performance.now();
    this.#running.set(r.id, running);
    if (held === undefined && !claimed.alone && this.#late(running)) return;
    if (store.secrets !== null) {
      try {
        verify(store.secrets, r, claimed.argsJson, r.sig);
      } catch (error) {
        // Never run it: the attempt fails for good with the reason.
        this.finish(running, { ok: false, error: toErrorInfo(error) });
        return;
      }
    }
    if (!worker || (worker.state !== "idle" && worker.state !== "busy")) {
      // The worker died between claim and dispatch: this attempt fails and is retried.
      this.finish(running, {
        ok: false,
        error: {
          name: "WorkerCrashError",
          message: `Worker ${r.worker} was gone before the task started`,
        },
      });
      return;
    }
    // A worker already running all it may waits to start this one until one of them ends.
    running.waiting = worker.inFlight.size >= this.#ctx.options.concurrency;
    const slack = this.#ctx.parts.pump.rateSlack(store.queue);
    worker.run({
      id: r.id,
      name: r.name,
      func: r.func,
      args: claimed.argsJson,
      attempt: r.attempt,
      queue: r.queue,
      // Waiting in the worker past the rate's margin, it comes back rather than start late.
      ...(slack === null ? {} : { startBy: Date.now() + running.claimedAt + slack - store.now() }),
    });
    if (running.waiting) {
      let waiting = this.#waiting.get(worker);
      if (!waiting) this.#waiting.set(worker, waiting = []);
      waiting.push(running);
      running.waitingSince = performance.now();
      this.#armRecall(worker, RECALL_MS);
    } else this.#started(running);
  }

  /**
   * Under a rate, a task whose claim's commit took longer than the rate's margin (it waited for
   * another process's lock) goes back to ready instead of starting: its start was logged before
   * the commit, and starting later could put it in a window the log did not count it in.
   */
  #late(running: Running): boolean {
    const slack = this.#ctx.parts.pump.rateSlack(running.store.queue);
    if (slack === null || running.store.now() - running.claimedAt <= slack - START_SLACK_MS) {
      return false;
    }
    void this.#ctx.parts.held.giveBack([running]).then(() => this.#ctx.parts.pump.wake());
    return true;
  }

  /** Takes back the tasks of `store` (of `partition` only, if given) that wait in workers (`Pump.hold`). */
  recallQueue(store: Store, partition: string | null = null): void {
    for (const [worker, waiting] of this.#waiting) {
      for (const r of waiting) {
        if (r.store !== store || !Number.isFinite(r.waitingSince)) continue;
        if (partition !== null && r.claimed.record.partition !== partition) continue;
        r.waitingSince = Infinity;
        worker.recall(r.claimed.record.id);
      }
    }
  }

  /** Arms `worker`'s recall timer, unless it is armed. */
  #armRecall(worker: WorkerHandle, ms: number): void {
    if (this.#recallTimers.has(worker) || this.#ctx.signal.aborted) return;
    this.#recallTimers.set(worker, setTimeout(() => this.#recallLong(worker), ms));
  }

  /**
   * Takes back the tasks that have waited in `worker` for the recall period (the tasks ahead
   * turned out long: they should not wait behind them), and arms the timer for the next. One
   * timer per worker, not per task: short tasks pass through by the thousand a second.
   */
  #recallLong(worker: WorkerHandle): void {
    this.#recallTimers.delete(worker);
    const now = performance.now();
    let next = Infinity;
    for (const r of this.#waiting.get(worker) ?? []) {
      if (r.waitingSince + RECALL_MS <= now) {
        r.waitingSince = Infinity;
        if (this.#running.get(r.claimed.record.id) === r) worker.recall(r.claimed.record.id);
      } else next = Math.min(next, r.waitingSince + RECALL_MS);
    }
    if (Number.isFinite(next)) this.#armRecall(worker, next - now);
  }

  /** A task came back from a worker unstarted: it is held again, first in line. */
  recalled(worker: WorkerHandle, id: string): void {
    const running = this.#running.get(id);
    if (!running || running.worker !== worker) return;
    if (running.waiting) this.#unwait(worker, running);
    else {
      // Sent to a place that was free, but it reached the worker too late to start (see
      // `worker_main.ts`): it never ran, and the task sent after it took its place.
      if (running.timer) clearTimeout(running.timer);
      running.timer = null;
      this.#startNextWaiting(worker);
    }
    running.waiting = false;
    running.worker = null;
    this.#ctx.parts.held.takeBack(running);
  }

  /**
   * A task of `worker` reported its end. Resolves false when it is not (or no longer) this
   * cluster's to finish.
   */
  done(worker: WorkerHandle, done: TaskDoneEvent): boolean {
    const running = this.#running.get(done.id);
    if (!running) return false;
    if (done.ms !== undefined && done.ms >= 0) {
      this.#runMs = Number.isFinite(this.#runMs)
        ? this.#runMs + (done.ms - this.#runMs) * 0.1
        : done.ms;
    }
    // Aborted before it started: no other task starts in its place.
    if (running.waiting) this.#unwait(worker, running);
    else this.#startNextWaiting(worker);
    this.finish(
      running,
      done.ok ? { ok: true, result: done.result } : { ok: false, error: done.error },
    );
    return true;
  }

  /** A task reported progress: it is stored, then emitted. */
  progress(p: TaskProgressEvent): void {
    const running = this.#running.get(p.id);
    if (!running) return;
    running.progress = true;
    writeProgress(running.store, p.id, p.fraction, p.message).then(
      () =>
        this.#ctx.emit("task:progress", {
          id: p.id,
          fraction: p.fraction,
          message: p.message ?? null,
        }),
      (e) => this.#ctx.report(e, "progress"),
    );
  }

  /** A worker ended: its tasks that never reported an end fail (or time out). */
  workerExited(worker: WorkerHandle, exit: WorkerExitEvent): void {
    this.#waiting.delete(worker);
    clearTimeout(this.#recallTimers.get(worker));
    this.#recallTimers.delete(worker);
    for (const id of exit.inFlight) {
      const running = this.#running.get(id);
      if (!running) continue;
      const error: ErrorInfo = running.timedOut
        ? {
          name: "TaskTimeoutError",
          message: `Task timed out; its worker ${worker.name} was terminated`,
        }
        : {
          name: "WorkerCrashError",
          message: `Worker ${worker.name} ended (${exit.reason}${
            exit.detail ? `: ${exit.detail}` : ""
          })${exit.error ? `: ${exit.error.message}` : ""}`,
          ...(exit.error?.stack ? { stack: exit.error.stack } : {}),
        };
      this.finish(running, { ok: false, error });
    }
  }

  #unwait(worker: WorkerHandle, running: Running): void {
    const waiting = this.#waiting.get(worker);
    const at = waiting?.indexOf(running) ?? -1;
    if (at >= 0) waiting!.splice(at, 1);
  }

  /** A task began to run in its worker: its timeout starts now. */
  #started(running: Running): void {
    const r = running.claimed.record;
    const timeout = r.timeout ?? this.#ctx.options.timeout;
    if (timeout > 0) running.timer = setTimeout(() => this.abort(running, "timeout"), timeout);
    this.#ctx.emit("task:start", { record: r });
  }

  /**
   * A task of `worker` ended: the next task waiting in that worker starts (the worker starts
   * them in the order sent, one for each that ends; a waiting task that was aborted ends
   * without starting another).
   */
  #startNextWaiting(worker: WorkerHandle): void {
    const waiting = this.#waiting.get(worker);
    const next = waiting?.shift();
    if (!next) return;
    next.waiting = false;
    next.waitingSince = Infinity;
    next.startedAt = performance.now();
    next.claimed = {
      ...next.claimed,
      record: next.claimed.record.began(next.store.now()),
    };
    if (this.#running.get(next.claimed.record.id) === next) this.#started(next);
  }

  /** Aborts a running task's signal, then terminates its worker after the grace period. */
  abort(running: Running, reason: "timeout" | "cancel"): void {
    if (running.timedOut || running.cancelled) return;
    if (reason === "timeout") running.timedOut = true;
    else running.cancelled = true;
    const worker = running.worker;
    if (worker === null) {
      // Held, never started: it ends here without running.
      this.#ctx.parts.held.remove(running);
      this.finish(running, {
        ok: false,
        error: { name: "TaskCancelledError", message: "Cancelled before it started" },
      });
      return;
    }
    worker.abort(running.claimed.record.id, reason);
    running.graceTimer = setTimeout(() => {
      if (this.#running.get(running.claimed.record.id) !== running) return;
      this.#ctx.parts.pool.drainSlotOf(worker);
      void worker.terminate(`${reason} of task ${running.claimed.record.id}`);
    }, this.#ctx.options.abortGrace);
  }

  /** Reads the cancel requests shortly (once however often asked), and acts on them. */
  scheduleCancelCheck(): void {
    if (this.#cancelCheck || this.#ctx.signal.aborted) return;
    this.#cancelCheck = setTimeout(async () => {
      this.#cancelCheck = null;
      for (const store of this.#ctx.stores) {
        try {
          const ids = await cancelRequests(store);
          const others: string[] = [];
          for (const id of ids) {
            const running = this.#running.get(id);
            if (running && running.store === store) this.abort(running, "cancel");
            else others.push(id);
          }
          if (others.length > 0) await dropStaleCancels(store, others);
        } catch (error) {
          this.#ctx.report(error as Error, "cancel check");
        }
      }
    }, CANCEL_CHECK_MS);
  }

  /** A task ended (or never started): its outcome goes to the result writer. */
  finish(running: Running, result: RunResult): void {
    const id = running.claimed.record.id;
    if (this.#running.get(id) !== running) return;
    this.#running.delete(id);
    if (running.worker !== null) {
      const ms = performance.now() - running.startedAt;
      this.#taskMs = Number.isFinite(this.#taskMs) ? this.#taskMs + (ms - this.#taskMs) * 0.1 : ms;
    }
    if (running.timer) clearTimeout(running.timer);
    if (running.graceTimer) clearTimeout(running.graceTimer);
    const { options, parts } = this.#ctx;
    const outcome = outcomeOf(
      running.claimed,
      result,
      {
        cancelled: running.cancelled,
        started: running.worker !== null && !running.waiting,
        timedOut: running.timedOut,
      },
      options.retry,
      running.store.now(),
    );
    const retryAt = outcome.kind === "failure" || outcome.kind === "pushback"
      ? outcome.retryAt
      : null;
    if (retryAt !== null && options.burst) parts.pump.awaitRetry(id, running.store);
    if (outcome.kind === "failure") outcome.runTrace = this.#ctx.runTrace(id);
    // Rate limited: its queue starts nothing more here at once, before the hold is stored.
    if (outcome.kind === "pushback") {
      parts.pump.hold(running.store, outcome.retryAt, running.claimed.record.partition);
    }
    // This cluster writes progress itself and sees every cancel request it acts on; one it has
    // not seen yet is removed by the cancel check once the task is gone.
    outcome.sideKeys = { progress: running.progress, cancel: running.cancelled };
    parts.writer.push(outcome);
  }

  /**
   * Empties the table for a shutdown, with every timer of its tasks cleared: the tasks left go
   * back to `ready` once their workers are terminated.
   */
  takeAll(): Running[] {
    const left = [...this.#running.values()];
    this.#running.clear();
    for (const r of left) {
      if (r.timer) clearTimeout(r.timer);
      if (r.graceTimer) clearTimeout(r.graceTimer);
    }
    for (const t of this.#recallTimers.values()) clearTimeout(t);
    this.#recallTimers.clear();
    return left;
  }

  /** Nothing to finish: a shutdown empties it with {@linkcode takeAll}. */
  [Symbol.asyncDispose](): Promise<void> {
    return Promise.resolve();
  }
}
