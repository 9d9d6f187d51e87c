/**
 * The cluster: a supervisor that owns the KV handle and a pool of named Web Workers, and hands
 * them tasks. It never polls. It wakes on
 *
 * - the change feed (this process's commits, the KV file's `-wal` watch, `kv.watch` on remote);
 * - native KV doorbells (`listenQueue`) for delayed tasks and retries;
 * - a timer for the earliest delayed task;
 * - workers finishing tasks.
 *
 * The heartbeat (one commit per queue every few seconds) also looks for leases of dead clusters.
 *
 * Supervisor states:
 *
 * ```
 * new ──start()──▶ running ──stop() / burst idle──▶ stopping ──▶ stopped
 * ```
 *
 * @module
 */
import { freemem, hostname } from "node:os";
import process from "node:process";
import { runtime } from "../runtime/mod.ts";
import type { ErrorInfo } from "./protocol.ts";
import { TaskId } from "../task/task_id.ts";
import { TaskRecord } from "../task/record.ts";
import { verify } from "../task/signature.ts";
import { toErrorInfo } from "../task/errors.ts";
import { commitAtomic, retryBusy } from "../store/commit.ts";
import { pruneStats } from "../store/stats.ts";
import { cancelRequests, dropStaleCancels } from "../store/cancel.ts";
import { type Claimed, claimTasks } from "../store/claim.ts";
import { completeTasks, type Outcome } from "../store/complete.ts";
import { promoteAndPeek } from "../store/promote.ts";
import { fireDueSchedules, nextScheduleAt } from "../schedule/fire.ts";
import {
  listLeases,
  lostLeases,
  readStarted,
  releaseTasks,
  requeueLost,
  writeStarted,
} from "../store/recover.ts";
import { KvHandle, Store } from "../store/store.ts";
import { pruneFinished, type RetentionOptions } from "../store/prune.ts";
import { type ClusterEventMap, TypedEvents } from "./events.ts";
import { type HeartbeatInfo, Liveness } from "./liveness.ts";
import { CpuMeter, readThreadCpu } from "./thread_stats.ts";
import { type WorkerExitEvent, WorkerHandle } from "./worker_handle.ts";
import { outcomeOf, type RunResult } from "./outcome.ts";
import type { ClusterStat, ClusterState } from "./stats.ts";
import {
  type ClusterOptions,
  type QueueWeight,
  type ResolvedOptions,
  resolveOptions,
} from "./options.ts";
import { PeerWatch } from "./peer_watch.ts";
import { signalFile } from "../store/changes.ts";

export { type ClusterOptions, parseQueueWeights, type QueueWeight } from "./options.ts";
export type { ClusterStat, WorkerStat } from "./stats.ts";

/**
 * How long a failed KV write keeps {@linkcode Cluster.kvHealthy} false when nothing was written
 * since, in ms (at least two heartbeats, so a KV that stays down keeps it false between beats).
 */
export const KV_FAILURE_MEMORY_MS = 5_000;

/**
 * The error contexts of {@linkcode Cluster} that are failed KV writes. (A claim's write failure
 * surfaces as "dispatch"; the "claim" context itself reports a damaged record, not a write.)
 */
const KV_WRITE_CONTEXTS = new Set([
  "storing results",
  "heartbeat",
  "dispatch",
  "release",
  "progress",
]);

interface Running {
  claimed: Claimed;
  store: Store;
  /** Null while held: claimed ahead of a free place, not handed to a worker yet. */
  worker: WorkerHandle | null;
  /** When it started in its worker (performance.now), for the prefetch estimate. */
  startedAt: number;
  /** When it was last held, claimed or recalled (performance.now): held too long goes back. */
  heldAt: number;
  /** Sent to a worker that was running all it may: it starts when one of those ends. */
  waiting: boolean;
  /** Takes a waiting task back if it still waits after {@linkcode RECALL_MS}. */
  recallTimer: ReturnType<typeof setTimeout> | null;
  timer: ReturnType<typeof setTimeout> | null;
  graceTimer: ReturnType<typeof setTimeout> | null;
  timedOut: boolean;
  cancelled: boolean;
  progress: boolean;
}

/** A claimed task not handed to a worker yet. */
function newRunning(store: Store, claimed: Claimed): Running {
  return {
    claimed,
    store,
    worker: null,
    startedAt: 0,
    heldAt: performance.now(),
    waiting: false,
    recallTimer: null,
    timer: null,
    graceTimer: null,
    timedOut: false,
    cancelled: false,
    progress: false,
  };
}

interface Slot {
  slot: number;
  generation: number;
  worker: WorkerHandle | null;
  draining: boolean;
}

const encoder = new TextEncoder();

/**
 * The most often the delayed and schedule indexes are read, and due tasks promoted, in ms. Each
 * promotion is a commit and a wake: tasks coming due a millisecond apart are promoted a few at
 * a time (measured, 20,000 tasks over 30 s: a third less CPU than a 2 ms gap, lateness p50 up
 * from 3 to 6 ms).
 */
const PROMOTE_EVERY_MS = 5;

/**
 * How much work, in ms of the workers' time at the task durations seen, a cluster claims ahead
 * of its free places (see {@linkcode ClusterOptions.prefetch}).
 */
export const PREFETCH_WINDOW_MS = 20;

/**
 * How long a task sent early may wait in a worker behind another before the cluster takes it
 * back for a free place elsewhere, in ms.
 */
const RECALL_MS = 2 * PREFETCH_WINDOW_MS;

/** How far behind a cluster's clock may be and its heartbeat still not expire, in ms. */
const HEARTBEAT_SKEW_MS = 5 * 60_000;

/** How long outcomes gather before they are written while the cluster is under load, in ms. */
const FLUSH_DELAY_MS = 2;

/** CPU a terminated worker's thread may still use before it counts as stuck, in ms. */
const STUCK_CPU_MS = 400;

/**
 * A worker cluster.
 *
 * @example
 * ```ts
 * await using cluster = new Cluster({ tasks: ["./tasks.ts"], workers: 2 });
 * await cluster.start();
 * await cluster.stopped; // until stop() or, with burst, until the queue is empty
 * ```
 */
