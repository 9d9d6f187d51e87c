/**
 * The inline executor (Django Q's `sync=True`): runs queued tasks in this process, one at a
 * time, through the same claim and complete operations as the cluster. For tests, scripts and
 * development; it has no timeouts that can stop CPU-bound code.
 *
 * @module
 */
import { hostname } from "node:os";
import process from "node:process";
import { DEFAULT_RETRY, type RetryPolicy } from "../task/backoff.ts";
import { createTaskContext, runInTaskContext } from "../task/context.ts";
import { TaskCancelledError, toErrorInfo } from "../task/errors.ts";
import { verify } from "../task/signature.ts";
import { lookupTask, type TaskFunction } from "../task/loader.ts";
import { toJson } from "../task/json.ts";
import { type Claimed, claimTasks } from "../store/claim.ts";
import { completeTasks, type Outcome } from "../store/complete.ts";
import { nextDelayedAt, promoteDue } from "../store/promote.ts";
import { expireDue } from "../store/expire.ts";
import { readPausedQueues } from "../store/pause.ts";
import { gatesClaims } from "../store/flow.ts";
import { readGate } from "../store/gate.ts";
import { delay } from "../runtime/delay.ts";
import { outcomeOf } from "./outcome.ts";
import type { Store } from "../store/store.ts";
import { MAX_TIMER_MS } from "../runtime/delay.ts";
import { compactNames } from "../store/names.ts";
import { TaskTelemetry } from "../telemetry/tasks.ts";
import type { ClusterEventMap } from "./events.ts";
import { TypedEvents } from "./typed_events.ts";

/** Name look-ups a run writes from the tail when it ends (see `store/names.ts`). */
const INLINE_NAMES = 4000;

/** Options for {@linkcode runInline}. */
export interface InlineOptions {
  /** The task functions, by name. */
  tasks: ReadonlyMap<string, TaskFunction>;
  /**
   * Stop once nothing is queued (delayed tasks not yet due are left).
   * @default false
   */
  burst?: boolean;
  /**
   * How many tasks to claim per commit.
   * @default 32
   */
  batch?: number;
  /**
   * Retries for tasks that set none.
   * @default 3 attempts, exponential backoff
   */
  retry?: RetryPolicy;
  /** Stops the executor after the current batch. */
  signal?: AbortSignal;
  /** Called after each stored outcome. */
  onDone?: (outcome: Outcome) => void;
  /**
   * Called once for each task record that can't be decoded; it is set aside (`kvq doctor`).
   * @default printed to stderr
   */
  onCorrupt?: (error: Error) => void;
}

/** What an inline run did. */
export interface InlineReport {
  /** Attempts run. */
  processed: number;
  /** Attempts that succeeded. */
  succeeded: number;
  /** Attempts that failed (retried or final). */
  failed: number;
}

/** How long a run held back by a concurrency limit waits before it looks again, in ms. */
const GATED_RETRY_MS = 50;

/**
 * Runs tasks from `store` in this process until the queue is empty (`burst`) or `signal`
 * aborts. A paused queue, or one a push-back holds (see `RateLimitedError`), starts nothing:
 * in burst mode the run ends; a batch already claimed runs to its end. The queue's limits and
 * held partitions hold here as on a cluster.
 */
