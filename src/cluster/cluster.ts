/**
 * The cluster: a supervisor that owns the KV handle and a pool of named Web Workers, and hands
 * them tasks. It never polls. It wakes on
 *
 * - the change feed (this process's commits, the KV file's `-wal` watch, `kv.watch` on remote);
 * - native KV doorbells (`listenQueue`) for delayed tasks and retries;
 * - a timer for the earliest delayed task;
 * - workers finishing tasks.
 *
 * This file is the launcher: it opens (or borrows) the KV handle, builds and wires the parts,
 * owns the one `AbortController` they share, and reports errors. The parts, one per role:
 * `worker_pool.ts`, `pump.ts`, `stager.ts`, `held.ts`, `running.ts`, `result_writer.ts`,
 * `heartbeat.ts`; their contract is in `context.ts`.
 *
 * Supervisor states:
 *
 * ```
 * new ──start()──▶ running ──stop() / burst idle──▶ stopping ──▶ stopped
 * ```
 *
 * @module
 */
import { TaskId } from "../task/task_id.ts";
import { releaseTasks } from "../store/recover.ts";
import { KvHandle, Store } from "../store/store.ts";
import type { ClusterContext } from "./context.ts";
import { type ClusterEventMap, TypedEvents } from "./events.ts";
import { Heartbeat } from "./heartbeat.ts";
import { HeldTasks } from "./held.ts";
import { KvHealth } from "./kv_health.ts";
import { TaskTelemetry } from "../telemetry/tasks.ts";
import { type ClusterOptions, resolveOptions, type ServedQueue } from "./options.ts";
import { Pump } from "./pump.ts";
import { ResultWriter } from "./result_writer.ts";
import { RunningTable } from "./running.ts";
import { Stager } from "./stager.ts";
import { type ClusterStat, type ClusterState, snapshot } from "./stats.ts";
import { WorkerPool } from "./worker_pool.ts";

export { type ClusterOptions, parseQueueWeights, type QueueWeight } from "./options.ts";
export type { ClusterStat, WorkerStat } from "./stats.ts";
export { PREFETCH_WINDOW_MS } from "./entry.ts";

