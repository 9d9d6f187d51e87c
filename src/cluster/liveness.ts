/**
 * Which clusters are alive, judged without comparing clocks. A cluster rewrites its heartbeat
 * key every few seconds; an observer notes when the key's versionstamp last changed on its own
 * monotonic clock, and calls the owner dead once it has stood still for `leaseTimeout`. A wrong
 * wall clock on any host changes nothing. On the same host a stopped process is seen at once:
 * its pid no longer exists.
 *
 * Standing still counts only while the observer itself reads: the time between two of its reads
 * counts up to two read periods. An observer paused longer (SIGSTOP, a stalled machine) did not
 * watch meanwhile, and the others may have been unable to beat because of it: a process stopped
 * while it held a local KV file's write lock blocks every other process's commits, heartbeats
 * included (a chaos run saw a live cluster judged dead so, on 2026-12-08).
 *
 * @module
 */
import { hostname } from "node:os";
import process from "node:process";
import { processEnded } from "./peer_watch.ts";
import type { HeartbeatInfo } from "../store/heartbeats.ts";

export type { HeartbeatInfo };

interface Seen {
  versionstamp: string | null;
  since: number;
}

/** Tracks heartbeats and decides which clusters are dead. */
export class Liveness {
  #seen = new Map<string, Seen>();
  #leaseTimeout: number;
  #self: string;
  #host = hostname();
  #monotonic: () => number;

  /**
   * @param self this cluster's id, never judged dead.
   * @param leaseTimeout how long a heartbeat may stand still, in ms.
   * @param monotonic the observer's clock, in ms.
   * @param readEvery how often the observer reads the heartbeats, in ms (the cluster's
   *   heartbeat): at most twice that counts as watched between two reads.
   */
  constructor(
    self: string,
    leaseTimeout: number,
    monotonic: () => number = () => performance.now(),
    readEvery: number = leaseTimeout / 2,
  ) {
    this.#self = self;
    this.#leaseTimeout = leaseTimeout;
    this.#monotonic = monotonic;
    this.#maxGap = 2 * readEvery;
  }

  /** The most of the time between two reads that counts as watched. */
  readonly #maxGap: number;
  /** The monotonic time at which the latest read began (NaN before the first). */
  #lastReadAt = NaN;
  /** Watched time: the time between reads, each gap up to `#maxGap` (see the module doc). */
  #watched = 0;
  /** The watched time at which the latest observed read began. */
  #observedAt = -Infinity;
  /** The watched time at which the latest observed read ended. */
  #endedAt = -Infinity;

  /** The observer's monotonic time now: pass it as `readAt` before reading the heartbeats. */
  now(): number {
    return this.#monotonic();
  }

  /**
   * Records the heartbeats of a read that began at `readAt` (default: now). Death is judged as
   * of that read, never by the clock alone: an observer that was paused itself (SIGSTOP, a
   * stalled event loop) between its read and its judgement must not take its own pause for
   * the others' silence.
   */
  observe(
    beats: Map<string, { versionstamp: string; info: HeartbeatInfo | null }>,
    readAt: number = this.#monotonic(),
  ): void {
    // A beat new in this read was written at some time before KV answered, which may be long
    // after the read began (the observer paused in between): it counts as standing still only
    // from the end of the read. Silence is judged as of the read's beginning, so both ends err
    // toward alive.
    const gap = (from: number, to: number) => Math.min(Math.max(0, to - from), this.#maxGap);
    if (!Number.isNaN(this.#lastReadAt)) this.#watched += gap(this.#lastReadAt, readAt);
    if (Number.isNaN(this.#lastReadAt) || readAt > this.#lastReadAt) this.#lastReadAt = readAt;
    const begunAt = this.#watched;
    const endedAt = begunAt + gap(readAt, this.#monotonic());
    this.#observedAt = Math.max(this.#observedAt, begunAt);
    this.#endedAt = Math.max(this.#endedAt, endedAt);
    for (const [id, beat] of beats) {
      const seen = this.#seen.get(id);
      if (!seen || seen.versionstamp !== beat.versionstamp) {
        this.#seen.set(id, { versionstamp: beat.versionstamp, since: endedAt });
      }
    }
    for (const [id, seen] of this.#seen) {
      if (!beats.has(id) && seen.versionstamp !== null) {
        this.#seen.set(id, { versionstamp: null, since: seen.since });
      }
    }
    this.#infos = new Map([...beats].map(([id, b]) => [id, b.info]));
  }
  #infos = new Map<string, HeartbeatInfo | null>();

  /**
   * Whether cluster `id` (the holder of some lease) is dead: its heartbeat had stood still for
   * `leaseTimeout` as of the latest observed read (or, on this host, its process has ended).
   */
  isDead(id: string): boolean {
    if (id === this.#self) return false;
    const info = this.#infos.get(id);
    if (info && info.host === this.#host && info.pid !== process.pid && processEnded(info.pid)) {
      return true;
    }
    const seen = this.#seen.get(id);
    if (!seen) {
      // Never seen: start counting from the end of the latest read.
      const since = Number.isFinite(this.#endedAt) ? this.#endedAt : this.#watched;
      this.#seen.set(id, { versionstamp: null, since });
      return false;
    }
    return this.#observedAt - seen.since >= this.#leaseTimeout;
  }
}
