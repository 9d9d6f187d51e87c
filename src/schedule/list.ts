/**
 * List: every schedule of a queue, sorted by name (the key order of the schedule prefix).
 *
 * @module
 */
import type { Store } from "../store/store.ts";
import { ScheduleRecord } from "./record.ts";

/** Options for {@linkcode listSchedules}. */
export interface ListSchedulesOptions {
  /**
   * Called with the error of each stored value that is not a schedule; it is skipped.
   * @default none (skipped silently)
   */
  onCorrupt?: (error: Error) => void;
}

/**
 * Every schedule of the queue, sorted by name.
 *
 * @example
 * ```ts
 * for (const s of await listSchedules(store)) console.log(s.name, s.nextRun);
 * ```
 */
export async function listSchedules(
  store: Store,
  options: ListSchedulesOptions = {},
): Promise<ScheduleRecord[]> {
  const out: ScheduleRecord[] = [];
  const entries = store.kv.list({ prefix: store.keys.schedulePrefix }, { consistency: "strong" });
  for await (const entry of entries) {
    try {
      out.push(ScheduleRecord.decode(entry.key, entry.value));
    } catch (error) {
      options.onCorrupt?.(error as Error);
    }
  }
  return out;
}

/** How many schedules the queue has (one key read each; nothing is decoded). */
export async function countSchedules(store: Store): Promise<number> {
  let n = 0;
  for await (
    const _ of store.kv.list({ prefix: store.keys.schedulePrefix }, { consistency: "eventual" })
  ) n++;
  return n;
}
