/**
 * Pause and resume: a paused schedule keeps its record but loses its `schedule_due` entry, so
 * its slots pass without firing. Resuming skips the slots that passed while it was paused.
 *
 * @module
 */
import type { Store } from "../store/store.ts";
import { nextRun } from "./next_run.ts";
import type { ScheduleRecord } from "./record.ts";
import { updateSchedule } from "./_write.ts";

/**
 * Pauses a schedule: no slot fires until it is resumed. Pausing a paused schedule changes
 * nothing.
 *
 * @throws {NoSuchScheduleError} when there is no such schedule.
 */
export async function pauseSchedule(store: Store, name: string): Promise<ScheduleRecord> {
  return (await updateSchedule(store, name, (r) => r.paused ? r : r.with({ paused: true })))!;
}

/**
 * Resumes a paused schedule at its next slot at or after now: the slots that passed while it
 * was paused are skipped, even with catch-up (pausing means "not these"). A `once` schedule
 * whose time passed while paused is done. Resuming a schedule that is not paused changes
 * nothing.
 *
 * @throws {NoSuchScheduleError} when there is no such schedule.
 */
export async function resumeSchedule(store: Store, name: string): Promise<ScheduleRecord> {
  return (await updateSchedule(store, name, (r, now) => {
    if (!r.paused) return r;
    return r.with({ paused: false, nextRun: resumedNextRun(r, now) });
  }))!;
}

function resumedNextRun(r: ScheduleRecord, now: number): number | null {
  if (r.nextRun === null || r.nextRun >= now) return r.nextRun;
  const next = nextRun(r.spec, { anchor: new Date(r.anchor), after: new Date(now - 1) });
  return next === null ? null : next.getTime();
}
