/**
 * The result writer: outcomes of finished attempts are batched into commits, retried while KV
 * refuses them, and counted once stored. A worker's place is not free while more of its
 * outcomes wait here than it may have unstored (see `Pump.freePlaces`).
 *
 * @module
 */
import { completeTasks, type Outcome } from "../store/complete.ts";
import type { Store } from "../store/store.ts";
import type { ClusterContext, WriterRole } from "./context.ts";
import { delay } from "../runtime/delay.ts";

/** How long a refused write waits before it is tried again, in ms. */
const RETRY_MS = 500;

/** Batches outcomes into commits. */
export class ResultWriter implements WriterRole {
  readonly #ctx: ClusterContext;
  #pending: Outcome[] = [];
  #flushing: Promise<void> | null = null;
  /** Outcomes not yet stored, by worker name. */
  #unstored = new Map<string, number>();
  /** Attempts stored, by how they ended; `dropped`: their lease was lost, nothing stored. */
  readonly counts = { processed: 0, succeeded: 0, failed: 0, dropped: 0 };

  constructor(ctx: ClusterContext) {
    this.#ctx = ctx;
  }

  /** Outcomes waiting to be written. */
  get pending(): number {
    return this.#pending.length;
  }

  /** Outcomes of `worker` not stored yet. */
  unstored(worker: string): number {
    return this.#unstored.get(worker) ?? 0;
  }

  /**
   * Queues an outcome. The first is written at once (a microtask later); outcomes that arrive
   * while that commit is in flight form the next batch, so batches grow exactly as fast as KV
   * is busy. Nothing waits for a batch to grow: a finished task whose result is not stored
   * runs again if the cluster dies. (Waiting 2 ms for more under load, as before, bought no
   * throughput on 2026-12-07 and held about 20 more such tasks at concurrency 25.)
   */
  push(outcome: Outcome): void {
    this.#pending.push(outcome);
    const w = outcome.claimed.record.worker;
    if (w) this.#unstored.set(w, (this.#unstored.get(w) ?? 0) + 1);
    if (!this.#flushing) {
      this.#flushing = (async () => {
        await Promise.resolve();
        await this.flush();
      })();
    }
  }

  /** Writes pending outcomes in batches until none is left (or the cluster has stopped). */
  async flush(): Promise<void> {
    const ctx = this.#ctx;
    try {
      while (this.#pending.length > 0) {
        const batch = this.#pending.splice(0, this.#pending.length);
        const stores = new Map<Store, Outcome[]>();
        for (const o of batch) {
          const store = ctx.stores.find((s) => s.queue === o.claimed.record.queue) ??
            ctx.stores[0]!;
          let list = stores.get(store);
          if (!list) stores.set(store, list = []);
          list.push(o);
        }
        for (const [store, outcomes] of stores) {
          let stored;
          try {
            stored = await completeTasks(store, outcomes);
            ctx.kvOk();
          } catch (error) {
            // KV refused the write: keep the outcomes and try again shortly.
            ctx.report(error as Error, "storing results");
            this.#pending.unshift(...outcomes);
            await delay(RETRY_MS);
            if (ctx.state() === "stopped") return;
            continue;
          }
          for (const o of outcomes) {
            // Its lease is gone: it no longer needs listing (the next write drops it).
            if (o.claimed.held) ctx.parts.held.forget(store, o.claimed.record.id);
            const w = o.claimed.record.worker;
            const n = w ? (this.#unstored.get(w) ?? 0) - 1 : 0;
            if (w && n > 0) this.#unstored.set(w, n);
            else if (w) this.#unstored.delete(w);
          }
          ctx.parts.pump.wake();
          // Counted once stored: an outcome whose lease was lost meanwhile (this cluster was
          // paused past it) was dropped, and another cluster runs that task again.
          outcomes.forEach((o, i) => {
            if (stored[i]!.record === null) this.counts.dropped++;
            else {
              this.counts.processed++;
              if (o.kind === "success") this.counts.succeeded++;
              else if (o.kind !== "pushback") this.counts.failed++;
            }
          });
          outcomes.forEach((o, i) => {
            ctx.emit("task:finish", {
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

  /** Writes what is pending (the workers are gone: nothing more comes). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.flush();
  }
}
