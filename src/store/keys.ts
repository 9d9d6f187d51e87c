/**
 * Every KV key shape kvq writes, in one place. All live under `["kvq", queue, …]`, so a queue
 * is one prefix to list, export or delete. Keys that sort by time put the time right after the
 * prefix, so a `list` in key order is a list in time order.
 *
 * @module
 */

/** The root of every kvq key. */
export const ROOT = "kvq";

import type { TaskState } from "../task/states.ts";

export { FINAL_STATES, TASK_STATES, type TaskState } from "../task/states.ts";
export { formatKey } from "../runtime/kv_key.ts";

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
  /** Prefix of all chunks of one payload (for results: of every stored copy). */
  blobs(id: string, part: "args" | "result"): Deno.KvKey;
  /**
   * A chunk of a large result, under a blob id drawn by the writer and named in the record. A
   * late duplicate result (a lost lease) writes its own blob, so it never overwrites the
   * chunks of the outcome that won.
   */
  resultBlob(id: string, blob: string, index: number): Deno.KvKey;
  /** Prefix of the chunks of one result blob. */
  resultBlobPrefix(id: string, blob: string): Deno.KvKey;
  /** Claimable now. Lower priority first, then by id, which is time-ordered: FIFO. */
  ready(priority: number, id: string): Deno.KvKey;
  /**
   * A partitioned task claimable now: by priority, then its turn (see `turns.ts`), so the
   * partitions of a queue take turns. Within a priority these sort after the tasks with no
   * partition (KV sorts strings before numbers).
   */
  readyTurn(priority: number, turn: number, id: string): Deno.KvKey;
  /** Prefix of the ready index. */
  readonly readyPrefix: Deno.KvKey;
  /**
   * The turn of the last partitioned task of priority `priority` claimed: where a partition
   * with nothing waiting joins the line (see `turns.ts`).
   */
  turnClock(priority: number): Deno.KvKey;
  /** The turn of the last task enqueued in partition `partition` (see `turns.ts`). */
  partitionTurn(partition: string): Deno.KvKey;
  /** How many tasks of partition `partition` are in state `state` (scheduled, queued, running). */
  partitionStat(partition: string, state: TaskState): Deno.KvKey;
  /** The times of the recent task starts of partition `partition`, for `partitionRate`. */
  partitionRateLog(partition: string): Deno.KvKey;
  /** Prefix of every partition's keys. */
  readonly partitions: Deno.KvKey;
  /** Partitions held until a time by a push-back (`RateLimitedError`): `{ partition: until }`. */
  readonly partitionHolds: Deno.KvKey;
  /**
   * Summed by every commit that takes a queued task away (a claim, a cancel, a delete). A claim
   * larger than a commit may hold checks (on `@deno/kv`, 10) checks this one key, read before
   * its list, instead of each task's record.
   */
  readonly claimSeq: Deno.KvKey;
  /** Waiting for its time (eta, retry backoff), ordered by that time. */
  delayed(runAt: number, id: string): Deno.KvKey;
  /** Prefix of the delayed index. */
  readonly delayedPrefix: Deno.KvKey;
  /**
   * A waiting task's start-by deadline (`expireIn`), ordered by it: the clusters end the tasks
   * that have not started by then. Left behind when the task starts or ends, and dropped when
   * its time comes.
   */
  expiring(at: number, id: string): Deno.KvKey;
  /** Prefix of the start-by deadlines. */
  readonly expiringPrefix: Deno.KvKey;
  /**
   * The tasks one claim commit of cluster `clusterId` took (a JSON list of ids, and which were
   * held). A running task's lease is its record (state `running`, its cluster and attempt);
   * this entry is how lease recovery finds the running tasks of a cluster that died. It is
   * written by the claim commit and deleted by the commit that stores the last of its tasks.
   */
  claim(clusterId: string, claimId: string): Deno.KvKey;
  /** Prefix of the claim entries of one cluster. */
  claimsOf(clusterId: string): Deno.KvKey;
  /** Prefix of all claim entries. */
  readonly leases: Deno.KvKey;
  /**
   * Summed by every commit that takes a running task away from cluster `clusterId` (lease
   * recovery): while it stands as the cluster read it before a claim, none of the tasks of
   * that claim was taken, so the cluster's outcome commits check this one key instead of
   * every task's record. Never deleted: a key that came back absent would pass a stale check.
   */
  epoch(clusterId: string): Deno.KvKey;
  /**
   * Finished, by state and stop time, for listing and retention. The value names the task's
   * func and group (see `finish.ts`), so retention per func or group reads no records.
   */
  done(state: TaskState, stoppedAt: number, id: string): Deno.KvKey;
  /**
   * Finished in one outcome commit, by state and their latest stop time: a batch entry naming
   * each task (layout 5, see `done_index.ts`).
   */
  doneBatch(state: TaskState, stoppedAt: number, firstId: string): Deno.KvKey;
  /** Prefix of finished tasks of one state. */
  doneState(state: TaskState): Deno.KvKey;
  /**
   * Tasks of a function, by id (time-ordered within a function), for search and listing by
   * func: one empty entry per task, written with its record and deleted with it.
   */
  func(func: string, id: string): Deno.KvKey;
  /** Prefix of one function's tasks. */
  funcPrefix(func: string): Deno.KvKey;
  /** Tasks of a group. */
  group(group: string, id: string): Deno.KvKey;
  /** Prefix of one group. */
  groupPrefix(group: string): Deno.KvKey;
  /**
   * The holder of a unique key: the id of the one task that may hold it while it is scheduled,
   * queued or running. Set in the enqueue commit (checked absent), deleted in the commit that
   * stores the task's final outcome.
   */
  unique(key: string): Deno.KvKey;
  /**
   * A chain (Django Q's `async_chain`): its steps, which step runs, and how it ended. Changed
   * only in the commit that stores a step's final outcome, which also creates the next step.
   */
  chain(id: string): Deno.KvKey;
  /**
   * One chain step's result, kept apart from the step's task record so a chain works with
   * `save: false` and with retention pruning the step's task.
   */
  chainResult(id: string, index: number): Deno.KvKey;
  /** Prefix of a chain's step results. */
  chainResults(id: string): Deno.KvKey;
  /** An iter (Django Q's `async_iter`): how many member tasks it has. */
  iter(id: string): Deno.KvKey;
  /** One iter member's outcome, by input index, so results collate in input order. */
  iterResult(id: string, index: number): Deno.KvKey;
  /** Prefix of an iter's member outcomes. */
  iterResults(id: string): Deno.KvKey;
  /** How many iter members finished (`KvU64`), summed in each member's final commit. */
  iterDone(id: string): Deno.KvKey;
  /** Present while the queue is paused: clusters claim nothing from it. */
  readonly paused: Deno.KvKey;
  /** The queue's flow-control limits (see `flow.ts`), when it has some. */
  readonly limits: Deno.KvKey;
  /** The times of its recent task starts, for a rate limit (see `flow.ts`). */
  readonly rateLog: Deno.KvKey;
  /** Human name look-up: the id. Names are 32 bits, so the id is in the key to keep both. */
  name(humanName: string, id: string): Deno.KvKey;
  /** Prefix of one human name. */
  namePrefix(humanName: string): Deno.KvKey;
  /** The prefix of every name look-up: one empty entry per task, its id last. */
  readonly names: Deno.KvKey;
  /**
   * A task whose name look-up is not written yet: its human name at a time-ordered key, which
   * enqueue writes instead of the look-up (a key that sorts by the name lands at a random place,
   * the main cost of an enqueue). A cluster moves these into `name` entries when it has time
   * (see `names.ts`); until then a look-up by name reads them.
   */
  nameTail(id: string): Deno.KvKey;
  /**
   * The name tail of a bulk enqueue: one entry per commit (at most 400 tasks) instead of one per
   * task, keyed by its newest task's id (so a reader going newest first knows when no older
   * entry holds a newer task), its value the JSON list of `[id, name, func]` (see `names.ts`).
   * Its extra last part keeps it apart from that task's own `nameTail` entry, which deleting or
   * finishing the task removes: those do not touch a batch's entry, and compaction drops the ids
   * whose records are gone.
   */
  nameTailBatch(lastId: string): Deno.KvKey;
  /**
   * The name tail of an enqueue of one task: a batch entry of one (read as a batch is), at a key
   * of its own, so deleting or finishing the task removes it without reading it.
   */
  nameTailOne(id: string): Deno.KvKey;
  /** The prefix of the name tail (per-task and batch entries, in id order). */
  readonly nameTailPrefix: Deno.KvKey;
  /** Latest progress a running task reported, kept apart so it never races the record. */
  progress(id: string): Deno.KvKey;
  /**
   * The held (prefetched) tasks a cluster handed to its workers and has not finished storing:
   * a JSON array of ids, rewritten once per result batch. Lease recovery counts the attempt of
   * a held task only when its id is here; otherwise the task goes back to `queued` as if never
   * claimed.
   */
  started(clusterId: string): Deno.KvKey;
  /** A request to cancel a running task, read by the cluster that runs it. */
  cancel(id: string): Deno.KvKey;
  /** Prefix of cancel requests. */
  readonly cancels: Deno.KvKey;
  /** A cluster's heartbeat and stats. */
  cluster(clusterId: string): Deno.KvKey;
  /** Prefix of cluster heartbeats. */
  readonly clusters: Deno.KvKey;
  /**
   * `damaged, id`: a task record that can't be decoded, set aside when a claim or promotion met
   * it, so that nothing reads it again on the hot path; `kvq doctor` lists them.
   */
  damaged(id: string): Deno.KvKey;
  /** The prefix of every damaged entry. */
  readonly damagedPrefix: Deno.KvKey;
  /**
   * `batch, key, "head"`: an idempotent bulk enqueue's start time and a hash of its calls;
   * `batch, key, "part", uuid`: the call indexes one of its commits stored. Both expire after a
   * day (see `enqueue_batch.ts`).
   */
  batchHead(key: string): Deno.KvKey;
  /** One part marker of batch `key`. */
  batchPart(key: string, part: string): Deno.KvKey;
  /** The prefix of the part markers of batch `key`. */
  batchParts(key: string): Deno.KvKey;
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

