/**
 * The pump: woken by any change (coalesced: a wake while it runs makes it run once more), it
 * shares the free places among the queues that are not paused, by weight, claims tasks for
 * them (and some ahead, to hold), has due delayed tasks promoted, and in burst mode tells when
 * there is nothing left to do.
 *
 * @module
 */
import { type Claimed, claimTasks } from "../store/claim.ts";
import { readPausedQueues } from "../store/pause.ts";
import { gatesClaims, type QueueLimits } from "../store/flow.ts";
import { rateMargin, readGate } from "../store/gate.ts";

import { queuesIdle, stillWaiting } from "../store/queues.ts";
import { releaseTasks } from "../store/recover.ts";
import type { Store } from "../store/store.ts";
import { coalesce } from "../runtime/coalesce.ts";
import type { ClusterContext, PumpRole } from "./context.ts";
import { PREFETCH_WINDOW_MS } from "./entry.ts";

/** How long the pump waits after it failed before it runs again, in ms. */
const RETRY_MS = 500;

/** How soon a queue whose concurrency limit was full is looked at again, in ms. */
const GATE_RETRY_MS = 50;

/** Claims tasks for the free places. */
export class Pump implements PumpRole {
  readonly #ctx: ClusterContext;
  /** The weighted order in which free places go to the queues: `a:2,b:1` is [a, a, b]. */
  readonly #turns: readonly number[];
  #rr = 0;
  #paused = new Set<string>();
  /** One round at a time; a wake meanwhile (or a promotion) runs one more. */
  readonly #round = coalesce(() => this.#pump());
  /** Burst mode: tasks this cluster scheduled for a retry, which it waits for. */
  #retrying = new Map<string, Store>();
  /**
   * Quarantine (see `ClaimOptions.alone`): the queue whose claim stopped before a suspect
   * (claim nothing until the cluster is empty, then the suspect alone); the suspect's id while
   * it runs alone (claim nothing until it ends).
   */
  #quarantine: { drain: Store } | { id: string } | null = null;
  /**
   * Push-backs this cluster saw: the queue (or the partition, see {@linkcode holdKey}) starts
   * nothing until then (epoch ms).
   */
  #holds = new Map<string, number>();
  /** The queues and partitions held for a time, as last read or seen, and until when. */
  #holding = new Map<string, number>();
  #holdTimer: ReturnType<typeof setTimeout> | null = null;
  /** Per queue, its pause key's versionstamp as last read, which claims check. */
  #pauseStamps = new Map<string, string | null>();
  /** The limits of the queues that have some, as last read (see `flow.ts`). */
  #limits = new Map<string, QueueLimits>();
  #gateTimer: ReturnType<typeof setTimeout> | null = null;

  /** Per queue (in the stores' order): the most of its tasks held here at once (`max`). */
  readonly #caps: readonly number[];

  constructor(ctx: ClusterContext, turns: readonly number[], caps: readonly number[] = []) {
    this.#ctx = ctx;
    this.#turns = turns;
    this.#caps = caps;
  }

