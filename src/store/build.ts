/**
 * Builds the record of a task that another commit creates (a hook, a chain step): validates its
 * spec, and writes the chunks of large arguments first.
 *
 * @module
 */
import type { MemberOf, TaskRecord } from "../task/record.ts";
import { TaskId } from "../task/task_id.ts";
import { writeChunks } from "./chunks.ts";
import { buildChecked, check, type Checked, type EnqueueSpec } from "./spec.ts";
import type { TraceContext } from "../telemetry/otel.ts";
import type { Store } from "./store.ts";

/** Writes the chunks of large arguments, then builds the record that points at them. */
export async function buildChunked(
  store: Store,
  c: Checked,
  now: number,
  id: TaskId = TaskId.create(),
): Promise<TaskRecord> {
  const chunks = await writeChunks(store, id.id, "args", c.large!);
  return buildChecked(store, c, now, chunks, id);
}

/**
 * Validates one spec and builds its record (writing chunks for large arguments) without
 * storing the record. For tasks that other commits create (hooks, chain steps).
 *
 * @throws {TypeError | RangeError} naming the task and the bad field.
 */
export async function buildRecord(
  store: Store,
  spec: EnqueueSpec,
  extra: { chain?: MemberOf; iter?: MemberOf; what?: string; trace?: TraceContext | null } = {},
): Promise<TaskRecord> {
  const now = store.now();
  const c = check(store, spec, now, null, extra.what);
  // A hook or chain step carries the trace of the task that created it.
  if (extra.trace) c.options.trace = extra.trace;
  const record = c.large === null
    ? buildChecked(store, c, now, 0)
    : await buildChunked(store, c, now);
  return extra.chain || extra.iter ? record.memberOf(extra) : record;
}
