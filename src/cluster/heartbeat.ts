/**
 * The heartbeat: every `heartbeat` ms the cluster writes its snapshot under each queue it
 * serves, judges from the others' beats which clusters died, recovers their leases, deletes
 * their beats, and runs retention. Same-host peers are also watched through a socket, so a
 * peer's death is seen at once and its tasks recovered in about 30 ms.
 *
 * @module
 */
import { hostname } from "node:os";
import { coalesce } from "../runtime/coalesce.ts";
import { signalFile } from "../store/changes.ts";
import {
  deleteHeartbeat,
  type HeartbeatInfo,
  listHeartbeats,
  writeHeartbeat,
} from "../store/heartbeats.ts";
import { pruneFinished, type RetentionOptions } from "../store/prune.ts";
import { deleteStarted, readStarted, recoverCluster } from "../store/recover.ts";
import { listClaims } from "../store/leases.ts";
import { pruneStats } from "../store/stats.ts";
import { compactNames } from "../store/names.ts";
import type { Store } from "../store/store.ts";
import { type ClusterContext, onAbort } from "./context.ts";
import { Liveness } from "./liveness.ts";
import { PeerWatch } from "./peer_watch.ts";
import type { ClusterStat } from "./stats.ts";
import { Sampler } from "./stats.ts";

/** How far behind a cluster's clock may be and its heartbeat still not expire, in ms. */
const HEARTBEAT_SKEW_MS = 5 * 60_000;

/** Name look-ups a beat writes from the tail (see `store/names.ts`) while idle, and while busy. */
const IDLE_NAMES = 4000;
const BUSY_NAMES = 400;

/** How often old per-minute stats are pruned, in ms. */
const PRUNE_STATS_EVERY_MS = 600_000;

/** How often retention runs when no task finished since, in ms. */
const RETAIN_IDLE_EVERY_MS = 60_000;

/** What the heartbeat needs from the launcher besides the context. */
export interface HeartbeatOptions {
  retention: RetentionOptions;
  /** The snapshot to write (read after each sample). */
  snapshot(): ClusterStat;
}

/** Beats, recovers dead clusters' leases, and runs retention. */
export class Heartbeat {
  readonly #ctx: ClusterContext;
  readonly #options: HeartbeatOptions;
  /** Measures CPU and memory once a beat. */
  readonly sampler = new Sampler();
  #timer: ReturnType<typeof setInterval> | null = null;
  #beats = 0;
  #prunedAt = 0;
  /** The processed count at the last beat: -1 before the first. */
  #processedAtBeat = -1;
  /** When retention last ran (performance.now), and the processed count then. */
  #retainedAt = -Infinity;
  #retainedAtCount = -1;
  /**
   * One judge of liveness per queue: a cluster's heartbeat has a versionstamp per queue, so
   * observations of one queue's beats say nothing of another's.
   */
  readonly #liveness = new Map<Store, Liveness>();
  /** Same-host peers watched for their death; null on remote KV. */
  #peers: PeerWatch | null = null;
  /** Stops the peer watch: last at shutdown, after the leases are given back. */
  readonly #peersStop = new AbortController();

