/**
 * A running-table entry (`Running`, see `context.ts`) and the timings that govern it: how far
 * ahead a cluster claims, how long a task may wait in a worker, and how much of a rate's margin
 * the way to a worker takes.
 *
 * @module
 */
import type { Claimed } from "../store/claim.ts";
import type { Store } from "../store/store.ts";
import type { Running } from "./context.ts";

/**
 * How much work, in ms of the workers' time at the task durations seen, a cluster claims ahead
 * of its free places (see `ClusterOptions.prefetch`).
 */
export const PREFETCH_WINDOW_MS = 20;

/**
 * How much work, in ms of the workers' time at the task durations seen, a claim may name as
 * started in its own entry (see `ClaimOptions.armed`), beyond the tasks the workers take at once.
 * Those start without a separate write of the `started` list, a one-mutation commit that queues
 * behind the claims and outcomes on the KV thread (about 2 ms under load, measured) while short
 * tasks would run out long before it lands. If the cluster dies, an armed task that never ran
 * still counts an attempt: at most this much work of them.
 */
export const ARM_WINDOW_MS = 5;

/**
 * How long a task sent early may wait in a worker behind another before the cluster takes it
 * back for a free place elsewhere, in ms.
 */
export const RECALL_MS = 2 * PREFETCH_WINDOW_MS;

/**
 * The part of a rate's margin (see `Pump.rateSlack`) left for the way from the supervisor to a
 * task's start in its worker, in ms: a task dispatched later than the margin less this goes back.
 */
export const START_SLACK_MS = 10;

/** Counts the tasks this process claimed, in claim order (see `Running.line`). */
let claimOrder = 0;

/** The entry of a task just claimed. */
export function newRunning(store: Store, claimed: Claimed): Running {
  return {
    claimed,
    store,
    worker: null,
    startedAt: 0,
    heldAt: performance.now(),
    line: ++claimOrder,
    // The claim logged its start under a rate at this time (the store's clock), before its commit.
    claimedAt: claimed.record.startedAt ?? store.now(),
    waiting: false,
    waitingSince: Infinity,
    timer: null,
    graceTimer: null,
    timedOut: false,
    cancelled: false,
    progress: false,
  };
}
