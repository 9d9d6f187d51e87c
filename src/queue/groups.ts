/**
 * Groups (Django Q's `group`): the tasks enqueued with the same `group` option, counted, their
 * results collected in enqueue order, and the group deleted.
 *
 * @module
 */
import type { JsonValue } from "../task/json.ts";
import { deleteRecord } from "../store/delete.ts";
import { getTask } from "../store/get.ts";
import { deleteGroupEntry, groupRecords } from "../store/group.ts";
import type { Store } from "../store/store.ts";
import { waitFor } from "./waiters.ts";

/** Options for `Queue.resultGroup`. */
export interface ResultGroupOptions {
  /** Count failed tasks too (their result is null). */
  failures?: boolean;
  /** Milliseconds to wait for `count` tasks to finish. */
  wait?: number;
  /** How many finished tasks to wait for. */
  count?: number;
  /** Stops waiting early. */
  signal?: AbortSignal;
}

/** How many of a group's tasks finished: successes only, or with `failures` also failed ones. */
export async function countGroup(
  store: Store,
  group: string,
  options: { failures?: boolean } = {},
): Promise<number> {
  const records = (await groupRecords(store, group)).map((g) => g.record);
  return records.filter((r) => r.state === "succeeded" || (options.failures && r.finished))
    .length;
}

/**
 * The results of a group's succeeded tasks, in enqueue order. With `count`, waits up to `wait`
 * ms until that many have finished (with `failures`, failed ones count too).
 */
export async function resultGroup(
  store: Store,
  group: string,
  options: ResultGroupOptions = {},
): Promise<JsonValue[]> {
  const read = async () =>
    (await groupRecords(store, group)).map((g) => g.record).filter((r) =>
      r.state === "succeeded" || (options.failures && r.finished)
    );
  let finished = await read();
  const want = options.count ?? 0;
  if (want > 0 && finished.length < want && (options.wait ?? 0) > 0) {
    await waitFor(store, async () => {
      finished = await read();
      return finished.length >= want;
    }, { wait: options.wait ?? 0, ...(options.signal ? { signal: options.signal } : {}) });
  }
  const out: JsonValue[] = [];
  for (const r of finished) {
    const full = r.resultChunks > 0 ? await getTask(store, r.id) : r;
    out.push(full?.state === "succeeded" ? full.result ?? null : null);
  }
  return out;
}

/**
 * Deletes a group's index; with `tasks`, its tasks too (running ones are left alone and
 * counted in `skipped`).
 */
export async function deleteGroup(
  store: Store,
  group: string,
  options: { tasks?: boolean } = {},
): Promise<{ deleted: number; skipped: number }> {
  let deleted = 0;
  let skipped = 0;
  for (const { record, versionstamp } of await groupRecords(store, group)) {
    if (options.tasks) {
      if (record.state === "running") {
        skipped++;
        continue;
      }
      if (await deleteRecord(store, record, versionstamp)) deleted++;
      else skipped++;
    } else {
      await deleteGroupEntry(store, group, record.id);
      deleted++;
    }
  }
  return { deleted, skipped };
}
