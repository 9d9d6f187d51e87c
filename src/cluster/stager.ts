/**
 * The stager: promotes delayed tasks that came due, fires due schedules, ends waiting tasks past
 * their start-by deadline, and keeps one timer for the next of these; on a local KV file it also
 * listens for the doorbells other processes ring when they add a delayed task or schedule.
 *
 * @module
 */
import { fireDueSchedules, nextScheduleAt } from "../schedule/fire.ts";
import { promoteAndPeek } from "../store/promote.ts";
import { expireDue } from "../store/expire.ts";
import type { Store } from "../store/store.ts";
import { delay, MAX_TIMER_MS } from "../runtime/delay.ts";
import { type ClusterContext, onAbort, type StagerRole } from "./context.ts";

/**
 * The most often the delayed and schedule indexes are read, and due tasks promoted, in ms. Each
 * promotion is a commit and a wake: tasks coming due a millisecond apart are promoted a few at
 * a time (measured, 20,000 tasks over 30 s: a third less CPU than a 2 ms gap, lateness p50 up
 * from 3 to 6 ms).
 */
const PROMOTE_EVERY_MS = 5;

/**
 * The most often the start-by deadlines are read for ones another process added, in ms: once a
 * known deadline comes, or a claim met a task past its deadline, they are read at once.
 */
const EXPIRE_SCAN_MS = 250;

/** Promotes due tasks and fires due schedules. */
export class Stager implements StagerRole {
  readonly #ctx: ClusterContext;
  #promotedAt = -Infinity;
  #trailing: ReturnType<typeof setTimeout> | null = null;
  #delayTimer: ReturnType<typeof setTimeout> | null = null;
  #delayAt = Infinity;
  #doorbell: Promise<void> | null = null;
  /** Per queue: the next start-by deadline seen (store clock), and when it was read. */
  #expiry = new Map<Store, { nextAt: number | null; readAt: number }>();
  /** A claim met a task past its deadline: read the deadlines at the next pass. */
  #expireNow = false;
  #expiryTrailing: ReturnType<typeof setTimeout> | null = null;

  constructor(ctx: ClusterContext) {
    this.#ctx = ctx;
    onAbort(ctx.signal, () => {
      if (this.#trailing) clearTimeout(this.#trailing);
      if (this.#delayTimer) clearTimeout(this.#delayTimer);
      if (this.#expiryTrailing) clearTimeout(this.#expiryTrailing);
      this.#trailing = this.#delayTimer = this.#expiryTrailing = null;
    });
  }

  /** Promotes due delayed tasks, fires due schedules, and arms the timer for the next one. */
  async promote(): Promise<void> {
    const { parts, stores } = this.#ctx;
    // Under load every commit wakes the pump; the delayed and schedule indexes need reading only
    // when a timer or doorbell says something is due, or every few milliseconds for entries
    // another process added (a trailing wake makes sure those are seen). Tasks coming due a
    // millisecond apart are promoted together, at most every PROMOTE_EVERY_MS.
    const now = performance.now();
    if (now - this.#promotedAt < PROMOTE_EVERY_MS) {
      if (!this.#trailing && !this.#ctx.signal.aborted) {
        this.#trailing = setTimeout(() => {
          this.#trailing = null;
          parts.pump.wake();
        }, PROMOTE_EVERY_MS - (now - this.#promotedAt));
      }
      return;
    }
    this.#promotedAt = now;
    let earliest = Infinity;
    for (const store of stores) {
      // One batch per pump round: tasks keep coming due, and chasing them here would keep
      // the ones just promoted from being claimed. The next round promotes the rest.
      const { promoted, nextAt } = await promoteAndPeek(store, {
        onCorrupt: (e) => this.#ctx.report(e, "promote"),
      });
      let next = nextAt;
      if (next !== null && next <= store.now()) {
        if (promoted > 0) parts.pump.again();
        else next = store.now() + PROMOTE_EVERY_MS; // lost a race: look again shortly
      }
      if (next !== null) earliest = Math.min(earliest, next);
      let slot = await nextScheduleAt(store);
      if (slot !== null && slot <= store.now()) {
        await fireDueSchedules(store, {
          onCorrupt: (e) => this.#ctx.report(e, "schedule"),
          onRefused: (e) => this.#ctx.report(e, "schedule signature"),
        });
        slot = await nextScheduleAt(store);
      }
      if (slot !== null) earliest = Math.min(earliest, slot);
      const deadline = await this.#expire(store, now);
      if (deadline !== null) earliest = Math.min(earliest, deadline);
    }
    this.#expireNow = false;
    this.#armDelayTimer(earliest);
  }

  /** A claim met a task past its start-by deadline: end it at the next pass. */
  expireSoon(): void {
    this.#expireNow = true;
    this.#promotedAt = -Infinity;
    this.#ctx.parts.pump.again();
  }

  /**
   * Ends the tasks of `store` past their start-by deadline when one is due (or may be: another
   * process may have added one since the last read), and returns the next deadline.
   */
  async #expire(store: Store, now: number): Promise<number | null> {
    const seen = this.#expiry.get(store);
    const due = this.#expireNow || seen === undefined ||
      (seen.nextAt !== null && seen.nextAt <= store.now()) || now - seen.readAt >= EXPIRE_SCAN_MS;
    if (!due) {
      // Read again once the interval is over: this wake may have been another process adding one.
      if (!this.#expiryTrailing && !this.#ctx.signal.aborted) {
        this.#expiryTrailing = setTimeout(() => {
          this.#expiryTrailing = null;
          this.#ctx.parts.pump.wake();
        }, EXPIRE_SCAN_MS - (now - seen.readAt));
      }
      return seen.nextAt;
    }
    const { expired, nextAt } = await expireDue(store, {
      onCorrupt: (e) => this.#ctx.report(e, "expire"),
    });
    this.#expiry.set(store, { nextAt, readAt: now });
    if (expired > 0) this.#ctx.parts.pump.again(); // the tasks behind them may be claimed
    return nextAt;
  }

  #armDelayTimer(at: number): void {
    if (at === this.#delayAt && this.#delayTimer) return;
    if (this.#delayTimer) clearTimeout(this.#delayTimer);
    this.#delayTimer = null;
    this.#delayAt = at;
    if (!Number.isFinite(at) || this.#ctx.signal.aborted) return;
    const now = this.#ctx.stores[0]?.now() ?? Date.now();
    // A wake past the timer's range only reads the indexes again and re-arms.
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, at - now));
    this.#delayTimer = setTimeout(() => {
      this.#delayTimer = null;
      this.#delayAt = Infinity;
      this.#ctx.parts.pump.wake();
    }, delay);
  }

  /** Listens for doorbells on the KV's native queue (a local file only: see DESIGN.md). */
  listenDoorbells(): void {
    const kv = this.#ctx.handle.kv;
    try {
      this.#doorbell = kv.listenQueue((message: unknown) => {
        if (typeof message === "string" && message.startsWith("kvq:")) this.#ctx.parts.pump.wake();
      }).catch((error) => {
        if (!this.#ctx.signal.aborted) this.#ctx.report(error as Error, "doorbell listener");
      });
    } catch (error) {
      this.#ctx.report(error as Error, "doorbell listener");
    }
  }

  /** Waits briefly for the doorbell listener to end once KV closes. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#doorbell) await Promise.race([this.#doorbell, delay(50)]);
  }
}