export class Cluster extends TypedEvents<ClusterEventMap> {
  /** This cluster's id (a UUIDv7). */
  readonly id: string;
  readonly #options: ResolvedOptions;
  readonly #queues: Required<QueueWeight>[];
  readonly #retention: RetentionOptions;
  /** The weighted order in which free places go to the queues: `a:2,b:1` is [a, a, b]. */
  #turns: number[] = [];
  #paused = new Set<string>();
  #handle: KvHandle | null = null;
  #ownsHandle = false;
  #stores: Store[] = [];
  #slots: Slot[] = [];
  #running = new Map<string, Running>();
  /** Claimed ahead of a free place, oldest first; also in #running. */
  #held: Running[] = [];
  /** Per worker: tasks sent to it that wait there to start, in the order sent. */
  #waiting = new Map<WorkerHandle, Running[]>();
  /**
   * Per queue: held tasks that may start (armed) or started, whose outcome is not stored yet:
   * the cluster's `started` list. A held task starts only once a written list names it.
   */
  #startedHeld = new Map<Store, Set<string>>();
  /** Queues whose started list changed since it was last written. */
  #startedDirty = new Set<Store>();
  /** Aborted when the cluster begins to stop. */
  readonly #stopping = new AbortController();
  /** Same-host peers watched for their death; null on remote KV. */
  #peers: PeerWatch | null = null;
  /** A recovery started by a peer's death, while it runs. */
  #recovering: Promise<void> | null = null;
  /** A peer died while {@linkcode #recovering} ran: recover again after it. */
  #recoverAgain = false;
  /** Checks the held tasks for ones that waited too long: see {@linkcode #shedHeld}. */
  #shedTimer: ReturnType<typeof setTimeout> | null = null;
  /** Held tasks named in a written started list: free to start. */
  #armed = new Set<string>();
  /** Held tasks named in the started list but not yet written. */
  #arming = new Set<string>();
  /** The started list write in progress. */
  #writingStarted: Promise<void> | null = null;
  /**
   * A moving average of how long a task keeps its place, in ms (for prefetch); unknown until a
   * task ends, and nothing is prefetched until then.
   */
  #taskMs = Infinity;
  /** Burst mode: tasks this cluster scheduled for a retry, which it waits for. */
  #retrying = new Map<string, Store>();
  #pending: Outcome[] = [];
  #flushing: Promise<void> | null = null;
  #state: ClusterState = "new";
  #pumping: Promise<void> | null = null;
  /** Outcomes not yet stored, by worker name: its place is not free until they are. */
  #unstored = new Map<string, number>();
  #promotedAt = -Infinity;
  #promoteDue = true;
  #promoteTrailing: ReturnType<typeof setTimeout> | null = null;
  #dirty = false;
  #rr = 0;
  #delayTimer: ReturnType<typeof setTimeout> | null = null;
  #delayAt = Infinity;
  #heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  #unsubscribe: (() => void)[] = [];
  #liveness: Liveness;
  #cpu = new CpuMeter();
  #cpuByTid = new Map<number, number>();
  #lastCpu = process.cpuUsage();
  #lastCpuAt = performance.now();
  #clusterCpu = 0;
  #startedAt = 0;
  #reincarnations = 0;
  #prunedAt = 0;
  /** When retention last ran (performance.now), and the processed count then. */
  #retainedAt = -Infinity;
  #retainedAtCount = -1;
  #beats = 0;
  #counts = { processed: 0, succeeded: 0, failed: 0, dropped: 0 };
  #lowestFree = Infinity;
  #stuck: string[] = [];
  #cancelCheck: ReturnType<typeof setTimeout> | null = null;
  #stopped: Promise<void>;
  #resolveStopped!: () => void;
  #doorbell: Promise<void> | null = null;
  /** When (performance.now) a KV write last failed; null after a good heartbeat or result write. */
  #kvFailedAt: number | null = null;

  constructor(options: ClusterOptions) {
    super();
    const resolved = resolveOptions(options);
    this.#options = resolved.options;
    this.#queues = resolved.queues;
    this.#retention = resolved.retention;
    this.#turns = resolved.turns;
    this.#reincarnations = resolved.priorReincarnations;
    this.id = TaskId.create().id;
    this.#liveness = new Liveness(this.id, this.#options.leaseTimeout);
    this.#stopped = new Promise((resolve) => this.#resolveStopped = resolve);
  }

  /** Resolves once the cluster has stopped (after {@linkcode stop}, or in burst mode when idle). */
  get stopped(): Promise<void> {
    return this.#stopped;
  }

