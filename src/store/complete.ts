/**
 * Complete: store the outcome of attempts this process holds. Each outcome checks that the task
 * record still has the versionstamp of its claim (the record is the lease, see `leases.ts`), or
 * that its cluster's epoch key is unchanged, so a result never overwrites a task that lease
 * recovery already handed to someone else. The commit that stores the last task of a claim
 * deletes that claim's entry. The only reads are those of a final outcome's chain (see
 * `finish.ts`); everything else a final outcome changes (hooks, iter, unique key, indexes) is
 * written in the same commit. Outcomes are batched into few commits; a batch that fails a check
 * is retried one outcome per commit.
 *
 * @module
 */
import type { ErrorInfo } from "../task/errors.ts";
import type { TaskRecord } from "../task/record.ts";
import { deleteChunks, PayloadTooLargeError, writeChunks } from "./chunks.ts";
import type { Claimed } from "./claim.ts";
import { addStateCounts, CountDeltas } from "./counters.ts";
import { doorbell } from "./_entries.ts";
import { DoneBatches } from "./done_index.ts";
import { addFinishedRecord, type FinishPlan, planFinish } from "./finish.ts";
import { CommitBudget } from "./budget.ts";
import { INLINE_PAYLOAD_BYTES, KV_MAX_QUEUE_DELAY_MS } from "./limits.ts";
import type { Store } from "./store.ts";
import { commitAtomic } from "./commit.ts";
import { StatDeltas } from "./stats.ts";
import { sealFinished } from "./_seal.ts";
import { addClaimEnds, dropClaims, settleClaims } from "./leases.ts";
import { holdPartitionUntil, holdQueueUntil } from "./pause.ts";

/** How an attempt ended. */
export type Outcome =
  & (
    /** It returned; `resultJson` is its JSON text. */
    | { kind: "success"; claimed: Claimed; resultJson: string }
    /** It failed; retried at `retryAt`, or final when that is null. */
    | {
      kind: "failure";
      claimed: Claimed;
      error: ErrorInfo;
      retryAt: number | null;
      /** The `traceparent` of the attempt's run span (tracing on): see `TaskFields.firstRun`. */
      runTrace?: string | null;
    }
    /** It was cancelled while running. */
    | { kind: "cancelled"; claimed: Claimed; error: ErrorInfo }
    /**
     * It was rate limited (`RateLimitedError`): it waits until `retryAt` without using an
     * attempt, and its queue starts nothing until then.
     */
    | { kind: "pushback"; claimed: Claimed; error: ErrorInfo; retryAt: number }
  )
  & {
    /**
     * Which of the attempt's side keys may exist and must be deleted with it. A runner that
     * knows none was written skips the deletes (each costs a KV mutation). A cancel request
     * this leaves behind is removed by the cluster's cancel check.
     * @default both
     */
    sideKeys?: { progress: boolean; cancel: boolean };
  };

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
  // A push-back holds its partition (or its queue, when it has none) first, so no claim starts
  // a task between it and the hold.
  const pushbacks = outcomes.filter((o) => o.kind === "pushback");
  const whole = pushbacks.filter((o) => o.claimed.record.partition === null);
  if (whole.length > 0) {
    const until = Math.max(...whole.map((o) => o.retryAt));
    const by = whole.find((o) => o.retryAt === until)!.claimed.record;
    await holdQueueUntil(store, until, `rate limited by task ${by.id} (${by.name})`);
  }
  for (const o of pushbacks) {
    const partition = o.claimed.record.partition;
    if (partition !== null) await holdPartitionUntil(store, partition, o.retryAt);
  }
  // Room for the counter sums, the signal and a doorbell of each commit.
  const budget = new CommitBudget({
    maxChecks: store.handle.maxChecks,
    reserve: { mutations: 32 },
  });
  let start = 0;
  while (start < prepared.length) {
    let end = start;
    budget.reset();
    // Outcomes of claims made under one epoch of one cluster share one check (see
    // `keys.epoch`); a batch holds only such outcomes, or checks each record.
    const epoch = epochOf(prepared[start]!);
    budget.take({ checks: 1, mutations: 0, bytes: 0 });
    while (end < prepared.length) {
      const p = prepared[end]!;
      const shared = epoch !== null && sameEpoch(epoch, epochOf(p));
      if (epoch !== null && !shared) break;
      const cost = {
        checks: (shared ? 0 : 1) + p.plan.checks.length,
        mutations: 12 + p.plan.mutations,
        bytes: p.record.encode().length + 1024 + p.plan.bytes,
      };
      if (end > start && !budget.fits(cost)) break;
      budget.take(cost);
      end++;
    }
    const batch = prepared.slice(start, end);
    if (await commitOutcomes(store, batch, epoch)) {
      batch.forEach((p, i) => out[start + i] = { record: p.record });
    } else {
      const singles = await Promise.all(batch.map((p) => commitSingle(store, p)));
      batch.forEach((_, i) => out[start + i] = { record: singles[i] ?? null });
      // A lost outcome is done with as well: its claim entry may have no task left.
      await dropClaims(
        store,
        batch.map((p, i) => singles[i] === null ? p.outcome.claimed.claim : null),
      );
      // A lost outcome's result chunks sit under a blob id no record names: drop them.
      await Promise.all(
        batch.map((p, i) =>
          singles[i] === null && p.record.resultBlob !== null
            ? deleteChunks(store, p.record.id, "result", p.record.resultBlob)
            : undefined
        ),
      );
    }
    start = end;
  }
  store.changes.notifyLocal();
  return out;
}