  /** The queues found paused at the last read. */
  get paused(): string[] {
    return [...this.#paused];
  }

  /** Runs the pump, or once more after the run in progress. */
  wake(): void {
    if (this.#ctx.signal.aborted) return;
    if (this.#ctx.parts.running.size > 0) this.#ctx.parts.running.scheduleCancelCheck();
    void this.#round();
  }

  /** Asks for one more round (a promotion made tasks ready). */
  again(): void {
    this.#round.again();
  }

  /** Burst mode: wait for this retry before calling the queues idle. */
  awaitRetry(id: string, store: Store): void {
    this.#retrying.set(id, store);
  }

  /**
   * Free task places, one worker name per place. `ahead` more per worker count as free for
   * tasks that may wait in the worker (held tasks), so it never waits for a round trip.
   */
  freePlaces(ahead = 0): string[] {
    const { options, parts } = this.#ctx;
    const out: string[] = [];
    const early: string[] = [];
    const now = performance.now();
    for (const w of parts.pool.serving()) {
      // A place whose last outcome is still being written may take its next task meanwhile, so
      // claims and result writes overlap: at most one such outcome per place, plus the worker's
      // share of the prefetch, so short held tasks run while their results are written.
      const unstored = parts.writer.unstored(w.name);
      const allowed = options.concurrency + Math.ceil(options.prefetch / options.workers);
      const used = w.inFlight.size + Math.max(0, unstored - allowed);
      for (let i = used; i < options.concurrency; i++) out.push(w.name);
      // Early places only behind tasks that are short so far: a task never waits behind one
      // that has already run longer than the prefetch window.
      if (ahead > 0 && !parts.running.runsLong(w, now)) {
        for (let i = Math.max(used, options.concurrency); i < options.concurrency + ahead; i++) {
          early.push(w.name);
        }
      }
    }
    // Places that start at once first.
    return early.length === 0 ? out : [...out, ...early];
  }

  /**
   * How many tasks to hold ahead of free places: what the workers finish in about
   * {@linkcode PREFETCH_WINDOW_MS} at the task durations seen, at most the prefetch option.
   */
  heldTarget(): number {
    const { options, parts } = this.#ctx;
    // A place busy with a task that already runs long frees no time soon: hold nothing for it.
    const places = options.workers * options.concurrency -
      parts.running.longRunning(performance.now());
    if (places <= 0) return 0;
    const fit = Math.floor(places * PREFETCH_WINDOW_MS / Math.max(0.01, parts.running.taskMs));
    return Math.min(options.prefetch, fit);
  }

  /** The places to claim for: free places first, then held ones. */
  #claimPlaces(): { workers: string[]; held: boolean[] } {
    if (this.#quarantined()) return { workers: [], held: [] };
    const free = this.freePlaces();
    const target = this.heldTarget();
    const held = this.#ctx.parts.held.length;
    // Refill the held tasks only when they ran low, so claims come in batches.
    const extra = free.length > 0 || held * 2 <= target ? Math.max(0, target - held) : 0;
    const names = this.#ctx.parts.pool.names();
    const workers = [...free];
    for (let i = 0; i < extra && names.length > 0; i++) workers.push(names[i % names.length]!);
    return { workers, held: workers.map((_, i) => i >= free.length) };
  }

  /** Whether quarantine holds claims back: a suspect waits for the cluster to empty, or runs. */
  #quarantined(): boolean {
    const q = this.#quarantine;
    if (q !== null && "id" in q && !this.#ctx.parts.running.get(q.id)) {
      this.#quarantine = null; // the suspect ended
    }
    return this.#quarantine !== null;
  }

  /**
   * Once the cluster is empty, claims the suspect that made it drain, alone, from its queue,
   * and starts it. The quarantine ends when that claim takes an ordinary task instead (another
   * cluster took the suspect) or nothing.
   */
  async #claimAlone(store: Store): Promise<void> {
    const { parts, signal } = this.#ctx;
    if (parts.running.size > 0 || parts.held.length > 0) return; // still draining
    const place = this.freePlaces()[0];
    if (place === undefined) return;
    await this.readPaused();
    const [claimed] = this.#paused.has(store.queue) ? [] : await claimTasks(store, {
      cluster: this.#ctx.id,
      workers: [place],
      alone: true,
      onCorrupt: (e) => this.#ctx.report(e, "claim"),
      open: this.#pauseStamps.get(store.queue) ?? null,
    });
    this.#quarantine = claimed?.alone === true ? { id: claimed.record.id } : null;
    if (claimed === undefined) return;
    if (signal.aborted) {
      this.#quarantine = null;
      await releaseTasks(store, [claimed], { mayEnd: false }).catch((e) =>
        this.#ctx.report(e, "release")
      );
      return;
    }
    parts.running.dispatch(store, claimed);
  }

  async #pump(): Promise<void> {
    const ctx = this.#ctx;
    const { parts, stores, signal } = ctx;
    if (signal.aborted) return;
    try {
      const q = this.#quarantine;
      if (q !== null && "drain" in q) {
        await this.#claimAlone(q.drain);
        if (this.#quarantine === null) this.#round.again();
      }
      // Ready tasks first, delayed ones after: a task that is ready now should not wait for
      // the reads that arm the delay timer. A promotion asks for another round, which claims
      // what it promoted.
      parts.held.dispatch();
      let places = this.#claimPlaces();
      let claimedAny = false;
      // Pause keys matter only when there is a place to fill.
      if (places.workers.length > 0) await this.readPaused();
      // Share the places among the queues that are not paused, by weight, and give what a
      // queue could not use to the others in the next round.
      let open = stores.map((_, i) => i).filter((i) => !this.#paused.has(stores[i]!.queue));
      while (places.workers.length > 0 && open.length > 0 && !signal.aborted) {
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
        for (const [q, s] of share) {
          const store = stores[q]!;
          // A queue with a concurrency limit is claimed for free places only: a held task would
          // keep one of its places while it waits here. A rate counts starts at the claim, a
          // held task's a little early (see `flow.ts`).
          const limits = this.#limits.get(store.queue);
          const freeOnly = limits?.concurrency !== undefined;
          let workers = freeOnly ? s.workers.filter((_, i) => !s.held[i]) : s.workers;
          let held = freeOnly ? workers.map(() => false) : s.held;
          // A local cap (`max`) counts what this cluster runs and holds of the queue.
          const cap = this.#caps[q] ?? Infinity;
          if (cap !== Infinity) {
            const left = Math.max(0, cap - parts.running.countOf(store));
            workers = workers.slice(0, left);
            held = held.slice(0, left);
          }
          if (workers.length === 0) {
            exhausted.push(q);
            continue;
          }
          const heldParts = this.#partitionHolds(store.queue);
          const claimed = await claimTasks(store, {
            cluster: ctx.id,
            workers,
            held,
            ...(gatesClaims(limits) || heldParts.size > 0
              ? {
                gate: () => readGate(store, limits ?? {}, heldParts),
                onGated: (at: number | null) => this.#gated(at),
              }
              : {}),
            armed: parts.held.armable(),
            onCorrupt: (e) => ctx.report(e, "claim"),
            onExpired: () => parts.stager.expireSoon(),
            onSuspect: () => this.#quarantine ??= { drain: store },
            // The commit checks the pause key as read: none once the queue is paused.
            open: this.#pauseStamps.get(store.queue) ?? null,
          });
          if (claimed.length > 0) claimedAny = true;
          if (claimed.length < Math.min(workers.length, store.handle.maxChecks)) {
            exhausted.push(q);
          }
          if (signal.aborted) {
            // A stop began while claiming: give these back rather than start them.
            heldNow.set(q, claimed);
            for (const [i, list] of heldNow) {
              if (list.length === 0) continue;
              await releaseTasks(stores[i]!, list, { mayEnd: false }).catch((e) =>
                ctx.report(e, "release")
              );
            }
            return;
          }
          heldNow.set(q, claimed.filter((c) => c.held));
          for (const c of claimed) if (!c.held) parts.running.dispatch(store, c);
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
            parts.held.hold(stores[q]!, c);
          }
        }
        open = open.filter((q) => !exhausted.includes(q));
        parts.held.dispatch();
        places = this.#claimPlaces();
      }
      if (claimedAny && places.workers.length > 0) this.#round.again();
      if (!signal.aborted) await parts.stager.promote();
      if (
        !claimedAny && ctx.options.burst && parts.running.size === 0 &&
        parts.writer.pending === 0 && !parts.held.writing
      ) {
        if (!signal.aborted && await this.#queuesEmpty()) {
          ctx.emit("cluster:idle", {});
          ctx.stop();
          return;
        }
      }
    } catch (error) {
      ctx.report(error as Error, "dispatch");
      if (!signal.aborted) setTimeout(() => this.wake(), RETRY_MS);
    }
  }

  /** Reads which queues are paused (one read per queue; the pump runs on changes). */
  async readPaused(): Promise<void> {
    const { paused, holds, limits, partitionHolds, pauseStamps } = await readPausedQueues(
      this.#ctx.stores,
    );
    this.#pauseStamps = pauseStamps;
    for (const [queue, parts] of partitionHolds) {
      for (const [p, until] of parts) holds.set(holdKey(queue, p), until);
    }
    // A push-back this cluster saw holds its queue before the hold is read back.
    const now = this.#now();
    for (const [queue, until] of this.#holds) {
      if (until <= now) this.#holds.delete(queue);
      else if (!holds.has(queue) || holds.get(queue)! < until) holds.set(queue, until);
    }
    for (const key of holds.keys()) if (!key.includes(PART)) paused.add(key);
    this.#paused = paused;
    this.#limits = limits;
    this.#holding = holds;
    this.#armHoldTimer();
  }

  /**
   * A task of `store` was rate limited (`RateLimitedError`): start nothing more from its queue
   * until `until` (epoch ms), here at once; the stored hold tells the other clusters. Tasks of
   * it waiting in workers are taken back.
   */
  hold(store: Store, until: number, partition: string | null = null): void {
    const key = holdKey(store.queue, partition);
    if ((this.#holds.get(key) ?? 0) < until) this.#holds.set(key, until);
    if ((this.#holding.get(key) ?? 0) < until) this.#holding.set(key, until);
    if (partition === null) this.#paused.add(store.queue);
    this.#ctx.parts.running.recallQueue(store, partition);
    this.#armHoldTimer();
  }

  /** The partitions of `queue` held for a time, and until when. */
  #partitionHolds(queue: string): Map<string, number> {
    const out = new Map<string, number>();
    if (this.#holding.size === 0) return out;
    const prefix = holdKey(queue, "");
    const now = this.#now();
    for (const [key, until] of this.#holding) {
      if (key.startsWith(prefix) && until > now) out.set(key.slice(prefix.length), until);
    }
    return out;
  }

  /** Whether some queue is (or was, until the next read) held for a time. */
  get holdingAny(): boolean {
    return this.#holding.size > 0;
  }

  /**
   * Whether `queue`, or its `partition`, is held for a time (a push-back): its held tasks wait
   * in line.
   */
  holding(queue: string, partition: string | null = null): boolean {
    const now = this.#now();
    const until = this.#holding.get(queue);
    if (until !== undefined && until > now) return true;
    if (partition === null) return false;
    const p = this.#holding.get(holdKey(queue, partition));
    return p !== undefined && p > now;
  }

  /**
   * How long after its claim a task of `queue` may still start, in ms (the store's clock), when
   * the queue has a rate: its log counts the start at the claim and covers this much delay (see
   * `gate.ts`). Null when it has none. A later one goes back to ready instead of starting.
   */
  rateSlack(queue: string): number | null {
    const limits = this.#limits.get(queue);
    // Asked for every held task that starts: most queues have no limits.
    if (limits === undefined || (!limits.rate && !limits.partitionRate)) return null;
    const windows = [limits.rate?.ms, limits.partitionRate?.ms].filter((ms) => ms !== undefined);
    return Math.min(...windows.map(rateMargin));
  }

  /** Wakes the pump when the first hold ends, so the held queue's tasks start again. */
  #armHoldTimer(): void {
    if (this.#holdTimer !== null) clearTimeout(this.#holdTimer);
    this.#holdTimer = null;
    if (this.#holding.size === 0 || this.#ctx.signal.aborted) return;
    const first = Math.min(...this.#holding.values());
    this.#holdTimer = setTimeout(() => {
      this.#holdTimer = null;
      this.wake();
    }, Math.max(0, first - this.#now()) + 1);
  }

  /**
   * A queue's limits allowed nothing: look again when its rate allows more (`at`), or shortly
   * (a place frees when a task of another cluster ends, which may wake nothing here).
   */
  #gated(at: number | null): void {
    if (this.#gateTimer !== null || this.#ctx.signal.aborted) return;
    const wait = at === null ? GATE_RETRY_MS : Math.max(1, at - this.#now());
    this.#gateTimer = setTimeout(() => {
      this.#gateTimer = null;
      this.wake();
    }, Math.min(wait, GATE_RETRY_MS * 4));
  }

  /** The time on the stores' clock (epoch ms), which holds are measured in. */
  #now(): number {
    return this.#ctx.stores[0]?.now() ?? Date.now();
  }

  /**
   * Burst mode's test: nothing queued or running, and no retry of a task this cluster ran still
   * waits for its backoff (the delay timer wakes the cluster for it).
   */
  async #queuesEmpty(): Promise<boolean> {
    for (const [id, store] of this.#retrying) {
      if (await stillWaiting(store, id)) return false;
      this.#retrying.delete(id);
    }
    return await queuesIdle(this.#ctx.stores);
  }

  /** Waits for the round in progress (a claim in flight dispatches or releases what it took). */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#holdTimer !== null) clearTimeout(this.#holdTimer);
    if (this.#gateTimer !== null) clearTimeout(this.#gateTimer);
    this.#holdTimer = this.#gateTimer = null;
    await this.#round.running;
  }
}

/** Between a queue and a partition in a hold's key. */
const PART = "\u0000";

/** The key of a hold: the queue's name, or for a partition its queue's and its own. */
function holdKey(queue: string, partition: string | null): string {
  return partition === null ? queue : `${queue}${PART}${partition}`;
}