export async function runInline(store: Store, options: InlineOptions): Promise<InlineReport> {
  const report: InlineReport = { processed: 0, succeeded: 0, failed: 0 };
  const cluster = `inline-${hostname()}-${process.pid}`;
  const batch = options.batch ?? 32;
  const workers = Array.from({ length: batch }, () => "inline");
  const retry = options.retry ?? DEFAULT_RETRY;
  const onCorrupt = options.onCorrupt ?? ((error: Error) => console.error(`kvq: ${error.message}`));
  // Spans and metrics of each attempt, as a cluster makes them, when an SDK is registered.
  const events = new InlineEvents();
  const telemetry = TaskTelemetry.attach(cluster, events, [store]);
  try {
    while (!options.signal?.aborted) {
      await promoteDue(store, { onCorrupt });
      await expireDue(store, { onCorrupt });
      // A paused queue (or one a push-back holds) starts nothing, as on a cluster; its limits and
      // held partitions are obeyed as a cluster obeys them (read in the same getMany).
      const { paused, limits, partitionHolds, pauseStamps } = await readPausedQueues([store]);
      if (paused.has(store.queue)) {
        if (options.burst) break;
        await waitForWork(store, options.signal);
        continue;
      }
      const limit = limits.get(store.queue);
      const heldParts = partitionHolds.get(store.queue) ?? new Map<string, number>();
      let gatedUntil: number | null = null;
      let expired = false;
      const claimed = await claimTasks(store, {
        cluster,
        // Tasks here start one after another, later than their claim: under a rate, claim one at
        // a time so each start is logged when it happens.
        workers: limit?.rate !== undefined || limit?.partitionRate !== undefined
          ? workers.slice(0, 1)
          : workers,
        ...(gatesClaims(limit) || heldParts.size > 0
          ? {
            gate: () => readGate(store, limit ?? {}, heldParts),
            onGated: (at: number | null) => gatedUntil = at ?? store.now() + GATED_RETRY_MS,
          }
          : {}),
        onCorrupt,
        onExpired: () => expired = true,
        // Tasks run one after another here: a suspect (see `ClaimOptions.alone`) runs alone.
        alone: true,
        open: pauseStamps.get(store.queue) ?? null,
      });
      if (claimed.length === 0) {
        if (expired) continue; // end those first: the tasks behind them are claimed then
        if (gatedUntil !== null) {
          // Held back by the limits, with tasks waiting: look again when they may allow more.
          await delay(Math.min(1000, Math.max(5, gatedUntil - store.now())));
          continue;
        }
        if (options.burst) break;
        await waitForWork(store, options.signal);
        continue;
      }
      const outcomes: Outcome[] = [];
      for (const c of claimed) {
        events.send("task:start", { record: c.record });
        const outcome = await runOne(store, c, options.tasks, retry);
        // A failed attempt's stored error names its span (see `TaskRecord.firstRun`).
        if (outcome.kind === "failure") outcome.runTrace = telemetry?.runTrace(c.record.id) ?? null;
        outcomes.push(outcome);
      }
      const stored = await completeTasks(store, outcomes);
      outcomes.forEach((o, i) => {
        report.processed++;
        if (o.kind === "success") report.succeeded++;
        else if (o.kind !== "pushback") report.failed++;
        events.send("task:finish", {
          id: o.claimed.record.id,
          kind: o.kind,
          record: stored[i]!.record,
        });
        options.onDone?.(o);
      });
    }
  } finally {
    telemetry?.close();
  }
  // No heartbeat here (a Deploy isolate, a test): the run writes the name look-ups it can.
  if (!options.signal?.aborted) await compactNames(store, INLINE_NAMES);
  return report;
}

/** The events {@linkcode TaskTelemetry} follows, as a cluster emits them, for an inline run. */
class InlineEvents extends TypedEvents<Pick<ClusterEventMap, "task:start" | "task:finish">> {
  send<K extends "task:start" | "task:finish">(type: K, detail: ClusterEventMap[K]): void {
    this.emit(type, detail);
  }
}

async function runOne(
  store: Store,
  claimed: Claimed,
  tasks: ReadonlyMap<string, TaskFunction>,
  retry: RetryPolicy,
): Promise<Outcome> {
  const r = claimed.record;
  const controller = new AbortController();
  try {
    if (store.secrets !== null) verify(store.secrets, r, claimed.argsJson, r.sig);
    const fn = lookupTask(tasks, r.func);
    const args = JSON.parse(claimed.argsJson) as unknown[];
    const context = createTaskContext({
      id: r.id,
      name: r.name,
      attempt: r.attempt,
      queue: r.queue,
      signal: controller.signal,
      onProgress: () => {},
    });
    const value = await runInTaskContext(context, function () {
      return fn.apply(this, args);
    });
    const result = value === undefined ? "null" : toJson(value, `result of ${r.func}`);
    return outcomeOf(claimed, { ok: true, result }, ENDED, retry, store.now());
  } catch (error) {
    const facts = { ...ENDED, cancelled: error instanceof TaskCancelledError };
    return outcomeOf(claimed, { ok: false, error: toErrorInfo(error) }, facts, retry, store.now());
  }
}

/** An inline run always started, and has no timeout. */
const ENDED = { cancelled: false, started: true, timedOut: false };

/** Resolves on the next change, at the earliest delayed task's time, or on abort. */
async function waitForWork(store: Store, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return;
  // Subscribe before reading, so a commit between the read and the wait still wakes us.
  let woken = false;
  let wake = () => {
    woken = true;
  };
  const unsubscribe = store.changes.subscribe(() => wake());
  try {
    const next = await nextDelayedAt(store);
    if (signal?.aborted || woken) return;
    await new Promise<void>((resolve) => {
      const timer = next === null
        ? undefined
        : setTimeout(done, Math.min(MAX_TIMER_MS, Math.max(0, next - store.now())));
      function done() {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        resolve();
      }
      wake = done;
      signal?.addEventListener("abort", done, { once: true });
    });
  } finally {
    unsubscribe();
  }
}
