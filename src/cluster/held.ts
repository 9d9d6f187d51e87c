/**
 * Held tasks: claimed ahead of a free place, so a worker that finishes one task starts the next
 * without waiting for a KV round trip, and the cluster's `started` list, which makes that safe.
 *
 * @module
 */
import type { Claimed } from "../store/claim.ts";
import { lostLeases, releaseTasks, writeStarted } from "../store/recover.ts";
import type { Store } from "../store/store.ts";
import { type ClusterContext, type HeldRole, onAbort, type Running } from "./context.ts";
import { ARM_WINDOW_MS, newRunning, RECALL_MS, START_SLACK_MS } from "./entry.ts";
import { delay } from "../runtime/delay.ts";

/** How long a failed write of the started list waits before it is tried again, in ms. */
const RETRY_MS = 500;

/** How much work, in ms at the task durations seen, may wait in a worker behind its tasks. */
const EARLY_MS = 2;

/** The most tasks sent to a worker ahead of the ones it runs. */
const MAX_AHEAD = 32;

/**
 * The held tasks, oldest first (lower priority numbers ahead), and the started list.
 *
 * A held task goes through these states:
 *
 * ```text
 *  claimed (held) ──arm──▶ arming ──started list written──▶ armed ──a free place──▶ dispatched
 *       │                    │                                │                   (running table)
 *       │                    └── lease lost at the write ─────┼──▶ dropped (another cluster
 *       │                                                     │     runs it)
 *       └── no place within RECALL_MS, all places long, ──────┴──▶ given back to ready,
 *           or a stop                                               uncounted
 *
 *  dispatched ──recalled unstarted by its worker──▶ armed again, first in line
 * ```
 *
 * Arming (naming a task in the started list, written before any task it names starts) stays a
 * batch ahead of the free places. If the cluster dies, an armed task that never started counts
 * an attempt (it may have started), and the other held tasks go back uncounted.
 */
export class HeldTasks implements HeldRole {
  readonly #ctx: ClusterContext;
  /** Claimed ahead of a free place, oldest first; also in the running table. */
  #held: Running[] = [];
  /**
   * Per queue: held tasks that may start (armed) or started, whose outcome is not stored yet:
   * the cluster's `started` list. A held task starts only once a written list names it.
   */
  #startedHeld = new Map<Store, Set<string>>();
  /** Queues whose started list changed since it was last written. */
  #startedDirty = new Set<Store>();
  /** Held tasks named in a written started list: free to start. */
  #armed = new Set<string>();
  /** Held tasks named in the started list but not yet written. */
  #arming = new Set<string>();
  /** The started list write in progress. */
  #writingStarted: Promise<void> | null = null;
  /** Checks the held tasks for ones that waited too long: see {@linkcode #shed}. */
  #shedTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(ctx: ClusterContext) {
    this.#ctx = ctx;
    onAbort(ctx.signal, () => {
      if (this.#shedTimer !== null) clearTimeout(this.#shedTimer);
      this.#shedTimer = null;
    });
  }

  /** How many tasks are held. */
  get length(): number {
    return this.#held.length;
  }

  /** Whether a write of the started list is in flight. */
  get writing(): boolean {
    return this.#writingStarted !== null;
  }

  /** Keeps a task claimed ahead of a free place until {@linkcode dispatch} starts it. */
  hold(store: Store, claimed: Claimed): void {
    const running = newRunning(store, claimed);
    // Named started by its claim entry: it may start at once.
    if (claimed.armed) this.#armed.add(claimed.record.id);
    this.#ctx.parts.running.add(running);
    // Lower priority numbers first, then FIFO: a claim sees the ready index in that order, and
    // an urgent task claimed later overtakes the held ones. Tasks with a partition of one queue
    // keep their turn order too (see `store/turns.ts`): a partition that joined the line late
    // overtakes the held tasks of one that was ahead.
    this.#insert(running);
    this.#armShed();
  }