  constructor(ctx: ClusterContext, options: HeartbeatOptions) {
    this.#ctx = ctx;
    this.#options = options;
    onAbort(ctx.signal, () => {
      if (this.#timer) clearInterval(this.#timer);
      this.#timer = null;
    });
  }

  /** Starts watching same-host peers, beats once, and then every `heartbeat` ms. */
  async start(): Promise<void> {
    const ctx = this.#ctx;
    // Same-host peers on a local KV file: learn of a death at once, not at the next beat.
    const signal = signalFile(ctx.handle.location);
    if (signal !== null) {
      this.#peers = new PeerWatch({
        dir: signal.dir,
        onGone: () => this.#recoverNow(),
        onJoin: () => this.#recoverNow(),
        signal: this.#peersStop.signal,
        report: (error, context) => ctx.report(error, context),
      });
      await this.#peers.start();
    }
    await this.beat();
    if (!ctx.signal.aborted) {
      this.#timer = setInterval(() => void this.beat(), ctx.options.heartbeat);
    }
  }

  /** Writes the snapshot under each queue, recovers dead clusters' leases, runs retention. */
  async beat(): Promise<void> {
    const ctx = this.#ctx;
    const { parts } = ctx;
    if (ctx.signal.aborted) return;
    try {
      // Keeps stats().paused current while every worker is busy (an idle pump reads it itself).
      if (parts.running.size > 0) await parts.pump.readPaused();
      this.sampler.sample(parts.pool.tids());
      const stat = this.#options.snapshot();
      // A slow safety sweep: a wake that any signal missed is caught here, every fifth beat.
      if (++this.#beats % 5 === 0) parts.pump.wake();
      const prune = Date.now() - this.#prunedAt > PRUNE_STATS_EVERY_MS;
      if (prune) this.#prunedAt = Date.now();
      // Retention runs every beat while tasks finish, then once a minute: a finished task
      // becomes prunable only as it ages.
      const processed = parts.writer.counts.processed;
      const retain = processed !== this.#retainedAtCount ||
        performance.now() - this.#retainedAt > RETAIN_IDLE_EVERY_MS;
      if (retain) {
        this.#retainedAtCount = processed;
        this.#retainedAt = performance.now();
      }
      // KV expires a beat by the writer's clock: five more minutes keep a cluster whose clock is
      // behind visible (readers judge silence by whether the beat changes).
      const expireIn = Math.max(ctx.options.leaseTimeout * 3, 30_000) + HEARTBEAT_SKEW_MS;
      // Idle: nothing runs, and nothing ended since the last beat (never the first beat).
      const idle = parts.running.size === 0 && processed === this.#processedAtBeat;
      this.#processedAtBeat = processed;
      for (const store of ctx.stores) {
        await writeHeartbeat(store, stat, expireIn);
        ctx.kvOk();
        await this.#recover(store);
        if (prune) await pruneStats(store, store.now(), ctx.options.historyKeep);
        // The name look-ups enqueue left for later: many while idle, a few while busy.
        await compactNames(store, idle ? IDLE_NAMES : BUSY_NAMES)
          .catch((e) => ctx.report(e as Error, "names"));
        if (retain) {
          const pruned = await pruneFinished(store, this.#options.retention).catch((e) => {
            ctx.report(e as Error, "retention");
            return 0;
          });
          // A pass that pruned something may have left more: look again next beat.
          if (pruned > 0) this.#retainedAt = -Infinity;
        }
      }
    } catch (error) {
      ctx.report(error as Error, "heartbeat");
    }
  }

  async #recover(store: Store): Promise<void> {
    const ctx = this.#ctx;
    let liveness = this.#liveness.get(store);
    if (!liveness) {
      const { leaseTimeout, heartbeat } = ctx.options;
      this.#liveness.set(
        store,
        liveness = new Liveness(ctx.id, leaseTimeout, () => performance.now(), heartbeat),
      );
    }
    const beats = new Map<string, { versionstamp: string; info: HeartbeatInfo | null }>();
    const readAt = liveness.now();
    for (const b of await listHeartbeats(store, "strong")) {
      // A damaged heartbeat counts as absent information.
      beats.set(b.id, { versionstamp: b.versionstamp, info: b.stat });
    }
    liveness.observe(beats, readAt);
    const host = hostname();
    this.#peers?.watch(
      [...beats].filter(([, b]) => b.info?.host === host).map(([id, b]) => ({
        id,
        pid: b.info!.pid,
      })),
    );
    await this.#dropDeadBeats(store, liveness, beats);
    const dead = new Set(
      (await listClaims(store)).map((c) => c.cluster).filter((c) =>
        c !== ctx.id && liveness.isDead(c)
      ),
    );
    if (dead.size === 0) return;
    for (const cluster of dead) {
      const { records } = await recoverCluster(store, cluster, {
        maxCrashes: ctx.options.maxCrashes,
        reason: `Cluster ${cluster} stopped heartbeating while the task ran`,
        started: await readStarted(store, cluster),
      });
      // Its list is done with once no claim of it is left. A commit of this pass can fail
      // (another cluster recovered that task first, say), and the claim is then met again
      // later: without the list, a held task it had started would come back uncounted.
      if ((await listClaims(store, cluster)).length === 0) await deleteStarted(store, cluster);
      if (records.length > 0) ctx.emit("cluster:recovered", { cluster, tasks: records.length });
    }
    ctx.parts.pump.wake();
  }

  /**
   * Deletes the heartbeats of clusters judged dead (each checked against the beat read), so
   * `kvq info` and the dashboard stop showing them once another cluster noticed: a heartbeat
   * otherwise expires five minutes after its cluster's own clock. Their leases are recovered
   * right after, from the lease index, which does not need the heartbeat.
   */
  async #dropDeadBeats(
    store: Store,
    liveness: Liveness,
    beats: ReadonlyMap<string, { versionstamp: string }>,
  ): Promise<void> {
    for (const [id, beat] of beats) {
      if (id === this.#ctx.id || !liveness.isDead(id)) continue;
      await deleteHeartbeat(store, id, beat.versionstamp)
        .catch((e) => this.#ctx.report(e as Error, "heartbeat cleanup"));
    }
  }

  /** A same-host peer died: recover its leases now, once for all queues however many died. */
  #recoverNow(): void {
    if (!this.#ctx.signal.aborted) void this.#recoverAll();
  }

  /** Recovers every queue; asked again while it runs (another peer died), once more after. */
  readonly #recoverAll = coalesce(async () => {
    const ctx = this.#ctx;
    if (ctx.signal.aborted) return;
    for (const store of ctx.stores) {
      await this.#recover(store).catch((e) => ctx.report(e as Error, "recovery"));
    }
  });

  /** Deletes this cluster's heartbeats and started lists: it has stopped. */
  async retire(): Promise<void> {
    for (const store of this.#ctx.stores) {
      await deleteHeartbeat(store, this.#ctx.id).catch(() => {});
      await deleteStarted(store, this.#ctx.id).catch(() => {});
    }
  }

  /** Closes the peer watch: peers that see it close find no lease of this cluster left. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#peersStop.abort();
    await this.#peers?.close();
  }
}