  /**
   * False while the cluster's most recent KV write failed, within the last
   * {@linkcode KV_FAILURE_MEMORY_MS} (or two heartbeats, if longer); true again after the next
   * successful heartbeat or result write. For readiness probes, e.g. the dashboard's `/readyz`.
   */
  get kvHealthy(): boolean {
    if (this.#kvFailedAt === null) return true;
    const memory = Math.max(KV_FAILURE_MEMORY_MS, 2 * this.#options.heartbeat);
    return performance.now() - this.#kvFailedAt > memory;
  }

  /** The cluster's state. */
  get state(): ClusterState {
    return this.#state;
  }

  /** Opens KV, starts the workers and begins taking tasks. */
  async start(): Promise<void> {
    if (this.#state !== "new") throw new Error(`Cluster ${this.id} was already started`);
    this.#state = "running";
    this.#startedAt = (this.#options.clock ?? Date.now)();
    try {
      const kv = this.#options.kv;
      if (kv instanceof KvHandle) this.#handle = kv;
      else {
        this.#handle = await KvHandle.open({
          kv: kv ?? null,
          noNativeQueue: this.#options.noNativeQueue,
        });
        this.#ownsHandle = true;
      }
      const clock = this.#options.clock;
      this.#stores = this.#queues.map((q) =>
        new Store(this.#handle!, q.name, {
          ...(clock ? { clock } : {}),
          ...(this.#options.secret !== undefined ? { secret: this.#options.secret } : {}),
        })
      );
      for (let i = 1; i <= this.#options.workers; i++) {
        this.#slots.push({ slot: i, generation: 0, worker: null, draining: false });
      }
      // The first worker proves the task modules load; the others start in parallel after it.
      await this.#spawn(this.#slots[0]!);
      await Promise.all(this.#slots.slice(1).map((s) => this.#spawn(s)));
    } catch (error) {
      // A stop that began while the workers started is not a failure to start.
      if (this.#state !== "running") return await this.#stopped;
      await this.#shutdown();
      throw error;
    }
    if (this.#state !== "running") return await this.#stopped;
    // Same-host peers on a local KV file: learn of a death at once, not at the next beat.
    const signal = signalFile(this.#handle.location);
    if (signal !== null) {
      this.#peers = new PeerWatch({
        dir: signal.dir,
        onGone: () => this.#recoverNow(),
        onJoin: () => this.#recoverNow(),
        signal: this.#stopping.signal,
        report: (error, context) => this.#report(error, context),
      });
      await this.#peers.start();
    }
    await this.#beat();
    for (const store of this.#stores) {
      this.#unsubscribe.push(store.changes.subscribe(() => this.#wake()));
    }
    if (this.#handle.nativeQueue) this.#listenDoorbells();
    this.#heartbeatTimer = setInterval(() => void this.#beat(), this.#options.heartbeat);
    this.#wake();
  }

  /**
   * Stops gracefully: claims nothing more, lets running tasks finish within `grace` ms, releases
   * the rest back to `ready`, and closes.
   */
  async stop(options: { grace?: number } = {}): Promise<void> {
    if (this.#state === "new") {
      this.#state = "stopped";
      this.#resolveStopped();
      return;
    }
    if (this.#state !== "running") return await this.#stopped;
    this.#state = "stopping";
    // Held tasks never started: give them back now rather than run them during the grace.
    await this.#pumping;
    await this.#releaseHeld();
    const grace = options.grace ?? this.#options.grace;
    if (this.#running.size > 0 && grace > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, grace);
        const off = this.on("task:finish", () => {
          if (this.#running.size === 0) done();
        });
        function done() {
          clearTimeout(timer);
          off();
          resolve();
        }
        if (this.#running.size === 0) done();
      });
    }
    await this.#shutdown();
  }

  async #shutdown(): Promise<void> {
    this.#state = "stopping";
    this.#stopping.abort();
    if (this.#heartbeatTimer) clearInterval(this.#heartbeatTimer);
    if (this.#shedTimer) clearTimeout(this.#shedTimer);
    if (this.#delayTimer) clearTimeout(this.#delayTimer);
    if (this.#promoteTrailing) clearTimeout(this.#promoteTrailing);
    if (this.#cancelCheck) clearTimeout(this.#cancelCheck);
    for (const off of this.#unsubscribe) off();
    this.#unsubscribe = [];
    // A claim in flight either dispatches before this or releases what it claimed.
    await this.#pumping;
    // Whatever still runs goes back to ready once its worker is terminated, so a released task
    // never runs here and elsewhere at once.
    const left = [...this.#running.values()];
    this.#running.clear();
    for (const r of left) {
      if (r.timer) clearTimeout(r.timer);
      if (r.graceTimer) clearTimeout(r.graceTimer);
      if (r.recallTimer) clearTimeout(r.recallTimer);
    }
    await Promise.all(this.#slots.map((s) => s.worker?.terminate("shutdown")));
    await this.#writingStarted;
    await this.#flush();
    for (const store of this.#stores) {
      const mine = left.filter((r) => r.store === store).map((r) => r.claimed);
      if (mine.length > 0) await releaseTasks(store, mine).catch((e) => this.#report(e, "release"));
    }
    for (const store of this.#stores) {
      await store.kv.delete(store.keys.cluster(this.id)).catch(() => {});
      await store.kv.delete(store.keys.started(this.id)).catch(() => {});
    }
    if (this.#doorbell) await Promise.race([this.#doorbell, new Promise((r) => setTimeout(r, 50))]);
    // Last: peers that see the socket close find no lease of this cluster left to recover.
    await this.#peers?.close();
    if (this.#ownsHandle) this.#handle?.close();
    this.#state = "stopped";
    this.#resolveStopped();
  }

  /** Same as a graceful {@linkcode stop}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  // ── workers ────────────────────────────────────────────────────────────────────────────

  async #spawn(slot: Slot): Promise<void> {
    slot.generation++;
    slot.draining = false;
    const worker = new WorkerHandle(slot.slot, slot.generation, {
      modules: this.#options.tasks,
      concurrency: this.#options.concurrency,
    });
    slot.worker = worker;
    worker.on("task:done", (done) => {
      const running = this.#running.get(done.id);
      if (!running) return;
      if (running.waiting) {
        // Aborted before it started: no other task starts in its place.
        const waiting = this.#waiting.get(worker);
        const at = waiting?.indexOf(running) ?? -1;
        if (at >= 0) waiting!.splice(at, 1);
      } else this.#startNextWaiting(worker);
      this.#finish(
        running,
        done.ok ? { ok: true, result: done.result } : { ok: false, error: done.error },
      );
      const limitMb = this.#options.maxMemoryMb;
      const recycle = this.#options.recycle;
      if (
        !slot.draining && slot.worker === worker &&
        ((recycle > 0 && worker.tasksRun >= recycle) ||
          (limitMb > 0 && done.heap > limitMb * 1024 * 1024))
      ) {
        slot.draining = true;
        void worker.drain();
      }
      // The next held task starts now, not after a KV round trip.
      this.#dispatchHeld();
      this.#wake();
    });
    worker.on("task:recalled", ({ id }) => this.#recalled(worker, id));
    worker.on("task:progress", (p) => {
      const running = this.#running.get(p.id);
      if (!running) return;
      running.progress = true;
      const value = JSON.stringify({ fraction: p.fraction, message: p.message, at: Date.now() });
      running.store.kv.set(running.store.keys.progress(p.id), encoder.encode(value)).then(
        () =>
          this.emit("task:progress", {
            id: p.id,
            fraction: p.fraction,
            message: p.message ?? null,
          }),
        (e) => this.#report(e, "progress"),
      );
    });
    worker.on("worker:exit", (exit) => this.#onWorkerExit(slot, worker, exit));
    await worker.start();
    this.emit("worker:spawn", {
      worker: worker.name,
      slot: slot.slot,
      generation: slot.generation,
    });
  }

  #onWorkerExit(slot: Slot, worker: WorkerHandle, exit: WorkerExitEvent): void {
    this.emit("worker:exit", exit);
    this.#waiting.delete(worker);
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
      this.#finish(running, { ok: false, error });
    }
    if (exit.reason === "terminated" && worker.tid !== null && !runtime.terminateStopsCpu) {
      this.#watchStuck(worker.name, worker.tid);
    }
    if (slot.worker !== worker || this.#state !== "running") return;
    slot.worker = null;
    this.#reincarnations++;
    const respawn = () => {
      if (this.#state !== "running") return;
      this.#spawn(slot).then(() => this.#wake(), (error) => {
        // A stop terminates a worker that is still starting: that is no failure.
        if (this.#state !== "running") return;
        this.#report(error as Error, `respawn of worker slot ${slot.slot}`);
        setTimeout(respawn, 1000);
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
      if (this.#state !== "running") return;
      const now = cpuAt();
      if (now === null) return; // the thread ended
      if (now - first >= STUCK_CPU_MS) {
        this.#stuck.push(name);
        this.emit("cluster:stuck", { worker: name, tid });
        return;
      }
      if (++checks < 10) setTimeout(check, 1000);
    };
    setTimeout(check, 1000);
  }

  /**
   * Free task places, one worker name per place. `ahead` more per worker count as free for
   * tasks that may wait in the worker (held tasks), so it never waits for a round trip.
   */
  #freePlaces(ahead = 0): string[] {
    const out: string[] = [];
    const early: string[] = [];
    const now = performance.now();
    for (const s of this.#slots) {
      const w = s.worker;
      if (!w || s.draining || (w.state !== "idle" && w.state !== "busy")) continue;
      // A place whose last outcome is still being written may take its next task meanwhile, so
      // claims and result writes overlap: at most one such outcome per place, plus the worker's
      // share of the prefetch, so short held tasks run while their results are written.
      const unstored = this.#unstored.get(w.name) ?? 0;
      const allowed = this.#options.concurrency +
        Math.ceil(this.#options.prefetch / this.#options.workers);
      const used = w.inFlight.size + Math.max(0, unstored - allowed);
      for (let i = used; i < this.#options.concurrency; i++) out.push(w.name);
      // Early places only behind tasks that are short so far: a task never waits behind one
      // that has already run longer than the prefetch window.
      if (ahead > 0 && !this.#runsLong(w, now)) {
        for (
          let i = Math.max(used, this.#options.concurrency);
          i < this.#options.concurrency + ahead;
          i++
        ) {
          early.push(w.name);
        }
      }
    }
    // Places that start at once first.
    return early.length === 0 ? out : [...out, ...early];
  }

  /** How many tasks in workers started more than {@linkcode PREFETCH_WINDOW_MS} ago. */
  #longRunning(now: number): number {
    let n = 0;
    for (const r of this.#running.values()) {
      if (r.worker !== null && !r.waiting && now - r.startedAt > PREFETCH_WINDOW_MS) n++;
    }
    return n;
  }

  /** Whether a task in flight on `w` started more than {@linkcode PREFETCH_WINDOW_MS} ago. */
  #runsLong(w: WorkerHandle, now: number): boolean {
    for (const id of w.inFlight) {
      const r = this.#running.get(id);
      if (r && !r.waiting && now - r.startedAt > PREFETCH_WINDOW_MS) return true;
    }
    return false;
  }

  #workerByName(name: string): WorkerHandle | null {
    for (const s of this.#slots) if (s.worker?.name === name) return s.worker;
    return null;
  }

  // ── the pump ───────────────────────────────────────────────────────────────────────────

  #wake(): void {
    if (this.#state !== "running") return;
    if (this.#running.size > 0) this.#scheduleCancelCheck();
    if (this.#pumping) {
      this.#dirty = true;
      return;
    }
    this.#pumping = this.#pump().finally(() => {
      this.#pumping = null;
    });
  }

  /**
   * How many tasks to hold ahead of free places: what the workers finish in about
   * {@linkcode PREFETCH_WINDOW_MS} at the task durations seen, at most the prefetch option.
   */
  #heldTarget(): number {
    // A place busy with a task that already runs long frees no time soon: hold nothing for it.
    const places = this.#options.workers * this.#options.concurrency -
      this.#longRunning(performance.now());
    if (places <= 0) return 0;
    const fit = Math.floor(places * PREFETCH_WINDOW_MS / Math.max(0.01, this.#taskMs));
    return Math.min(this.#options.prefetch, fit);
  }

  /** The places to claim for: free places first, then held ones. */
  #claimPlaces(): { workers: string[]; held: boolean[] } {
    const free = this.#freePlaces();
    const target = this.#heldTarget();
    // Refill the held tasks only when they ran low, so claims come in batches.
    const extra = free.length > 0 || this.#held.length * 2 <= target
      ? Math.max(0, target - this.#held.length)
      : 0;
    const names = this.#slots.map((s) => s.worker?.name).filter((n): n is string => !!n);
    const workers = [...free];
    for (let i = 0; i < extra && names.length > 0; i++) workers.push(names[i % names.length]!);
    return { workers, held: workers.map((_, i) => i >= free.length) };
  }

  async #pump(): Promise<void> {
    try {
      do {
        this.#dirty = false;
        // Ready tasks first, delayed ones after: a task that is ready now should not wait for
        // the reads that arm the delay timer. A promotion signals a change, which runs this
        // loop again to claim what it promoted.
        this.#dispatchHeld();
        let places = this.#claimPlaces();
        let claimedAny = false;
        // Pause keys matter only when there is a place to fill.
        if (places.workers.length > 0) await this.#readPaused();
        // Share the places among the queues that are not paused, by weight, and give what a
        // queue could not use to the others in the next round.
        let open = this.#stores.map((_, i) => i).filter((i) =>
          !this.#paused.has(this.#stores[i]!.queue)
        );
        while (places.workers.length > 0 && open.length > 0 && this.#state === "running") {
          const share = new Map<number, { workers: string[]; held: boolean[] }>();
          const turns = this.#turns.filter((t) => open.includes(t));
          places.workers.forEach((place, i) => {
            const q = turns[this.#rr++ % turns.length]!;
            let s = share.get(q);
            if (!s) share.set(q, s = { workers: [], held: [] });
            s.workers.push(place);
            s.held.push(places.held[i]!);
          });
          const exhausted: number[] = [];
          /** Held tasks claimed in this round, per queue, to interleave by weight. */
          const heldNow = new Map<number, Claimed[]>();
          for (const [q, { workers, held }] of share) {
            const store = this.#stores[q]!;
            const claimed = await claimTasks(store, {
              cluster: this.id,
              workers,
              held,
              onCorrupt: (e) => this.#report(e, "claim"),
            });
            if (claimed.length > 0) claimedAny = true;
            if (claimed.length < Math.min(workers.length, store.handle.maxChecks)) {
              exhausted.push(q);
            }
            if (this.#state !== "running") {
              // A stop began while claiming: give these back rather than start them.
              heldNow.set(q, claimed);
              for (const [i, list] of heldNow) {
                if (list.length === 0) continue;
                await releaseTasks(this.#stores[i]!, list).catch((e) => this.#report(e, "release"));
              }
              return;
            }
            heldNow.set(q, claimed.filter((c) => c.held));
            for (const c of claimed) if (!c.held) this.#dispatch(store, c);
          }
          // Hold them in the queues' weighted turn order, so they start in proportion too.
          const taken = new Map<number, number>();
          for (let left = true; left;) {
            left = false;
            for (const q of this.#turns) {
              const k = taken.get(q) ?? 0;
              const c = heldNow.get(q)?.[k];
              if (c === undefined) continue;
              taken.set(q, k + 1);
              left = true;
              this.#hold(this.#stores[q]!, c);
            }
          }
          open = open.filter((q) => !exhausted.includes(q));
          this.#dispatchHeld();
          places = this.#claimPlaces();
        }
        if (claimedAny && places.workers.length > 0) this.#dirty = true;
        if (this.#state === "running") await this.#promote();
        if (
          !claimedAny && this.#options.burst && this.#running.size === 0 &&
          this.#pending.length === 0 && this.#writingStarted === null
        ) {
          if (this.#state === "running" && await this.#queuesEmpty()) {
            this.emit("cluster:idle", {});
            void this.stop();
            return;
          }
        }
      } while (this.#dirty && this.#state === "running");
    } catch (error) {
      this.#report(error as Error, "dispatch");
      if (this.#state === "running") setTimeout(() => this.#wake(), 500);
    }
  }

  /** Reads which queues are paused (one read per queue; the pump runs on changes). */
  async #readPaused(): Promise<void> {
    const entries = await this.#stores[0]!.kv.getMany(this.#stores.map((s) => s.keys.paused));
    this.#paused = new Set(
      this.#stores.filter((_, i) => entries[i]?.versionstamp !== null).map((s) => s.queue),
    );
  }

  /**
   * Burst mode's test: nothing queued or running, and no retry of a task this cluster ran still
   * waits for its backoff (the delay timer wakes the cluster for it).
   */
  async #queuesEmpty(): Promise<boolean> {
    for (const [id, store] of this.#retrying) {
      const entry = await store.kv.get(store.keys.task(id));
      let state: string | null = null;
      try {
        state = entry.versionstamp === null
          ? null
          : TaskRecord.decode(entry.key, entry.value).state;
      } catch {
        // a damaged record is no longer ours to wait for
      }
      if (state === "scheduled" || state === "queued") return false;
      this.#retrying.delete(id);
    }
    for (const store of this.#stores) {
      for await (const _ of store.kv.list({ prefix: store.keys.readyPrefix }, { limit: 1 })) {
        return false;
      }
      for await (const _ of store.kv.list({ prefix: store.keys.leases }, { limit: 1 })) {
        return false;
      }
    }
    return true;
  }

  /** Promotes due delayed tasks, fires due schedules, and arms the timer for the next one. */
  async #promote(): Promise<void> {
    // Under load every commit wakes the pump; the delayed and schedule indexes need reading only
    // when a timer or doorbell says something is due, or every few milliseconds for entries
    // another process added (a trailing wake makes sure those are seen). Tasks coming due a
    // millisecond apart are promoted together, at most every PROMOTE_EVERY_MS.
    const now = performance.now();
    if (now - this.#promotedAt < PROMOTE_EVERY_MS) {
      if (!this.#promoteTrailing) {
        this.#promoteTrailing = setTimeout(() => {
          this.#promoteTrailing = null;
          this.#wake();
        }, PROMOTE_EVERY_MS - (now - this.#promotedAt));
      }
      return;
    }
    this.#promoteDue = false;
    this.#promotedAt = now;
    let earliest = Infinity;
    for (const store of this.#stores) {
      // One batch per pump round: tasks keep coming due, and chasing them here would keep
      // the ones just promoted from being claimed. The next round promotes the rest.
      const { promoted, nextAt } = await promoteAndPeek(store, {
        onCorrupt: (e) => this.#report(e, "promote"),
      });
      let next = nextAt;
      if (next !== null && next <= store.now()) {
        if (promoted > 0) {
          this.#promoteDue = true;
          this.#dirty = true;
        } else next = store.now() + PROMOTE_EVERY_MS; // lost a race: look again shortly
      }
      if (next !== null) earliest = Math.min(earliest, next);
      let slot = await nextScheduleAt(store);
      if (slot !== null && slot <= store.now()) {
        await fireDueSchedules(store, {
          onCorrupt: (e) => this.#report(e, "schedule"),
          onRefused: (e) => this.#report(e, "schedule signature"),
        });
        slot = await nextScheduleAt(store);
      }
      if (slot !== null) earliest = Math.min(earliest, slot);
    }
    this.#armDelayTimer(earliest);
  }

  #armDelayTimer(at: number): void {
    if (at === this.#delayAt && this.#delayTimer) return;
    if (this.#delayTimer) clearTimeout(this.#delayTimer);
    this.#delayTimer = null;
    this.#delayAt = at;
    if (!Number.isFinite(at) || this.#state !== "running") return;
    const now = this.#stores[0]?.now() ?? Date.now();
    const delay = Math.min(2_000_000_000, Math.max(0, at - now));
    this.#delayTimer = setTimeout(() => {
      this.#delayTimer = null;
      this.#delayAt = Infinity;
      this.#promoteDue = true;
      this.#wake();
    }, delay);
  }

  #listenDoorbells(): void {
    const kv = this.#handle!.kv;
    try {
      this.#doorbell = kv.listenQueue((message: unknown) => {
        if (typeof message === "string" && message.startsWith("kvq:")) {
          this.#promoteDue = true;
          this.#wake();
        }
      }).catch((error) => {
        if (this.#state === "running") this.#report(error as Error, "doorbell listener");
      });
    } catch (error) {
      this.#report(error as Error, "doorbell listener");
    }
  }

  /** Keeps a task claimed ahead of a free place until {@linkcode #dispatchHeld} starts it. */
  #hold(store: Store, claimed: Claimed): void {
    const running = newRunning(store, claimed);
    this.#running.set(claimed.record.id, running);
    // Lower priority numbers first, then FIFO: a claim sees the ready index in that order, and
    // an urgent task claimed later overtakes the held ones.
    const p = claimed.record.priority;
    let at = this.#held.length;
    while (at > 0 && this.#held[at - 1]!.claimed.record.priority > p) at--;
    this.#held.splice(at, 0, running);
    this.#armShed();
  }

  /** Checks the held tasks again once the oldest has been held for {@linkcode RECALL_MS}. */
  #armShed(): void {
    if (this.#shedTimer !== null || this.#held.length === 0) return;
    const oldest = Math.min(...this.#held.map((r) => r.heldAt));
    const wait = Math.max(1, oldest + RECALL_MS - performance.now());
    this.#shedTimer = setTimeout(() => {
      this.#shedTimer = null;
      void this.#shedHeld();
    }, wait);
  }

  /**
   * Gives back to `ready` the held tasks that found no free place within {@linkcode RECALL_MS}:
   * the places are busy with tasks longer than the estimate, and another cluster (or this one,
   * once a place frees) should start them instead. A short task never waits here behind a long
   * one while another cluster idles.
   */
  async #shedHeld(): Promise<void> {
    if (this.#state !== "running" || this.#held.length === 0) return;
    this.#dispatchHeld();
    const now = performance.now();
    const stale = this.#held.filter((r) => now - r.heldAt >= RECALL_MS);
    // Only when every place runs a task that already runs long: busy short tasks free their
    // places soon, and giving their followers back would only churn claims.
    const blocked = this.#longRunning(now) >= this.#options.workers * this.#options.concurrency;
    if (stale.length > 0 && blocked && this.#freePlaces().length === 0) {
      await this.#giveBack(stale);
      this.#wake();
    }
    this.#armShed();
  }

  /**
   * Hands armed held tasks to free places, oldest first, and arms the next ones. Arming (naming
   * them in the started list, written before any of them starts) stays a batch ahead, so a
   * worker rarely waits for it; if the cluster dies, armed tasks that never started count an
   * attempt, and the rest of the held tasks go back uncounted.
   */
  #dispatchHeld(): void {
    if (this.#held.length === 0 || this.#state !== "running") return;
    const places = this.#freePlaces(1);
    let i = 0;
    while (i < places.length && this.#held.length > 0) {
      const running = this.#held[0]!;
      if (this.#running.get(running.claimed.record.id) !== running) {
        this.#held.shift();
        continue;
      }
      if (!this.#armed.has(running.claimed.record.id)) break;
      this.#held.shift();
      this.#armed.delete(running.claimed.record.id);
      // The record says which worker runs it and since when; the lease and its versionstamp
      // stay as claimed.
      const place = places[i++]!;
      const record = running.claimed.record.with({ worker: place, startedAt: running.store.now() });
      running.claimed = { ...running.claimed, record };
      this.#dispatch(running.store, running.claimed, running);
    }
    this.#arm();
  }

  /** Names the next held tasks in the started list when few armed ones are left. */
  #arm(): void {
    const places = this.#options.workers * this.#options.concurrency;
    const batch = Math.max(2 * places, Math.ceil(this.#heldTarget() / 2));
    if (this.#armed.size + this.#arming.size >= batch / 2) return;
    let added = 0;
    for (const running of this.#held) {
      if (added >= batch) break;
      const id = running.claimed.record.id;
      if (this.#armed.has(id) || this.#arming.has(id)) continue;
      let list = this.#startedHeld.get(running.store);
      if (!list) this.#startedHeld.set(running.store, list = new Set());
      list.add(id);
      this.#arming.add(id);
      this.#startedDirty.add(running.store);
      added++;
    }
    if (added > 0 && !this.#writingStarted) this.#writingStarted = this.#writeStartedLists();
  }

  /** A held task ended or went back: it leaves the started list (the next write drops it). */
  #forgetHeld(store: Store, id: string): void {
    this.#startedHeld.get(store)?.delete(id);
    this.#armed.delete(id);
    this.#arming.delete(id);
  }

  /** A held task whose lease another cluster took: it is no longer ours to run or write. */
  #dropHeld(id: string): void {
    const running = this.#running.get(id);
    if (!running || running.worker !== null) return;
    this.#running.delete(id);
    const at = this.#held.indexOf(running);
    if (at >= 0) this.#held.splice(at, 1);
    this.#forgetHeld(running.store, id);
  }

  /** Gives held tasks back to `ready` (a stop began). */
  async #releaseHeld(): Promise<void> {
    if (this.#shedTimer !== null) clearTimeout(this.#shedTimer);
    this.#shedTimer = null;
    await this.#giveBack([...this.#held]);
  }

  /** Gives these held tasks back to `ready`, uncounted: they never started here. */
  async #giveBack(tasks: Running[]): Promise<void> {
    const mine = new Set(tasks);
    this.#held = this.#held.filter((r) => !mine.has(r));
    // An entry whose task ended or was claimed again meanwhile is not this one's to release.
    const held = tasks.filter((r) => this.#running.get(r.claimed.record.id) === r);
    for (const r of held) {
      this.#running.delete(r.claimed.record.id);
      this.#forgetHeld(r.store, r.claimed.record.id);
    }
    for (const store of this.#stores) {
      const mine = held.filter((r) => r.store === store).map((r) => r.claimed);
      if (mine.length > 0) await releaseTasks(store, mine).catch((e) => this.#report(e, "release"));
    }
  }

  #dispatch(store: Store, claimed: Claimed, held?: Running): void {
    const r = claimed.record;
    const worker = this.#workerByName(r.worker!);
    const running = held ?? newRunning(store, claimed);
    running.worker = worker;
    running.startedAt = performance.now();
    this.#running.set(r.id, running);
    if (store.secrets !== null) {
      try {
        verify(store.secrets, r, claimed.argsJson, r.sig);
      } catch (error) {
        // Never run it: the attempt fails for good with the reason.
        this.#finish(running, { ok: false, error: toErrorInfo(error) });
        return;
      }
    }
    if (!worker || (worker.state !== "idle" && worker.state !== "busy")) {
      // The worker died between claim and dispatch: this attempt fails and is retried.
      this.#finish(running, {
        ok: false,
        error: {
          name: "WorkerCrashError",
          message: `Worker ${r.worker} was gone before the task started`,
        },
      });
      return;
    }
    // A worker already running all it may waits to start this one until one of them ends.
    running.waiting = worker.inFlight.size >= this.#options.concurrency;
    worker.run({
      id: r.id,
      name: r.name,
      func: r.func,
      args: claimed.argsJson,
      attempt: r.attempt,
      queue: r.queue,
    });
    if (running.waiting) {
      let waiting = this.#waiting.get(worker);
      if (!waiting) this.#waiting.set(worker, waiting = []);
      waiting.push(running);
      // The task ahead turned out long: take this one back rather than let it wait behind.
      running.recallTimer = setTimeout(() => {
        running.recallTimer = null;
        if (running.waiting && this.#running.get(r.id) === running) worker.recall(r.id);
      }, RECALL_MS);
    } else this.#started(running);
  }

  /** A task came back from a worker unstarted: it is held again, first in line. */
  #recalled(worker: WorkerHandle, id: string): void {
    const running = this.#running.get(id);
    if (!running || !running.waiting || running.worker !== worker) return;
    const waiting = this.#waiting.get(worker);
    const at = waiting?.indexOf(running) ?? -1;
    if (at >= 0) waiting!.splice(at, 1);
    running.waiting = false;
    running.worker = null;
    // It is still named in the started list, so it may start again at once.
    this.#armed.add(id);
    this.#held.unshift(running);
    this.#dispatchHeld();
    // Still no free place here: it has waited a recall period already, so it goes back at once.
    if (this.#held.includes(running)) {
      running.heldAt = performance.now() - RECALL_MS;
      void this.#shedHeld();
    }
  }

  /** A task began to run in its worker: its timeout starts now. */
  #started(running: Running): void {
    const r = running.claimed.record;
    const timeout = r.timeout ?? this.#options.timeout;
    if (timeout > 0) running.timer = setTimeout(() => this.#abort(running, "timeout"), timeout);
    this.emit("task:start", { record: r });
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
    if (next.recallTimer) clearTimeout(next.recallTimer);
    next.recallTimer = null;
    next.startedAt = performance.now();
    next.claimed = {
      ...next.claimed,
      record: next.claimed.record.with({ startedAt: next.store.now() }),
    };
    if (this.#running.get(next.claimed.record.id) === next) this.#started(next);
  }

  /** Aborts a running task's signal, then terminates its worker after the grace period. */
  #abort(running: Running, reason: "timeout" | "cancel"): void {
    if (running.timedOut || running.cancelled) return;
    if (reason === "timeout") running.timedOut = true;
    else running.cancelled = true;
    const worker = running.worker;
    if (worker === null) {
      // Held, never started: it ends here without running.
      const at = this.#held.indexOf(running);
      if (at >= 0) this.#held.splice(at, 1);
      this.#finish(running, {
        ok: false,
        error: { name: "TaskCancelledError", message: "Cancelled before it started" },
      });
      return;
    }
    worker.abort(running.claimed.record.id, reason);
    running.graceTimer = setTimeout(() => {
      if (this.#running.get(running.claimed.record.id) !== running) return;
      const slot = this.#slots.find((s) => s.worker === worker);
      if (slot) slot.draining = true;
      void worker.terminate(`${reason} of task ${running.claimed.record.id}`);
    }, this.#options.abortGrace);
  }

  #scheduleCancelCheck(): void {
    if (this.#cancelCheck) return;
    this.#cancelCheck = setTimeout(async () => {
      this.#cancelCheck = null;
      for (const store of this.#stores) {
        try {
          const ids = await cancelRequests(store);
          const others: string[] = [];
          for (const id of ids) {
            const running = this.#running.get(id);
            if (running && running.store === store) this.#abort(running, "cancel");
            else others.push(id);
          }
          if (others.length > 0) await dropStaleCancels(store, others);
        } catch (error) {
          this.#report(error as Error, "cancel check");
        }
      }
    }, 50);
  }

  #finish(
    running: Running,
    result: RunResult,
  ): void {
    const id = running.claimed.record.id;
    if (this.#running.get(id) !== running) return;
    this.#running.delete(id);
    if (running.recallTimer) clearTimeout(running.recallTimer);
    if (running.worker !== null) {
      const ms = performance.now() - running.startedAt;
      this.#taskMs = Number.isFinite(this.#taskMs) ? this.#taskMs + (ms - this.#taskMs) * 0.1 : ms;
    }
    if (running.timer) clearTimeout(running.timer);
    if (running.graceTimer) clearTimeout(running.graceTimer);
    const claimed = running.claimed;
    const r = claimed.record;
    const outcome = outcomeOf(
      claimed,
      result,
      {
        cancelled: running.cancelled,
        started: running.worker !== null && !running.waiting,
        timedOut: running.timedOut,
      },
      this.#options.retry,
      running.store.now(),
    );
    if (outcome.kind === "failure" && outcome.retryAt !== null && this.#options.burst) {
      this.#retrying.set(r.id, running.store);
    }
    // This cluster writes progress itself and sees every cancel request it acts on; one it has
    // not seen yet is removed by the cancel check once the task is gone.
    outcome.sideKeys = { progress: running.progress, cancel: running.cancelled };
    this.#pending.push(outcome);
    if (r.worker) this.#unstored.set(r.worker, (this.#unstored.get(r.worker) ?? 0) + 1);
    if (!this.#flushing) this.#flushing = this.#flushSoon();
  }

  /**
   * Writes the first outcome at once (a microtask later); outcomes that arrive while that commit
   * is in flight form the next batch, so batches grow exactly as fast as KV is busy. Under load
   * (`busy`: more tasks claimed than places), it first waits {@linkcode FLUSH_DELAY_MS} for more outcomes:
   * fewer, larger commits where a result's latency matters less than throughput.
   */
  async #flushSoon(): Promise<void> {
    await this.#gather();
    await this.#flush();
  }

  /** Waits for more outcomes under load (more tasks claimed than places), else a microtask. */
  async #gather(): Promise<void> {
    const places = this.#options.workers * this.#options.concurrency;
    if (this.#running.size > places && this.#state === "running") {
      await new Promise((resolve) => setTimeout(resolve, FLUSH_DELAY_MS));
    } else await Promise.resolve();
  }

  /**
   * Writes the started list until it is current, on its own path so arming never waits for a
   * batch of outcomes; the held tasks it names may start once it is written.
   */
  async #writeStartedLists(): Promise<void> {
    await Promise.resolve();
    try {
      while (this.#startedDirty.size > 0) {
        for (const store of [...this.#startedDirty]) {
          this.#startedDirty.delete(store);
          // The tasks armed in this write must still be ours: a cluster that was paused (say
          // SIGSTOP) past the lease timeout finds its held tasks handed back and run elsewhere.
          // Each write checks at most as many leases as a commit may check; the rest follow.
          const all = [...this.#startedHeld.get(store) ?? []];
          const pending = all.filter((id) => this.#arming.has(id));
          const batch = pending.slice(0, store.handle.maxChecks);
          const later = new Set(pending.slice(batch.length));
          const list = all.filter((id) => !later.has(id));
          const claims = batch.map((id) => this.#running.get(id)?.claimed).filter((c) =>
            c !== undefined
          );
          try {
            const written = await writeStarted(store, this.id, list, claims);
            if (written) {
              for (const id of batch) {
                if (this.#arming.delete(id)) this.#armed.add(id);
              }
            } else {
              // Drop the lost ones; the others are written again.
              for (const id of await lostLeases(store, claims)) this.#dropHeld(id);
            }
            if (!written || later.size > 0) this.#startedDirty.add(store);
            this.#dispatchHeld();
          } catch (error) {
            this.#report(error as Error, "storing results");
            this.#startedDirty.add(store);
            await new Promise((resolve) => setTimeout(resolve, 500));
            if (this.#state === "stopped") return;
          }
        }
      }
    } finally {
      this.#writingStarted = null;
    }
  }

  /** Writes pending outcomes in batches until none is left. */
  async #flush(): Promise<void> {
    try {
      for (let round = 0; this.#pending.length > 0; round++) {
        if (round > 0) await this.#gather();
        const batch = this.#pending.splice(0, this.#pending.length);
        const stores = new Map<Store, Outcome[]>();
        for (const o of batch) {
          const store = this.#stores.find((s) => s.queue === o.claimed.record.queue) ??
            this.#stores[0]!;
          let list = stores.get(store);
          if (!list) stores.set(store, list = []);
          list.push(o);
        }
        for (const [store, outcomes] of stores) {
          let stored;
          try {
            stored = await completeTasks(store, outcomes);
            this.#kvFailedAt = null;
          } catch (error) {
            // KV refused the write: keep the outcomes and try again shortly.
            this.#report(error as Error, "storing results");
            this.#pending.unshift(...outcomes);
            await new Promise((resolve) => setTimeout(resolve, 500));
            if (this.#state === "stopped") return;
            continue;
          }
          for (const o of outcomes) {
            // Its lease is gone: it no longer needs listing (the next write drops it).
            if (o.claimed.held) this.#forgetHeld(store, o.claimed.record.id);
            const w = o.claimed.record.worker;
            const n = w ? (this.#unstored.get(w) ?? 0) - 1 : 0;
            if (w && n > 0) this.#unstored.set(w, n);
            else if (w) this.#unstored.delete(w);
          }
          this.#wake();
          // Counted once stored: an outcome whose lease was lost meanwhile (this cluster was
          // paused past it) was dropped, and another cluster runs that task again.
          outcomes.forEach((o, i) => {
            if (stored[i]!.record === null) this.#counts.dropped++;
            else {
              this.#counts.processed++;
              if (o.kind === "success") this.#counts.succeeded++;
              else this.#counts.failed++;
            }
          });
          outcomes.forEach((o, i) => {
            this.emit("task:finish", {
              id: o.claimed.record.id,
              kind: o.kind,
              record: stored[i]!.record,
            });
          });
        }
      }
    } finally {
      this.#flushing = null;
    }
  }

  // ── heartbeat and recovery ─────────────────────────────────────────────────────────────

  async #beat(): Promise<void> {
    if (this.#state !== "running" || !this.#handle) return;
    try {
      // Keeps stats().paused current while every worker is busy (an idle pump reads it itself).
      if (this.#running.size > 0) await this.#readPaused();
      const stat = this.stats();
      const bytes = encoder.encode(JSON.stringify(stat));
      // A slow safety sweep: a wake that any signal missed is caught here, every fifth beat.
      if (++this.#beats % 5 === 0) this.#wake();
      const prune = Date.now() - this.#prunedAt > 600_000;
      if (prune) this.#prunedAt = Date.now();
      // Retention runs every beat while tasks finish, then once a minute: a finished task
      // becomes prunable only as it ages.
      const retain = this.#counts.processed !== this.#retainedAtCount ||
        performance.now() - this.#retainedAt > 60_000;
      if (retain) {
        this.#retainedAtCount = this.#counts.processed;
        this.#retainedAt = performance.now();
      }
      for (const store of this.#stores) {
        await retryBusy(() =>
          store.kv.set(store.keys.cluster(this.id), bytes, {
            // KV expires it by the writer's clock: five more minutes keep a cluster whose clock
            // is behind visible (readers judge silence by whether the beat changes).
            expireIn: Math.max(this.#options.leaseTimeout * 3, 30_000) + HEARTBEAT_SKEW_MS,
          })
        );
        this.#kvFailedAt = null;
        await this.#recover(store);
        if (prune) await pruneStats(store);
        if (retain) {
          const pruned = await pruneFinished(store, this.#retention).catch((e) => {
            this.#report(e as Error, "retention");
            return 0;
          });
          // A pass that pruned something may have left more: look again next beat.
          if (pruned > 0) this.#retainedAt = -Infinity;
        }
      }
    } catch (error) {
      this.#report(error as Error, "heartbeat");
    }
  }

  async #recover(store: Store): Promise<void> {
    const beats = new Map<string, { versionstamp: string; info: HeartbeatInfo | null }>();
    for await (
      const e of store.kv.list({ prefix: store.keys.clusters }, { consistency: "strong" })
    ) {
      let info: HeartbeatInfo | null = null;
      try {
        info = JSON.parse(new TextDecoder().decode(e.value as Uint8Array));
      } catch {
        // a damaged heartbeat counts as absent information
      }
      beats.set(e.key[e.key.length - 1] as string, { versionstamp: e.versionstamp, info });
    }
    this.#liveness.observe(beats);
    const host = hostname();
    this.#peers?.watch(
      [...beats].filter(([, b]) => b.info?.host === host).map(([id, b]) => ({
        id,
        pid: b.info!.pid,
      })),
    );
    await this.#dropDeadBeats(store, beats);
    const leases = await listLeases(store);
    const lost = leases.filter((l) =>
      l.lease === null || (l.lease.cluster !== this.id && this.#liveness.isDead(l.lease.cluster))
    );
    if (lost.length === 0) return;
    const byCluster = new Map<string, typeof lost>();
    for (const l of lost) {
      const key = l.lease?.cluster ?? "unknown";
      byCluster.set(key, [...byCluster.get(key) ?? [], l]);
    }
    for (const [cluster, entries] of byCluster) {
      const records = await requeueLost(store, entries, {
        maxAttempts: this.#options.retry.maxAttempts,
        reason: `Cluster ${cluster} stopped heartbeating while the task ran`,
        started: await readStarted(store, cluster),
      });
      // Every lease of it was handled (here or by another cluster): its list is done with.
      await store.kv.delete(store.keys.started(cluster));
      if (records.length > 0) this.emit("cluster:recovered", { cluster, tasks: records.length });
    }
    this.#wake();
  }

  /**
   * Deletes the heartbeats of clusters judged dead (each checked against the beat read), so
   * `kvq info` and the dashboard stop showing them once another cluster noticed: a heartbeat
   * otherwise expires five minutes after its cluster's own clock. Their leases are recovered
   * right after, from the lease index, which does not need the heartbeat.
   */
  async #dropDeadBeats(
    store: Store,
    beats: ReadonlyMap<string, { versionstamp: string }>,
  ): Promise<void> {
    for (const [id, beat] of beats) {
      if (id === this.id || !this.#liveness.isDead(id)) continue;
      const key = store.keys.cluster(id);
      await commitAtomic(
        store.kv.atomic().check({ key, versionstamp: beat.versionstamp }).delete(key),
      )
        .catch((e) => this.#report(e as Error, "heartbeat cleanup"));
    }
  }

  /** A same-host peer died: recover its leases now, once for all queues however many died. */
  #recoverNow(): void {
    if (this.#state !== "running") return;
    // Asked again while it runs (another peer died meanwhile): once more after it.
    if (this.#recovering) {
      this.#recoverAgain = true;
      return;
    }
    this.#recovering = (async () => {
      do {
        this.#recoverAgain = false;
        for (const store of this.#stores) {
          await this.#recover(store).catch((e) => this.#report(e as Error, "recovery"));
        }
      } while (this.#recoverAgain && this.#state === "running");
    })().finally(() => this.#recovering = null);
  }

  /** A snapshot of this cluster for its heartbeat, `kvq info` and the dashboard. */
  stats(): ClusterStat {
    const now = performance.now();
    const cpu = process.cpuUsage(this.#lastCpu);
    const elapsed = Math.max(1, now - this.#lastCpuAt);
    this.#clusterCpu = ((cpu.user + cpu.system) / 1000) / elapsed * 100;
    this.#lastCpu = process.cpuUsage();
    this.#lastCpuAt = now;
    const tids = this.#slots.map((s) => s.worker?.tid).filter((t): t is number =>
      typeof t === "number"
    );
    const per = this.#cpu.update(readThreadCpu(tids), now);
    this.#cpuByTid = new Map([...per].map(([tid, c]) => [tid, c.percent]));
    this.#lowestFree = Math.min(this.#lowestFree, freemem());
    const tasksOf = (w: WorkerHandle) =>
      [...w.inFlight].map((id) => this.#running.get(id)).filter((r) => r !== undefined).map((
        r,
      ) => ({
        id: r.claimed.record.id,
        name: r.claimed.record.name,
        func: r.claimed.record.func,
        startedAt: r.claimed.record.startedAt ?? 0,
      }));
    return {
      id: this.id,
      host: hostname(),
      pid: process.pid,
      runtime: runtime.name,
      version: runtime.version,
      state: this.#state,
      startedAt: this.#startedAt,
      beatAt: (this.#options.clock ?? Date.now)(),
      queues: this.#queues.map((q) => q.name),
      weights: this.#queues.map((q) => q.weight),
      paused: [...this.#paused],
      heartbeatMs: this.#options.heartbeat,
      funcs: [
        ...this.#slots.find((s) => s.worker && s.worker.funcs.length > 0)?.worker?.funcs ?? [],
      ],
      workers: this.#slots.filter((s) => s.worker).map((s) => {
        const w = s.worker!;
        return {
          name: w.name,
          slot: s.slot,
          generation: s.generation,
          state: s.draining ? "draining" : w.state,
          tasks: tasksOf(w),
          tasksRun: w.tasksRun,
          cpu: w.tid === null ? 0 : Math.round((this.#cpuByTid.get(w.tid) ?? 0) * 10) / 10,
          heap: w.lastHeap,
          tid: w.tid,
        };
      }),
      reincarnations: this.#reincarnations,
      ...this.#counts,
      rss: process.memoryUsage().rss,
      cpu: Math.round(this.#clusterCpu * 10) / 10,
      lowestFreeMemory: this.#lowestFree,
      stuck: [...this.#stuck],
    };
  }

  #report(error: Error, context: string): void {
    if (KV_WRITE_CONTEXTS.has(context)) this.#kvFailedAt = performance.now();
    this.emit("cluster:error", { error, context });
    if (this.#options.onError) {
      try {
        this.#options.onError(error, context);
      } catch {
        // a failing reporter must not take the cluster down
      }
    } else {
      console.error(`kvq: ${context}: ${error.message}`);
    }
  }
}
