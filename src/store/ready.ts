/**
 * The ready task that has waited longest, for the dashboard's overview, queue page and metrics.
 *
 * @module
 */
import type { TaskRecord } from "../task/record.ts";
import { readRecords } from "./get.ts";
import type { Store } from "./store.ts";

/** How many entries of the ready index are read to find the oldest ready task. */
export const READY_PAGE = 100;

/** The oldest task ready to run in a queue. */
export interface OldestReady {
  /** The task. */
  record: TaskRecord;
  /** How long it has been due, in ms. */
  age: number;
  /** Whether the ready index has more entries than the page read (lower priorities). */
  partial: boolean;
}

/**
 * The ready task that has waited longest. The ready index is ordered by priority first, so the
 * oldest task may sit behind newer ones of a higher priority: the first {@linkcode READY_PAGE}
 * entries are read and the earliest due among them wins.
 */
export async function oldestReady(store: Store, now: number): Promise<OldestReady | null> {
  const ids: string[] = [];
  const iter = store.kv.list({ prefix: store.keys.readyPrefix }, {
    limit: READY_PAGE + 1,
    consistency: "eventual",
  });
  for await (const e of iter) ids.push(e.key[e.key.length - 1] as string);
  const partial = ids.length > READY_PAGE;
  const records = await readRecords(store, ids.slice(0, READY_PAGE));
  let oldest: TaskRecord | null = null;
  for (const r of records) if (oldest === null || r.runAt < oldest.runAt) oldest = r;
  return oldest === null ? null : { record: oldest, age: Math.max(0, now - oldest.runAt), partial };
}
