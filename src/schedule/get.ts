/**
 * Get: one schedule by name.
 *
 * @module
 */
import type { Store } from "../store/store.ts";
import type { ScheduleRecord } from "./record.ts";
import { validateScheduleName } from "./record.ts";
import { readSchedule } from "./_write.ts";

/**
 * The schedule named `name`, or null when there is none.
 *
 * @throws {TypeError} when `name` is not a schedule name.
 * @throws {CorruptScheduleError} when the stored value is not a schedule record.
 */
export async function getSchedule(store: Store, name: string): Promise<ScheduleRecord | null> {
  validateScheduleName(name);
  return (await readSchedule(store, name))?.record ?? null;
}
