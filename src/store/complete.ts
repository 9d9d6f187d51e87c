/**
 * Complete: store the outcome of attempts this process holds. Each outcome checks the lease
 * versionstamp from its claim, so a result never overwrites a task that lease recovery already
 * handed to someone else, and no read comes before the write. Outcomes are batched into few
 * commits; a batch that fails a check is retried one outcome per commit.
 *
 * @module
 */
import type { ErrorInfo } from "../cluster/protocol.ts";
import type { TaskRecord } from "../task/record.ts";
import { PayloadTooLargeError, writeChunks } from "./chunks.ts";
import type { Claimed } from "./claim.ts";
import { addStateCounts, CountDeltas } from "./counters.ts";
import { doorbell } from "./enqueue.ts";
import { INLINE_PAYLOAD_BYTES, KV_MAX_COMMIT_BYTES, KV_MAX_QUEUE_DELAY_MS } from "./limits.ts";
import type { Store } from "./store.ts";
import { commitAtomic } from "./commit.ts";
import { StatDeltas } from "./stats.ts";

/** How an attempt ended. */
export type Outcome =
  /** It returned; `resultJson` is its JSON text. */
  | { kind: "success"; claimed: Claimed; resultJson: string }
  /** It failed; retried at `retryAt`, or final when that is null. */
  | { kind: "failure"; claimed: Claimed; error: ErrorInfo; retryAt: number | null }
  /** It was cancelled while running. */
  | { kind: "cancelled"; claimed: Claimed; error: ErrorInfo };

/** What became of one outcome. */
export interface Stored {
  /** The record as stored, or null when the lease was lost and nothing was written. */
  record: TaskRecord | null;
}

const encoder = new TextEncoder();

/**
 * Stores outcomes, in as few commits as the limits allow. Returns one entry per outcome, in
 * order.
 */
export async function completeTasks(store: Store, outcomes: readonly Outcome[]): Promise<Stored[]> {
  const prepared = await Promise.all(outcomes.map((o) => prepareOutcome(store, o)));
  const out: Stored[] = new Array(outcomes.length);
  const checks = store.handle.maxChecks;
  let start = 0;
  while (start < prepared.length) {
    let end = start;
    let bytes = 0;
    while (end < prepared.length && end - start < checks) {
      const size = prepared[end]!.record.encode().length + 512;
      if (end > start && bytes + size > KV_MAX_COMMIT_BYTES) break;
      bytes += size;
      end++;
    }
    const batch = prepared.slice(start, end);
    if (await commitOutcomes(store, batch)) {
      batch.forEach((p, i) => out[start + i] = { record: p.record });
    } else {
      const singles = await Promise.all(batch.map((p) => commitOutcomes(store, [p])));
      batch.forEach((p, i) => out[start + i] = { record: singles[i] ? p.record : null });
    }
    start = end;
  }
  store.changes.notifyLocal();
  return out;
}

interface PreparedOutcome {
  outcome: Outcome;
  record: TaskRecord;
}

async function prepareOutcome(store: Store, outcome: Outcome): Promise<PreparedOutcome> {
  const now = store.now();
  const running = outcome.claimed.record;
  switch (outcome.kind) {
    case "success": {
      const size = encoder.encode(outcome.resultJson).length;
      if (size > store.maxPayloadBytes) {
        const error = new PayloadTooLargeError(
          `Result of ${running.func}`,
          size,
          store.maxPayloadBytes,
        );
        return {
          outcome,
          record: running.failAttempt(now, { name: error.name, message: error.message }, null),
        };
      }
      if (!running.save) return { outcome, record: running.succeed(now, null) };
      if (size > INLINE_PAYLOAD_BYTES) {
        const chunks = await writeChunks(
          store,
          running.id,
          "result",
          encoder.encode(outcome.resultJson),
        );
        return { outcome, record: running.succeed(now, null, chunks) };
      }
      return { outcome, record: running.succeed(now, outcome.resultJson) };
    }
    case "failure":
      return { outcome, record: running.failAttempt(now, outcome.error, outcome.retryAt) };
    case "cancelled":
      return { outcome, record: running.cancel(now, outcome.error) };
  }
}

async function commitOutcomes(store: Store, batch: PreparedOutcome[]): Promise<boolean> {
  const atomic = store.kv.atomic();
  const counts = new CountDeltas();
  const stats = new StatDeltas();
  const now = store.now();
  let earliestRetry = Infinity;
  for (const { outcome, record } of batch) {
    stats.add(now, {
      ok: outcome.kind === "success",
      startedAt: outcome.claimed.record.startedAt,
      runAt: outcome.claimed.record.runAt,
    });
    const k = store.keys;
    atomic.check({ key: k.lease(record.id), versionstamp: outcome.claimed.versionstamp });
    atomic.set(k.task(record.id), record.encode());
    atomic.delete(k.lease(record.id));
    atomic.delete(k.progress(record.id));
    atomic.delete(k.cancel(record.id));
    if (record.state === "scheduled") {
      atomic.set(k.delayed(record.runAt, record.id), new Uint8Array());
      earliestRetry = Math.min(earliestRetry, record.runAt);
    } else {
      atomic.set(k.done(record.state, record.stoppedAt!, record.id), new Uint8Array());
    }
    counts.move("running", record.state);
  }
  addStateCounts(atomic, store, counts.deltas);
  stats.apply(atomic, store);
  if (Number.isFinite(earliestRetry)) {
    atomic.sum(store.keys.signal, 1n);
    if (store.handle.nativeQueue) {
      atomic.enqueue(doorbell(store.queue), {
        delay: Math.min(KV_MAX_QUEUE_DELAY_MS, Math.max(0, earliestRetry - now)),
      });
    }
  }
  const result = await commitAtomic(atomic);
  return result.ok;
}