export { KV_FAILURE_MEMORY_MS } from "./kv_health.ts";

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
  readonly #options: ReturnType<typeof resolveOptions>["options"];
  readonly #queues: ServedQueue[];
  #state: ClusterState = "new";
  /** Aborted when the cluster begins to stop: the parts' shared signal. */
  readonly #stopping = new AbortController();
  #handle: KvHandle | null = null;
  #ownsHandle = false;
  #stores: Store[] = [];
  #telemetry: TaskTelemetry | null = null;
  readonly #parts: {
    pool: WorkerPool;
    running: RunningTable;
    held: HeldTasks;
    pump: Pump;
    stager: Stager;
    writer: ResultWriter;
    heartbeat: Heartbeat;
  };
  #unsubscribe: (() => void)[] = [];
  #startedAt = 0;
  #stopped: Promise<void>;
  #resolveStopped!: () => void;
  readonly #kv = new KvHealth();

  constructor(options: ClusterOptions) {
    super();
    const resolved = resolveOptions(options);
    this.#options = resolved.options;
    this.#queues = resolved.queues;
    this.id = TaskId.create().id;
    // Set at start (stores, handle) or just below (parts): read through closures.
    const late = {
      stores: () => this.#stores,
      handle: () => this.#handle!,
      parts: () => this.#parts,
    };
    const ctx: ClusterContext = {
      id: this.id,
      options: this.#options,
      signal: this.#stopping.signal,
      get stores() {
        return late.stores();
      },
      get handle() {
        return late.handle();
      },
      state: () => this.#state,
      report: (error, context) => this.#report(error, context),
      runTrace: (id) => this.#telemetry?.runTrace(id) ?? null,
      kvOk: () => this.#kv.ok(),
      emit: (type, detail) => this.emit(type, detail),
      stop: () => void this.stop(),
      get parts() {
        return late.parts();
      },
    };
    this.#parts = {
      pool: new WorkerPool(ctx, resolved.priorReincarnations),
      running: new RunningTable(ctx),
      held: new HeldTasks(ctx),
      pump: new Pump(ctx, resolved.turns, resolved.queues.map((q) => q.max ?? Infinity)),
      stager: new Stager(ctx),
      writer: new ResultWriter(ctx),
      heartbeat: new Heartbeat(ctx, {
        retention: resolved.retention,
        snapshot: () => this.stats(),
      }),
    };
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
    return this.#kv.healthy(this.#options.heartbeat);
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
    const parts = this.#parts;
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
      await parts.pool.start();
    } catch (error) {
      // A stop that began while the workers started is not a failure to start.
      if (this.#state !== "running") return await this.#stopped;
      await this.#shutdown();
      throw error;
    }
    if (this.#state !== "running") return await this.#stopped;
    await parts.heartbeat.start();
    // Spans and metrics of its attempts, when an SDK registered a provider (see `telemetry/`).
    const telemetry = TaskTelemetry.attach(this.id, this, this.#stores);
    this.#telemetry = telemetry;
    if (telemetry !== null) this.#unsubscribe.push(() => telemetry.close());
    for (const store of this.#stores) {
      this.#unsubscribe.push(store.changes.subscribe(() => parts.pump.wake()));
    }
    if (this.#handle.nativeQueue) parts.stager.listenDoorbells();
    parts.pump.wake();
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
    this.#beginStopping();
    const { pump, held, running } = this.#parts;
    // Held tasks never started: give them back now rather than run them during the grace.
    await pump[Symbol.asyncDispose]();
    await held.releaseAll();
    const grace = options.grace ?? this.#options.grace;
    if (running.size > 0 && grace > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, grace);
        const off = this.on("task:finish", () => {
          if (running.size === 0) done();
        });
        function done() {
          clearTimeout(timer);
          off();
          resolve();
        }
        if (running.size === 0) done();
      });
    }
    await this.#shutdown();
  }

  #beginStopping(): void {
    this.#state = "stopping";
    this.#stopping.abort();
    for (const off of this.#unsubscribe) off();
    this.#unsubscribe = [];
  }

  async #shutdown(): Promise<void> {
    this.#beginStopping();
    const { pool, running, held, pump, stager, writer, heartbeat } = this.#parts;
    // A claim in flight either dispatches before this or releases what it claimed.
    await pump[Symbol.asyncDispose]();
    // Whatever still runs goes back to ready once its worker is terminated, so a released task
    // never runs here and elsewhere at once.
    const left = running.takeAll();
    await pool[Symbol.asyncDispose]();
    await held[Symbol.asyncDispose]();
    await writer[Symbol.asyncDispose]();
    for (const store of this.#stores) {
      const mine = left.filter((r) => r.store === store).map((r) => r.claimed);
      if (mine.length > 0) await releaseTasks(store, mine).catch((e) => this.#report(e, "release"));
    }
    await heartbeat.retire();
    await stager[Symbol.asyncDispose]();
    // Last: peers that see the socket close find no lease of this cluster left to recover.
    await heartbeat[Symbol.asyncDispose]();
    if (this.#ownsHandle) this.#handle?.close();
    this.#state = "stopped";
    this.#resolveStopped();
  }

  /** Same as a graceful {@linkcode stop}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /**
   * A snapshot of this cluster for its heartbeat, `kvq info` and the dashboard. CPU and memory
   * are those of the latest heartbeat's sample.
   */
  stats(): ClusterStat {
    return snapshot({
      id: this.id,
      state: this.#state,
      startedAt: this.#startedAt,
      beatAt: (this.#options.clock ?? Date.now)(),
      queues: this.#queues,
      heartbeatMs: this.#options.heartbeat,
      parts: this.#parts,
      sample: this.#parts.heartbeat.sampler.last,
    });
  }

  #report(error: Error, context: string): void {
    this.#kv.reported(context);
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