/**
 * The third part of every key kvq writes under `["kvq", queue]`. A name under `["kvq"]` whose
 * keys start otherwise belongs to another app and is not a kvq queue.
 */
export const QUEUE_PARTS: ReadonlySet<string> = new Set([
  "batch",
  "blob",
  "cancel",
  "chain",
  "chain_result",
  "claim_seq",
  "clock",
  "cluster",
  "damaged",
  "delayed",
  "done",
  "done_by", // layout 1 only (see schema.ts)
  "epoch",
  "expiring",
  "func",
  "group",
  "iter",
  "iter_done",
  "iter_result",
  "lease",
  "limits",
  "name",
  "name_tail",
  "partition",
  "partition_holds",
  "paused",
  "progress",
  "rate_log",
  "ready",
  "schedule",
  "schedule_due",
  "signal",
  "started",
  "stat",
  "task",
  "unique",
]);

/** Builds the key shapes of queue `queue`. */
export function queueKeys(queue: string): QueueKeys {
  const p = [ROOT, queue] as const;
  return Object.freeze({
    prefix: [...p],
    task: (id: string) => [...p, "task", id],
    tasks: [...p, "task"],
    blob: (id: string, part: "args" | "result", index: number) => [...p, "blob", id, part, index],
    blobs: (id: string, part: "args" | "result") => [...p, "blob", id, part],
    resultBlob: (id: string, blob: string, index: number) => [
      ...p,
      "blob",
      id,
      "result",
      blob,
      index,
    ],
    resultBlobPrefix: (id: string, blob: string) => [...p, "blob", id, "result", blob],
    ready: (priority: number, id: string) => [...p, "ready", priority, id],
    readyTurn: (priority: number, turn: number, id: string) => [
      ...p,
      "ready",
      priority,
      turn,
      id,
    ],
    readyPrefix: [...p, "ready"],
    turnClock: (priority: number) => [...p, "clock", priority],
    partitionTurn: (partition: string) => [...p, "partition", partition, "turn"],
    partitionStat: (partition: string, state: TaskState) => [
      ...p,
      "partition",
      partition,
      "state",
      state,
    ],
    partitionRateLog: (partition: string) => [...p, "partition", partition, "rate_log"],
    partitions: [...p, "partition"],
    partitionHolds: [...p, "partition_holds"],
    claimSeq: [...p, "claim_seq"],
    delayed: (runAt: number, id: string) => [...p, "delayed", runAt, id],
    delayedPrefix: [...p, "delayed"],
    expiring: (at: number, id: string) => [...p, "expiring", at, id],
    expiringPrefix: [...p, "expiring"],
    claim: (clusterId: string, claimId: string) => [...p, "lease", clusterId, claimId],
    claimsOf: (clusterId: string) => [...p, "lease", clusterId],
    leases: [...p, "lease"],
    epoch: (clusterId: string) => [...p, "epoch", clusterId],
    done: (state: TaskState, stoppedAt: number, id: string) => [...p, "done", state, stoppedAt, id],
    doneBatch: (state: TaskState, stoppedAt: number, firstId: string) => [
      ...p,
      "done",
      state,
      stoppedAt,
      firstId,
      "b",
    ],
    doneState: (state: TaskState) => [...p, "done", state],
    func: (func: string, id: string) => [...p, "func", func, id],
    funcPrefix: (func: string) => [...p, "func", func],
    group: (group: string, id: string) => [...p, "group", group, id],
    groupPrefix: (group: string) => [...p, "group", group],
    unique: (key: string) => [...p, "unique", key],
    chain: (id: string) => [...p, "chain", id],
    chainResult: (id: string, index: number) => [...p, "chain_result", id, index],
    chainResults: (id: string) => [...p, "chain_result", id],
    iter: (id: string) => [...p, "iter", id],
    iterResult: (id: string, index: number) => [...p, "iter_result", id, index],
    iterResults: (id: string) => [...p, "iter_result", id],
    iterDone: (id: string) => [...p, "iter_done", id],
    paused: [...p, "paused"],
    limits: [...p, "limits"],
    rateLog: [...p, "rate_log"],
    name: (humanName: string, id: string) => [...p, "name", humanName, id],
    namePrefix: (humanName: string) => [...p, "name", humanName],
    names: [...p, "name"],
    nameTail: (id: string) => [...p, "name_tail", id],
    nameTailBatch: (lastId: string) => [...p, "name_tail", lastId, "b"],
    nameTailOne: (id: string) => [...p, "name_tail", id, "s"],
    nameTailPrefix: [...p, "name_tail"],
    progress: (id: string) => [...p, "progress", id],
    started: (clusterId: string) => [...p, "started", clusterId],
    cancel: (id: string) => [...p, "cancel", id],
    cancels: [...p, "cancel"],
    cluster: (clusterId: string) => [...p, "cluster", clusterId],
    clusters: [...p, "cluster"],
    damaged: (id: string) => [...p, "damaged", id],
    damagedPrefix: [...p, "damaged"],
    batchHead: (key: string) => [...p, "batch", key, "head"],
    batchPart: (key: string, part: string) => [...p, "batch", key, "part", part],
    batchParts: (key: string) => [...p, "batch", key, "part"],
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

/**
 * The size of `key` as KV encodes it (FoundationDB tuple layer): a type byte per part, strings
 * and bytes with a terminator and escaped NULs, numbers as 9 bytes, bigints at most 10.
 */
export function keyBytes(key: Deno.KvKey): number {
  let n = 0;
  for (const part of key) {
    if (typeof part === "string") {
      const bytes = encoder.encode(part);
      n += 2 + bytes.length + bytes.filter((b) => b === 0).length;
    } else if (part instanceof Uint8Array) {
      n += 2 + part.length + part.filter((b) => b === 0).length;
    } else if (typeof part === "bigint") n += 10;
    else n += 9;
  }
  return n;
}

const encoder = new TextEncoder();
