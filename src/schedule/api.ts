/**
 * The app-facing schedule API of one queue, exposed as `queue.schedules`.
 *
 * @module
 */
import type { Store } from "../store/store.ts";
import type { TaskRecord } from "../task/record.ts";
import { addSchedule, type AddScheduleOptions, type ScheduleOptions } from "./add.ts";
import { deleteSchedule } from "./delete.ts";
import { type FireDueOptions, fireDueSchedules, nextScheduleAt } from "./fire.ts";
import { getSchedule } from "./get.ts";
import { listSchedules, type ListSchedulesOptions } from "./list.ts";
import { pauseSchedule, resumeSchedule } from "./pause.ts";
import type { ScheduleRecord } from "./record.ts";
import { runScheduleNow } from "./run_now.ts";

/** Options for {@linkcode Schedules.add}: when it fires, its task options, and `replace`. */
export interface AddOptions extends ScheduleOptions, AddScheduleOptions {}

/**
 * The schedules of one queue.
 *
 * @example
 * ```ts
 * await queue.schedules.add("nightly-report", "sendReport", ["ops@example.com"], {
 *   type: "cron",
 *   cron: "0 2 * * *",
 *   tz: "Europe/Berlin",
 * });
 * await queue.schedules.pause("nightly-report");
 * ```
 */
export class Schedules {
  readonly #store: Store;

  /** Wraps a queue's store. */
  constructor(store: Store) {
    this.#store = store;
  }

  /**
   * Adds a schedule that calls `func` with `args`. Everything is validated first: a bad
   * schedule stores nothing.
   *
   * @throws {TypeError | RangeError} naming the bad field.
   * @throws {ScheduleExistsError} when the name is taken and `replace` is not set.
   */
  add(
    name: string,
    // deno-lint-ignore no-explicit-any
    func: string | ((...args: any[]) => unknown),
    args: readonly unknown[],
    options: AddOptions,
  ): Promise<ScheduleRecord> {
    const { replace, ...rest } = options;
    const funcName = typeof func === "function" ? func.name : func;
    return addSchedule(
      this.#store,
      { ...rest, name, func: funcName, args },
      replace === undefined ? {} : { replace },
    );
  }

  /** Every schedule, sorted by name. */
  list(options: ListSchedulesOptions = {}): Promise<ScheduleRecord[]> {
    return listSchedules(this.#store, options);
  }

  /** A schedule by name, or null. */
  get(name: string): Promise<ScheduleRecord | null> {
    return getSchedule(this.#store, name);
  }

  /** Pauses a schedule. @throws {NoSuchScheduleError} */
  pause(name: string): Promise<ScheduleRecord> {
    return pauseSchedule(this.#store, name);
  }

  /** Resumes a paused schedule at its next slot at or after now. @throws {NoSuchScheduleError} */
  resume(name: string): Promise<ScheduleRecord> {
    return resumeSchedule(this.#store, name);
  }

  /** Enqueues the schedule's task now, without moving its next run. @throws {NoSuchScheduleError} */
  runNow(name: string): Promise<TaskRecord> {
    return runScheduleNow(this.#store, name);
  }

  /** Deletes a schedule; true when there was one. */
  delete(name: string): Promise<boolean> {
    return deleteSchedule(this.#store, name);
  }

  /** The earliest next run of an active schedule (epoch ms), or null. */
  nextAt(): Promise<number | null> {
    return nextScheduleAt(this.#store);
  }

  /** Fires the due schedules; resolves with the number of tasks created. */
  fireDue(options: FireDueOptions = {}): Promise<number> {
    return fireDueSchedules(this.#store, options);
  }
}
