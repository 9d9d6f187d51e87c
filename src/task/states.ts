/**
 * The states of a task, as stored. See `record.ts` for the transitions between them.
 *
 * @module
 */

/** A task's state, as stored. See `record.ts` for the transitions. */
export type TaskState = "scheduled" | "queued" | "running" | "succeeded" | "failed" | "cancelled";

/** Every task state, in lifecycle order. */
export const TASK_STATES: readonly TaskState[] = Object.freeze([
  "scheduled",
  "queued",
  "running",
  "succeeded",
  "failed",
  "cancelled",
]);

/** States a task leaves only by being deleted or retried by hand. */
export const FINAL_STATES: ReadonlySet<TaskState> = new Set(["succeeded", "failed", "cancelled"]);
