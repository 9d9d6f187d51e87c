/**
 * Errors of the store that callers catch by type.
 *
 * @module
 */

/** No task has this id or human name. */
export class NoSuchTaskError extends Error {
  /** The id or name asked for. */
  readonly ref: string;
  constructor(ref: string, queue: string, kind: "task" | "chain" | "iter" = "task") {
    super(
      `No ${kind} ${JSON.stringify(ref)} in queue ${JSON.stringify(queue)}.${
        kind === "task" ? " List tasks with 'kvq tasks' (or pass --queue)." : ""
      }`,
    );
    this.name = "NoSuchTaskError";
    this.ref = ref;
  }
}

/**
 * The text given for a task is neither a task id (a UUIDv7) nor a human name, so no task can
 * have it. A `TypeError`, as for any argument of the wrong form.
 */
export class InvalidTaskRefError extends TypeError {
  /** The text given. */
  readonly ref: string;
  constructor(ref: string) {
    super(
      `No task can be called ${
        JSON.stringify(ref)
      }: a task is named by its id (a UUIDv7) or its human name, like tango-alpha-nine-river. List tasks with 'kvq tasks'.`,
    );
    this.name = "InvalidTaskRefError";
    this.ref = ref;
  }
}

/** The task is in a state the action does not apply to. */
export class TaskStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TaskStateError";
  }
}
