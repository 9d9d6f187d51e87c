/**
 * Delete: removes a schedule's record and its `schedule_due` entry in one checked commit. The
 * tasks it created are left alone.
 *
 * @module
 */
import type { Store } from "../store/store.ts";
import { ScheduleRecord, validateScheduleName } from "./record.ts";
import { SCHEDULE_COMMIT_ATTEMPTS } from "./_write.ts";
import { commitAtomic } from "../store/commit.ts";

/**
 * Deletes a schedule. Resolves true when it was deleted, false when there was none. A record
 * that can't be decoded is deleted too (its due entry, if any, is dropped when it comes due).
 *
 * @throws {TypeError} when `name` is not a schedule name.
 */
export async function deleteSchedule(store: Store, name: string): Promise<boolean> {
  validateScheduleName(name);
  const key = store.keys.schedule(name);
  for (let attempt = 0; attempt < SCHEDULE_COMMIT_ATTEMPTS; attempt++) {
    const entry = await store.kv.get(key, { consistency: "strong" });
    if (entry.versionstamp === null) return false;
    const atomic = store.kv.atomic().check({ key, versionstamp: entry.versionstamp }).delete(key);
    try {
      const record = ScheduleRecord.decode(key, entry.value);
      if (record.active) atomic.delete(store.keys.scheduleDue(record.nextRun!, name));
    } catch {
      // corrupt: delete the record anyway
    }
    store.addSignal(atomic);
    if ((await commitAtomic(atomic)).ok) {
      store.changes.notifyLocal();
      return true;
    }
  }
  throw new Error(`Schedule ${JSON.stringify(name)} kept changing while being deleted; try again.`);
}
