/**
 * Test helpers for the task tests: the fields of a queued task record.
 *
 * @module
 */
import type { TaskFields } from "../../src/task/record.ts";
import { TaskId } from "../../src/task/task_id.ts";

/** The fields of a fresh queued task (a new id), with `patch` applied. */
export function fields(patch: Partial<TaskFields> = {}): TaskFields {
  const id = TaskId.create();
  return {
    id: id.id,
    name: id.name,
    func: "add",
    args: [1, { b: ["é", null, true] }],
    argsChunks: 0,
    queue: "default",
    group: null,
    priority: 0,
    timeout: null,
    maxAttempts: null,
    attempt: 0,
    backoff: null,
    state: "queued",
    enqueuedAt: 1_700_000_000_000,
    runAt: 1_700_000_000_000,
    startedAt: null,
    stoppedAt: null,
    resultJson: null,
    resultChunks: 0,
    error: null,
    errors: [],
    cluster: null,
    worker: null,
    progress: null,
    save: true,
    hook: null,
    unique: null,
    ...patch,
  };
}
