/**
 * Every KV key shape kvq writes, in one place. All live under `["kvq", queue, …]`, so a queue
 * is one prefix to list, export or delete. Keys that sort by time put the time right after the
 * prefix, so a `list` in key order is a list in time order.
 *
 * @module
 */

/** The root of every kvq key. */
export const ROOT = "kvq";

/** A task's state, as stored. See `src/task/record.ts` for the transitions. */
export type TaskState = "scheduled" | "queued" | "running" | "succeeded" | "failed" | "cancelled";

/** Every task state, in lifecycle order. */
export const TASK_STATES: readonly TaskState[] = Object.freeze([
  "scheduled",
  "queued",
  "running",
  "succeeded",
  "failed",
  "cancelled",
]);

/** States a task leaves only by being deleted or retried by hand. */
export const FINAL_STATES: ReadonlySet<TaskState> = new Set(["succeeded", "failed", "cancelled"]);

/** The key builders of one queue. */
export interface QueueKeys {
  /** The queue's prefix: `["kvq", queue]`. */
  readonly prefix: Deno.KvKey;
  /** The task record. One per task; the source of truth for its state. */
  task(id: string): Deno.KvKey;
  /** Prefix of all task records. */
  readonly tasks: Deno.KvKey;
  /** A chunk of a large payload (args or result) of a task. */
  blob(id: string, part: "args" | "result", index: number): Deno.KvKey;
  /** Prefix of all chunks of one payload. */
  blobs(id: string, part: "args" | "result"): Deno.KvKey;
  /** Claimable now. Lower priority first, then by id, which is time-ordered: FIFO. */
  ready(priority: number, id: string): Deno.KvKey;
  /** Prefix of the ready index. */
  readonly readyPrefix: Deno.KvKey;
  /** Waiting for its time (eta, retry backoff), ordered by that time. */
  delayed(runAt: number, id: string): Deno.KvKey;
  /** Prefix of the delayed index. */
  readonly delayedPrefix: Deno.KvKey;
  /** Running: which cluster and worker hold it. */
  lease(id: string): Deno.KvKey;
  /** Prefix of all leases. */
  readonly leases: Deno.KvKey;
  /** Finished, by state and stop time, for listing and retention. */
  done(state: TaskState, stoppedAt: number, id: string): Deno.KvKey;
  /** Prefix of finished tasks of one state. */
  doneState(state: TaskState): Deno.KvKey;
  /** Tasks of a group. */
  group(group: string, id: string): Deno.KvKey;
  /** Prefix of one group. */
  groupPrefix(group: string): Deno.KvKey;
  /** Human name look-up: the id. Names are 32 bits, so the id is in the key to keep both. */
  name(humanName: string, id: string): Deno.KvKey;
  /** Prefix of one human name. */
  namePrefix(humanName: string): Deno.KvKey;
  /** Latest progress a running task reported, kept apart so it never races the record. */
  progress(id: string): Deno.KvKey;
  /** A request to cancel a running task, read by the cluster that runs it. */
  cancel(id: string): Deno.KvKey;
  /** Prefix of cancel requests. */
  readonly cancels: Deno.KvKey;
  /** A cluster's heartbeat and stats. */
  cluster(clusterId: string): Deno.KvKey;
  /** Prefix of cluster heartbeats. */
  readonly clusters: Deno.KvKey;
  /** A counter (`KvU64`). */
  stat(...parts: string[]): Deno.KvKey;
  /** Bumped by every enqueue so `kv.watch` wakes remote clusters. */
  readonly signal: Deno.KvKey;
  /** A schedule record, by its unique name. The source of truth for the schedule. */
  schedule(name: string): Deno.KvKey;
  /** Prefix of all schedule records; listing it gives the schedules sorted by name. */
  readonly schedulePrefix: Deno.KvKey;
  /**
   * A schedule's next run, ordered by that time, so the earliest due schedule is the first key.
   * Moved in the same commit as the record; absent while the schedule is paused or done.
   */
  scheduleDue(nextRun: number, name: string): Deno.KvKey;
  /** Prefix of the schedule due index. */
  readonly scheduleDuePrefix: Deno.KvKey;
}

/** Builds the key shapes of queue `queue`. */
export function queueKeys(queue: string): QueueKeys {
  const p = [ROOT, queue] as const;
  return Object.freeze({
    prefix: [...p],
    task: (id: string) => [...p, "task", id],
    tasks: [...p, "task"],
    blob: (id: string, part: "args" | "result", index: number) => [...p, "blob", id, part, index],
    blobs: (id: string, part: "args" | "result") => [...p, "blob", id, part],
    ready: (priority: number, id: string) => [...p, "ready", priority, id],
    readyPrefix: [...p, "ready"],
    delayed: (runAt: number, id: string) => [...p, "delayed", runAt, id],
    delayedPrefix: [...p, "delayed"],
    lease: (id: string) => [...p, "lease", id],
    leases: [...p, "lease"],
    done: (state: TaskState, stoppedAt: number, id: string) => [...p, "done", state, stoppedAt, id],
    doneState: (state: TaskState) => [...p, "done", state],
    group: (group: string, id: string) => [...p, "group", group, id],
    groupPrefix: (group: string) => [...p, "group", group],
    name: (humanName: string, id: string) => [...p, "name", humanName, id],
    namePrefix: (humanName: string) => [...p, "name", humanName],
    progress: (id: string) => [...p, "progress", id],
    cancel: (id: string) => [...p, "cancel", id],
    cancels: [...p, "cancel"],
    cluster: (clusterId: string) => [...p, "cluster", clusterId],
    clusters: [...p, "cluster"],
    stat: (...parts: string[]) => [...p, "stat", ...parts],
    signal: [...p, "signal"],
    schedule: (name: string) => [...p, "schedule", name],
    schedulePrefix: [...p, "schedule"],
    scheduleDue: (nextRun: number, name: string) => [...p, "schedule_due", nextRun, name],
    scheduleDuePrefix: [...p, "schedule_due"],
  });
}

const QUEUE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * Checks a queue name: 1–64 letters, digits, `_`, `.` or `-`, starting with a letter or digit.
 *
 * @throws {TypeError} naming the bad value.
 */
export function validateQueueName(queue: unknown): string {
  if (typeof queue !== "string" || !QUEUE_NAME.test(queue)) {
    throw new TypeError(
      `Queue name must be 1-64 letters, digits, "_", "." or "-", starting with a letter or digit: received ${
        JSON.stringify(queue)
      }`,
    );
  }
  return queue;
}

/** Renders a key for messages: `["kvq","default","task","0193…"]`. */
export function formatKey(key: Deno.KvKey): string {
  return `[${
    key.map((part) =>
      typeof part === "bigint"
        ? `${part}n`
        : part instanceof Uint8Array
        ? `<${part.length} bytes>`
        : JSON.stringify(part)
    ).join(",")
  }]`;
}
