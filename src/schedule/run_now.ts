/**
 * Run now: one task from a schedule at once, without moving its next run.
 *
 * @module
 */
import { addEnqueueMutations } from "../store/_entries.ts";
import { prepareRecords } from "../store/spec.ts";
import type { Store } from "../store/store.ts";
import type { TaskRecord } from "../task/record.ts";
import { NoSuchScheduleError } from "./errors.ts";
import { validateScheduleName } from "./record.ts";
import { readSchedule, SCHEDULE_COMMIT_ATTEMPTS, taskSpecFor } from "./_write.ts";
import { commitAtomic } from "../store/commit.ts";
import { verifySchedule } from "../task/signature.ts";

/**
 * Enqueues the schedule's task now, whether it is paused, done or overlapping, and records it
 * as the schedule's last task. The next run and the repeats left do not change. With
 * `intendedDateArg`, the task gets "now" as its intended date.
 *
 * @throws {NoSuchScheduleError} when there is no such schedule.
 *
 * @example
 * ```ts
 * const task = await runScheduleNow(store, "nightly-report");
 * console.log(task.id);
 * ```
 */
export async function runScheduleNow(store: Store, name: string): Promise<TaskRecord> {
  validateScheduleName(name);
  for (let attempt = 0; attempt < SCHEDULE_COMMIT_ATTEMPTS; attempt++) {
    const found = await readSchedule(store, name);
    if (found === null) throw new NoSuchScheduleError(name, store.queue);
    // With a secret, the task is signed here: only for a schedule the secret verifies.
    if (store.secrets !== null) verifySchedule(store.secrets, found.record, found.record.sig);
    const now = store.now();
    const [task] = prepareRecords(store, [taskSpecFor(found.record, now)]);
    const after = found.record.with({ lastTaskId: task!.id, lastRunAt: now });
    const key = store.keys.schedule(name);
    const atomic = store.kv.atomic()
      .check({ key, versionstamp: found.versionstamp })
      .set(key, after.encode());
    addEnqueueMutations(store, atomic, [task!], now);
    if ((await commitAtomic(atomic)).ok) {
      store.changes.notifyLocal();
      return task!;
    }
  }
  throw new Error(`Schedule ${JSON.stringify(name)} kept changing while being run; try again.`);
}
