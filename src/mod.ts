/**
 * kvq: a background task queue and worker cluster for Deno and Bun, built on Deno KV.
 *
 * @example
 * ```ts
 * import { openQueue } from "kvq";
 * await using queue = await openQueue();
 * const { id } = await queue.enqueue("sendEmail", "ada@example.com");
 * console.log(await queue.result(id, { wait: 10_000 }));
 * ```
 *
 * @module
 */
export {
  type EnqueueCall,
  type Enqueued,
  IterFailedError,
  type IterResultOptions,
  openQueue,
  type OpenQueueOptions,
  Queue,
  type ResultOptions,
  TaskFailedError,
} from "./queue/queue.ts";
export {
  type EnqueueOptions,
  type UniqueMode,
  type UniqueOption,
  UniqueTaskError,
} from "./store/enqueue.ts";
export type { ChainOptions, ChainState, ChainStatus } from "./store/chain.ts";
export type { IterStatus } from "./store/iter.ts";
export type { PauseInfo } from "./store/pause.ts";
export {
  LimitError,
  parseRate,
  type QueueLimits,
  type QueueLimitsInput,
  type Rate,
} from "./store/flow.ts";
export type { PartitionCounts, PartitionCountsOptions } from "./store/partitions.ts";
export type { Retention, RetentionOptions } from "./store/prune.ts";
export type { SearchField, SearchOptions, SearchPage, SearchProgress } from "./store/search.ts";
export { type BoundTasks, defineTasks, type TaskRegistry } from "./queue/registry.ts";
export { type Backoff, DEFAULT_RETRY, type RetryPolicy } from "./task/backoff.ts";
export { type TaskContext, taskContext } from "./task/context.ts";
export {
  RateLimitedError,
  TaskCancelledError,
  TaskNotFoundError,
  TaskTimeoutError,
  WorkerCrashError,
} from "./task/errors.ts";
export type { JsonValue } from "./task/json.ts";
export { CorruptRecordError, type Progress, TaskRecord } from "./task/record.ts";
export { TaskId } from "./task/task_id.ts";
export { NoSuchTaskError, TaskStateError } from "./store/errors.ts";
export { IdempotencyKeyError } from "./store/enqueue_batch.ts";
export { PayloadTooLargeError } from "./store/chunks.ts";
export { KvOpenError } from "./store/kv.ts";
export { KvHandle, Store } from "./store/store.ts";
export type { TaskState } from "./store/keys.ts";
export { type InlineOptions, runInline } from "./cluster/inline.ts";
export {
  Cluster,
  type ClusterOptions,
  type ClusterStat,
  type QueueWeight,
  type WorkerStat,
} from "./cluster/cluster.ts";
export type { ClusterEventMap } from "./cluster/events.ts";
