/**
 * A task's attempts, one row each, oldest first, for the dashboard's task page and `kvq task`:
 * when each was due, started and stopped, where it ran, and how it ended. Attempts that did not
 * end the task are read from its kept errors (each failed attempt's error records its timing
 * and place); the latest comes from the record itself.
 *
 * @module
 */
import type { ErrorInfo } from "./errors.ts";
import type { TaskRecord } from "./record.ts";

/** One attempt of a task. */
export interface AttemptRow {
  /** Its number, from 1; null for an error kept before attempts were numbered in it. */
  attempt: number | null;
  /** When it could run (eta, or its retry's time). */
  due: number | null;
  /** When it started. */
  startedAt: number | null;
  /** When it stopped. */
  stoppedAt: number | null;
  /** The cluster and worker that ran it. */
  cluster: string | null;
  worker: string | null;
  /** How it ended: `retried`, `failed`, `succeeded`, `cancelled`, or `running`/`waiting`. */
  outcome: string;
  /** Its error, if it failed. */
  error: ErrorInfo | null;
}

/** The attempts of `record`, oldest first. */
export function attemptRows(record: TaskRecord): AttemptRow[] {
  const rows: AttemptRow[] = record.errors.map((e) => ({
    attempt: e.attempt ?? null,
    due: e.runAt ?? null,
    startedAt: e.startedAt ?? null,
    stoppedAt: e.stoppedAt ?? null,
    cluster: e.cluster ?? null,
    worker: e.worker ?? null,
    outcome: "retried",
    error: e,
  }));
  const last = rows[rows.length - 1];
  if (record.state === "failed" && last !== undefined) {
    // Its last error is the attempt that ended it.
    last.outcome = "failed";
    return rows;
  }
  const ran = record.state === "running" || record.state === "succeeded" ||
    (record.state === "cancelled" && record.startedAt !== null);
  if (ran || record.state === "failed") {
    rows.push({
      attempt: record.attempt,
      due: record.runAt,
      startedAt: record.startedAt,
      stoppedAt: record.state === "running" ? null : record.stoppedAt,
      cluster: record.cluster,
      worker: record.worker,
      outcome: record.state,
      error: record.state === "succeeded" ? null : record.error,
    });
  } else if (record.state === "queued" || record.state === "scheduled") {
    rows.push({
      attempt: record.attempt + 1,
      due: record.runAt,
      startedAt: null,
      stoppedAt: null,
      cluster: null,
      worker: null,
      outcome: "waiting",
      error: null,
    });
  }
  return rows;
}

/** The trace id of a task's stored `traceparent`, or null. */
export function traceIdOf(record: TaskRecord): string | null {
  const m = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}/.exec(record.traceparent ?? "");
  return m ? m[1]! : null;
}

/**
 * Checks a trace link template: it must hold `{traceId}`.
 *
 * @throws {RangeError} naming the value.
 */
export function validateTraceUrl(template: string): string {
  if (!template.includes("{traceId}")) {
    throw new RangeError(
      `A trace URL must hold {traceId}, such as https://tempo.example/trace/{traceId}: received ${
        JSON.stringify(template)
      }`,
    );
  }
  return template;
}

/** The link of `traceId` by `template` (see {@linkcode validateTraceUrl}). */
export function traceLink(template: string, traceId: string): string {
  return template.replaceAll("{traceId}", traceId);
}
