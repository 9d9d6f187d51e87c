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

/** The task is in a state the action does not apply to. */
export class TaskStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TaskStateError";
  }
}
