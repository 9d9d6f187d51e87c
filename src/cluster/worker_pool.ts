/**
 * The worker pool: one slot per worker, each holding the worker of its current generation. It
 * spawns them, respawns a slot whose worker ended (the one respawn point), recycles a worker
 * after `recycle` tasks or past `maxMemoryMb`, terminates them all at shutdown, and watches a
 * terminated worker's thread that keeps burning CPU (Deno can't stop a CPU-bound worker).
 *
 * @module
 */
import { runtime } from "../runtime/mod.ts";
import type { ClusterContext, PoolRole } from "./context.ts";
import { readThreadCpu } from "./thread_stats.ts";
import type { WorkerStat } from "./stats.ts";
import { type WorkerExitEvent, WorkerHandle } from "./worker_handle.ts";

/** CPU a terminated worker's thread may still use before it counts as stuck, in ms. */
const STUCK_CPU_MS = 400;

/** How long a failed respawn waits before it is tried again, in ms. */
const RESPAWN_RETRY_MS = 1000;

/** One worker place: its number, and the worker of its current generation. */
interface Slot {
  slot: number;
  generation: number;
  worker: WorkerHandle | null;
  draining: boolean;
}

/** The cluster's workers. */
export class WorkerPool implements PoolRole {
  readonly #ctx: ClusterContext;
  #slots: Slot[] = [];
  #reincarnations: number;
  #stuck: string[] = [];

  constructor(ctx: ClusterContext, priorReincarnations: number) {
    this.#ctx = ctx;
    this.#reincarnations = priorReincarnations;
  }

  /** Workers started again after one ended (this process's, and its predecessors'). */
  get reincarnations(): number {
    return this.#reincarnations;
  }

  /** Workers whose terminated thread kept burning CPU. */
  get stuck(): readonly string[] {
    return this.#stuck;
  }

  /** Starts every worker: the first proves the task modules load, the others follow at once. */
  async start(): Promise<void> {
    for (let i = 1; i <= this.#ctx.options.workers; i++) {
      this.#slots.push({ slot: i, generation: 0, worker: null, draining: false });
    }
    await this.#spawn(this.#slots[0]!);
    await Promise.all(this.#slots.slice(1).map((s) => this.#spawn(s)));
  }

  async #spawn(slot: Slot): Promise<void> {
    const { options, parts } = this.#ctx;
    slot.generation++;
    slot.draining = false;
    const worker = new WorkerHandle(slot.slot, slot.generation, {
      modules: options.tasks,
      concurrency: options.concurrency,
    });
    slot.worker = worker;
    worker.on("task:done", (done) => {
      if (!parts.running.done(worker, done)) return;
      const limitMb = options.maxMemoryMb;
      const recycle = options.recycle;
      if (
        !slot.draining && slot.worker === worker &&
        ((recycle > 0 && worker.tasksRun >= recycle) ||
          (limitMb > 0 && done.heap > limitMb * 1024 * 1024))
      ) {
        slot.draining = true;
        void worker.drain();
      }
      // The next held task starts now, not after a KV round trip.
      parts.held.dispatch();
      parts.pump.wake();
    });
    worker.on("task:recalled", ({ id }) => parts.running.recalled(worker, id));
    worker.on("task:progress", (p) => parts.running.progress(p));
    worker.on("worker:exit", (exit) => this.#onExit(slot, worker, exit));
    await worker.start();
    this.#ctx.emit("worker:spawn", {
      worker: worker.name,
      slot: slot.slot,
      generation: slot.generation,
    });
  }

  #onExit(slot: Slot, worker: WorkerHandle, exit: WorkerExitEvent): void {
    const ctx = this.#ctx;
    ctx.emit("worker:exit", exit);
    ctx.parts.running.workerExited(worker, exit);
    if (exit.reason === "terminated" && worker.tid !== null && !runtime.terminateStopsCpu) {
      this.#watchStuck(worker.name, worker.tid);
    }
    if (slot.worker !== worker || ctx.signal.aborted) return;
    slot.worker = null;
    this.#reincarnations++;
    const respawn = () => {
      if (ctx.signal.aborted) return;
      this.#spawn(slot).then(() => ctx.parts.pump.wake(), (error) => {
        // A stop terminates a worker that is still starting: that is no failure.
        if (ctx.signal.aborted) return;
        ctx.report(error as Error, `respawn of worker slot ${slot.slot}`);
        setTimeout(respawn, RESPAWN_RETRY_MS);
      });
    };
    respawn();
  }

  /** Deno: a terminated worker's thread may go on burning CPU. Check it twice. */
  #watchStuck(name: string, tid: number): void {
    // A thread that still exists and keeps gaining CPU after terminate() is stuck. Sample once a
    // second for up to ten seconds, so a busy machine that gives it little CPU is not mistaken
    // for a thread that stopped.
    const cpuAt = () => readThreadCpu([tid]).get(tid)?.cpuMs ?? null;
    const first = cpuAt();
    if (first === null) return;
    let checks = 0;
    const check = () => {
      if (this.#ctx.signal.aborted) return;
      const now = cpuAt();
      if (now === null) return; // the thread ended
      if (now - first >= STUCK_CPU_MS) {
        this.#stuck.push(name);
        this.#ctx.emit("cluster:stuck", { worker: name, tid });
        return;
      }
      if (++checks < 10) setTimeout(check, 1000);
    };
    setTimeout(check, 1000);
  }

  /** The worker called `name`, if it is alive. */
  byName(name: string): WorkerHandle | null {
    for (const s of this.#slots) if (s.worker?.name === name) return s.worker;
    return null;
  }

  /** The names of the current workers. */
  names(): string[] {
    return this.#slots.map((s) => s.worker?.name).filter((n): n is string => !!n);
  }

  /** The workers that take tasks: started, not draining, not exited. */
  serving(): WorkerHandle[] {
    const out: WorkerHandle[] = [];
    for (const s of this.#slots) {
      const w = s.worker;
      if (w && !s.draining && (w.state === "idle" || w.state === "busy")) out.push(w);
    }
    return out;
  }

  /** Takes no more tasks for `worker`'s slot: it is about to be terminated. */
  drainSlotOf(worker: WorkerHandle): void {
    const slot = this.#slots.find((s) => s.worker === worker);
    if (slot) slot.draining = true;
  }

  /** The thread ids of the workers, where known. */
  tids(): number[] {
    return this.#slots.map((s) => s.worker?.tid).filter((t): t is number => typeof t === "number");
  }

  /** The task names the workers export. */
  funcs(): string[] {
    return [...this.#slots.find((s) => s.worker && s.worker.funcs.length > 0)?.worker?.funcs ?? []];
  }

  /** Each worker, for the heartbeat, with its CPU share by thread id. */
  stats(cpuByTid: ReadonlyMap<number, number>): WorkerStat[] {
    return this.#slots.filter((s) => s.worker).map((s) => {
      const w = s.worker!;
      return {
        name: w.name,
        slot: s.slot,
        generation: s.generation,
        state: s.draining ? "draining" : w.state,
        tasks: this.#ctx.parts.running.tasksOf(w),
        tasksRun: w.tasksRun,
        cpu: w.tid === null ? 0 : Math.round((cpuByTid.get(w.tid) ?? 0) * 10) / 10,
        heap: w.lastHeap,
        tid: w.tid,
      };
    });
  }

  /** Terminates every worker (their tasks left in the running table go back to ready). */
  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.all(this.#slots.map((s) => s.worker?.terminate("shutdown")));
  }
}
