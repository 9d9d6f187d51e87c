/**
 * Errors of the schedule store that callers catch by type.
 *
 * @module
 */

/** No schedule has this name. */
export class NoSuchScheduleError extends Error {
  /** The name asked for. */
  readonly scheduleName: string;
  constructor(name: string, queue: string) {
    super(
      `No schedule ${JSON.stringify(name)} in queue ${
        JSON.stringify(queue)
      }. List schedules with 'kvq schedule list' (or pass --queue).`,
    );
    this.name = "NoSuchScheduleError";
    this.scheduleName = name;
  }
}

/** A schedule of this name already exists, and the add did not ask to replace it. */
export class ScheduleExistsError extends Error {
  /** The name that is taken. */
  readonly scheduleName: string;
  constructor(name: string, queue: string) {
    super(
      `Schedule field "name" must be unique: a schedule named ${
        JSON.stringify(name)
      } already exists in queue ${
        JSON.stringify(queue)
      }. Pass replace: true (--replace) to overwrite it, or choose another name.`,
    );
    this.name = "ScheduleExistsError";
    this.scheduleName = name;
  }
}