  /** Checks the held tasks again once the oldest has been held for {@linkcode RECALL_MS}. */
  #armShed(): void {
    if (this.#shedTimer !== null || this.#held.length === 0 || this.#ctx.signal.aborted) return;
    const oldest = Math.min(...this.#held.map((r) => r.heldAt));
    const wait = Math.max(1, oldest + RECALL_MS - performance.now());
    this.#shedTimer = setTimeout(() => {
      this.#shedTimer = null;
      void this.#shed();
    }, wait);
  }

  /**
   * Gives back to `ready` the held tasks that found no free place within {@linkcode RECALL_MS}:
   * the places are busy with tasks longer than the estimate, and another cluster (or this one,
   * once a place frees) should start them instead. A short task never waits here behind a long
   * one while another cluster idles.
   */
  async #shed(): Promise<void> {
    if (this.#ctx.signal.aborted || this.#held.length === 0) return;
    this.dispatch();
    const { options, parts } = this.#ctx;
    const now = performance.now();
    const stale = this.#held.filter((r) => now - r.heldAt >= RECALL_MS);
    // Only when every place runs a task that already runs long: busy short tasks free their
    // places soon, and giving their followers back would only churn claims.
    const blocked = parts.running.longRunning(now) >= options.workers * options.concurrency;
    if (stale.length > 0 && blocked && parts.pump.freePlaces().length === 0) {
      await this.giveBack(stale);
      parts.pump.wake();
    }
    this.#armShed();
  }

  /**
   * Hands armed held tasks to free places, oldest first, and arms the next ones. Arming (naming
   * them in the started list, written before any of them starts) stays a batch ahead, so a
   * worker rarely waits for it.
   */
  dispatch(): void {
    if (this.#held.length === 0 || this.#ctx.signal.aborted) return;
    const { parts } = this.#ctx;
    const places = parts.pump.freePlaces(this.#ahead());
    let i = 0;
    // Tasks of a queue held for a time (a push-back) keep their place in line and wait.
    let at = 0;
    const late: Running[] = [];
    while (i < places.length && at < this.#held.length) {
      const running = this.#held[at]!;
      if (!parts.running.holds(running)) {
        this.#held.splice(at, 1);
        continue;
      }
      if (parts.pump.holding(running.store.queue, running.claimed.record.partition)) {
        at++;
        continue;
      }
      // Under a rate, a task held too long since its claim would start outside the window its
      // start was logged in: it goes back to ready (its logged start only makes the rate
      // stricter) and a later claim logs it anew.
      const slack = parts.pump.rateSlack(running.store.queue);
      if (slack !== null && running.store.now() - running.claimedAt > slack - START_SLACK_MS) {
        this.#held.splice(at, 1);
        late.push(running);
        continue;
      }
      if (!this.#armed.has(running.claimed.record.id)) break;
      this.#held.splice(at, 1);
      this.#armed.delete(running.claimed.record.id);
      // The record says which worker runs it and since when; the lease and its versionstamp
      // stay as claimed.
      const place = places[i++]!;
      const record = running.claimed.record.handedTo(place, running.store.now());
      running.claimed = { ...running.claimed, record };
      parts.running.dispatch(running.store, running.claimed, running);
    }
    if (late.length > 0) void this.giveBack(late).then(() => parts.pump.wake());
    this.#arm();
  }

  /**
   * How many held tasks a claim may name as started in its own entry (see
   * `ClaimOptions.armed`), beyond the armed ones held already: those the workers would take at
   * once, or what they run in {@linkcode ARM_WINDOW_MS} at the task durations seen, whichever is
   * more. The rest wait for a write of the started list, so a crash counts the attempts of few
   * tasks that never ran.
   */
  armable(): number {
    const { options, parts } = this.#ctx;
    const serving = parts.pool.serving().length;
    const next = serving * (options.concurrency + this.#ahead());
    const ms = parts.running.taskMs;
    const window = Number.isFinite(ms)
      ? Math.floor(serving * options.concurrency * ARM_WINDOW_MS / Math.max(ms, 0.01))
      : 0;
    return Math.max(0, Math.max(next, window) - this.#armed.size - this.#arming.size);
  }

  /**
   * How many tasks each worker may be sent beyond the ones it runs, to wait in it: what it runs
   * in {@linkcode EARLY_MS} at the task durations seen (at least one, at most
   * {@linkcode MAX_AHEAD}). Short tasks then run back to back in the worker and cross the
   * boundary in batches; a long one has one follower at most.
   */
  #ahead(): number {
    // The worker's own run time: the place time also counts the messages, and with few tasks a
    // message it would keep the batches small.
    const ms = this.#ctx.parts.running.runMs;
    if (!Number.isFinite(ms)) return 1;
    return Math.max(1, Math.min(MAX_AHEAD, Math.floor(EARLY_MS / Math.max(ms, 0.01))));
  }

  /** Names the next held tasks in the started list when few armed ones are left. */
  #arm(): void {
    const places = this.#ctx.options.workers * this.#ctx.options.concurrency;
    const batch = Math.max(2 * places, Math.ceil(this.#ctx.parts.pump.heldTarget() / 2));
    // Only the armed tasks at the head of the line can start: armed ones behind a task that is
    // not (a claim arms its own, see `armable`) wait for it, so it is armed whatever they count.
    // Tasks of a queue held by a push-back wait in line whatever they are: they don't count.
    const pump = this.#ctx.parts.pump;
    const line = pump.holdingAny
      ? this.#held.filter((r) => !pump.holding(r.store.queue, r.claimed.record.partition))
      : this.#held;
    let startable = 0;
    while (startable < line.length && this.#armed.has(line[startable]!.claimed.record.id)) {
      startable++;
    }
    if (startable + this.#arming.size >= batch / 2) return;
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

  /** Puts `running` in the held line at its place (see {@linkcode behind}). */
  #insert(running: Running): void {
    let at = this.#held.length;
    while (at > 0 && behind(this.#held[at - 1]!, running)) at--;
    this.#held.splice(at, 0, running);
  }

  /**
   * A recalled task: still named in the started list, it may start again at once. It goes back
   * to its place in line, ahead of what was claimed after it: recalled in a batch, tasks come
   * back in any order, and one put first each time would reverse them.
   */
  takeBack(running: Running): void {
    this.#armed.add(running.claimed.record.id);
    this.#insert(running);
    this.dispatch();
    // Still no free place here: it has waited a recall period already, so it goes back at once.
    if (this.#held.includes(running)) {
      running.heldAt = performance.now() - RECALL_MS;
      void this.#shed();
    }
  }

  /** A held task that ends without starting (cancelled): it leaves the line. */
  remove(running: Running): void {
    const at = this.#held.indexOf(running);
    if (at >= 0) this.#held.splice(at, 1);
  }

  /** A held task ended or went back: it leaves the started list (the next write drops it). */
  forget(store: Store, id: string): void {
    this.#startedHeld.get(store)?.delete(id);
    this.#armed.delete(id);
    this.#arming.delete(id);
  }

  /** A held task whose lease another cluster took: it is no longer ours to run or write. */
  #drop(id: string): void {
    const running = this.#ctx.parts.running.get(id);
    if (!running || running.worker !== null) return;
    this.#ctx.parts.running.delete(id);
    this.remove(running);
    this.forget(running.store, id);
  }

  /** Gives every held task back to `ready` (a stop began). */
  async releaseAll(): Promise<void> {
    if (this.#shedTimer !== null) clearTimeout(this.#shedTimer);
    this.#shedTimer = null;
    await this.giveBack([...this.#held]);
  }

  /** Gives these claimed tasks back to `ready`, uncounted: they never started here. */
  async giveBack(tasks: Running[]): Promise<void> {
    const { parts, stores } = this.#ctx;
    const mine = new Set(tasks);
    this.#held = this.#held.filter((r) => !mine.has(r));
    // An entry whose task ended or was claimed again meanwhile is not this one's to release.
    const held = tasks.filter((r) => parts.running.holds(r));
    for (const r of held) {
      parts.running.delete(r.claimed.record.id);
      this.forget(r.store, r.claimed.record.id);
    }
    for (const store of stores) {
      const back = held.filter((r) => r.store === store).map((r) => r.claimed);
      if (back.length > 0) {
        await releaseTasks(store, back, { mayEnd: false }).catch((e) =>
          this.#ctx.report(e, "release")
        );
      }
    }
  }

  /**
   * Writes the started list until it is current, on its own path so arming never waits for a
   * batch of outcomes; the held tasks it names may start once it is written.
   */
  async #writeStartedLists(): Promise<void> {
    await Promise.resolve();
    const ctx = this.#ctx;
    try {
      while (this.#startedDirty.size > 0) {
        for (const store of [...this.#startedDirty]) {
          this.#startedDirty.delete(store);
          // The tasks armed in this write must still be ours: a cluster that was paused (say
          // SIGSTOP) past the lease timeout finds its held tasks handed back and run elsewhere.
          // Each write checks the epoch its tasks were claimed under, or at most as many leases
          // as a commit may check; the rest follow.
          const all = [...this.#startedHeld.get(store) ?? []];
          const pending = all.filter((id) => this.#arming.has(id));
          const claimOf = (id: string) => ctx.parts.running.get(id)?.claimed;
          const epoch = claimOf(pending[0]!)?.epoch;
          let shared = 0;
          while (
            epoch !== undefined && shared < pending.length &&
            claimOf(pending[shared]!)?.epoch === epoch
          ) shared++;
          const batch = pending.slice(0, Math.max(shared, store.handle.maxChecks));
          const later = new Set(pending.slice(batch.length));
          const list = all.filter((id) => !later.has(id));
          const claims = batch.map((id) => ctx.parts.running.get(id)?.claimed).filter((c) =>
            c !== undefined
          );
          try {
            const written = await writeStarted(store, ctx.id, list, claims);
            if (written) {
              for (const id of batch) {
                if (this.#arming.delete(id)) this.#armed.add(id);
              }
            } else {
              // Drop the lost ones; the others are written again.
              for (const id of await lostLeases(store, claims)) this.#drop(id);
            }
            if (!written || later.size > 0) this.#startedDirty.add(store);
            this.dispatch();
          } catch (error) {
            ctx.report(error as Error, "storing results");
            this.#startedDirty.add(store);
            await delay(RETRY_MS);
            if (ctx.state() === "stopped") return;
          }
        }
      }
    } finally {
      this.#writingStarted = null;
    }
  }

  /** Waits for a write of the started list in flight. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.#writingStarted;
  }
}

/**
 * Whether held task `r` should start after `other`: by priority, then (tasks with a partition
 * of one queue) by turn, then in claim order.
 */
function behind(r: Running, other: Running): boolean {
  const a = r.claimed.record;
  const b = other.claimed.record;
  if (a.priority !== b.priority) return a.priority > b.priority;
  if (
    r.store === other.store && a.partition !== null && b.partition !== null &&
    a.turn !== null && b.turn !== null && a.turn !== b.turn
  ) return a.turn > b.turn;
  return r.line > other.line;
}