interface PreparedOutcome {
  outcome: Outcome;
  record: TaskRecord;
  /** The result even when the record keeps none, for chains, iters and hooks. */
  resultJson: string | null;
  plan: FinishPlan;
}

/**
 * Commits one outcome on its own. When the commit fails while the lease is still ours, the
 * chain it advances changed meanwhile: plan again and retry. Returns the stored record, or
 * null when the lease was lost.
 */
async function commitSingle(store: Store, p: PreparedOutcome): Promise<TaskRecord | null> {
  for (let attempt = 0; attempt < 10; attempt++) {
    if (await commitOutcomes(store, [p], null)) return p.record;
    if (p.plan.checks.length === 0) return null;
    const lease = await store.kv.get(store.keys.task(p.record.id), { consistency: "strong" });
    if (lease.versionstamp !== p.outcome.claimed.versionstamp) return null;
    p = { ...p, plan: await planFinish(store, p.record, p.resultJson) };
  }
  return null;
}

async function prepareOutcome(store: Store, outcome: Outcome): Promise<PreparedOutcome> {
  const record = sealFinished(store, await outcomeRecord(store, outcome));
  const resultJson = outcome.kind === "success" && record.state === "succeeded"
    ? outcome.resultJson
    : null;
  return { outcome, record, resultJson, plan: await planFinish(store, record, resultJson) };
}

async function outcomeRecord(store: Store, outcome: Outcome): Promise<TaskRecord> {
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
        return running.failAttempt(now, { name: error.name, message: error.message }, null);
      }
      // A chain step's or iter member's result is kept for the chain or iter even without
      // `save`: small ones in its own key, large ones in the task's chunks.
      const member = running.chain !== null || running.iter !== null;
      if (size > INLINE_PAYLOAD_BYTES && (running.save || member)) {
        // Chunks go under a fresh blob id that only the winning record names: a late
        // duplicate result (lost lease) can't overwrite the chunks of the outcome that won.
        const blob = crypto.randomUUID();
        const chunks = await writeChunks(
          store,
          running.id,
          "result",
          encoder.encode(outcome.resultJson),
          blob,
        );
        return running.succeed(now, null, chunks, blob);
      }
      if (!running.save) return running.succeed(now, null);
      return running.succeed(now, outcome.resultJson);
    }
    case "failure":
      return running.failAttempt(now, outcome.error, outcome.retryAt, outcome.runTrace ?? null);
    case "cancelled":
      return running.cancel(now, outcome.error);
    case "pushback":
      return running.pushedBack(outcome.retryAt, outcome.error);
  }
}

/** A cluster's epoch as its claim read it, or null when unknown. */
type Epoch = { cluster: string; versionstamp: string | null };

function epochOf(p: PreparedOutcome): Epoch | null {
  const { claimed } = p.outcome;
  const cluster = claimed.record.cluster;
  return claimed.epoch === undefined || cluster === null
    ? null
    : { cluster, versionstamp: claimed.epoch };
}

function sameEpoch(a: Epoch, b: Epoch | null): boolean {
  return b !== null && a.cluster === b.cluster && a.versionstamp === b.versionstamp;
}

/**
 * Commits a batch of outcomes. With `epoch`, every outcome is of a claim made under it, and the
 * one check of the epoch key stands for the check of each record; else each record is checked.
 */
async function commitOutcomes(
  store: Store,
  batch: PreparedOutcome[],
  epoch: Epoch | null,
): Promise<boolean> {
  const atomic = store.kv.atomic();
  if (epoch !== null) {
    atomic.check({ key: store.keys.epoch(epoch.cluster), versionstamp: epoch.versionstamp });
  }
  const counts = new CountDeltas();
  const stats = new StatDeltas();
  const now = store.now();
  let earliestRetry = Infinity;
  // The finished tasks of the commit share one `done` entry per state (see `done_index.ts`).
  const done = new DoneBatches(store);
  for (const { outcome, record, plan } of batch) {
    stats.add(now, {
      ok: outcome.kind === "success",
      startedAt: outcome.claimed.record.startedAt,
      runAt: outcome.claimed.record.runAt,
      retried: outcome.kind === "failure" && record.state === "scheduled",
    });
    const k = store.keys;
    if (epoch === null) {
      atomic.check({ key: k.task(record.id), versionstamp: outcome.claimed.versionstamp });
    }
    for (const c of plan.checks) atomic.check(c);
    if (outcome.sideKeys?.progress !== false) atomic.delete(k.progress(record.id));
    if (outcome.sideKeys?.cancel !== false) atomic.delete(k.cancel(record.id));
    counts.move("running", null, 1, record.partition);
    if (record.state === "scheduled") {
      atomic.set(k.task(record.id), record.encode());
      atomic.set(k.delayed(record.runAt, record.id), new Uint8Array());
      counts.move(null, "scheduled", 1, record.partition);
      earliestRetry = Math.min(earliestRetry, record.runAt);
    } else {
      addFinishedRecord(atomic, store, record, counts, done);
    }
    plan.apply(atomic, counts);
  }
  done.apply(atomic);
  const ends = addClaimEnds(atomic, batch.map((p) => p.outcome.claimed.claim));
  addStateCounts(atomic, store, counts);
  stats.apply(atomic, store);
  if (Number.isFinite(earliestRetry)) {
    store.addSignal(atomic);
    if (store.handle.nativeQueue) {
      atomic.enqueue(doorbell(store.queue), {
        delay: Math.min(KV_MAX_QUEUE_DELAY_MS, Math.max(0, earliestRetry - now)),
      });
    }
  }
  const result = await commitAtomic(atomic);
  if (result.ok) await settleClaims(store, ends);
  return result.ok;
}
