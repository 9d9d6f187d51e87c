/**
 * Purge: delete the finished tasks of one state, oldest first, optionally only those that
 * stopped before a cutoff, walking the state's `done` index (ordered by stop time) a page at a
 * time. Each page is deleted in as few checked commits as KV allows (`delete_many.ts`, which
 * retention uses too), so a task retried meanwhile is left alone and running tasks are never
 * touched. `kvq purge` and the dashboard's purge both use it.
 *
 * @module
 */
import { deleteDoneMembers, type DoneEntry, readDoneEntry } from "./done_index.ts";
import type { TaskState } from "./keys.ts";
import type { Store } from "./store.ts";

/** Options for {@linkcode purgeFinished}. */
export interface PurgeOptions {
  /** Only tasks that stopped before this time (epoch ms). @default every one */
  before?: number;
  /** Stop after this many ms and report what is left. @default no limit */
  budgetMs?: number;
  /** Count them, delete nothing. @default false */
  dryRun?: boolean;
  /** Index entries read per page. @default 100 */
  page?: number;
}

/** What a purge did. */
export interface PurgeResult {
  /** Tasks deleted (or, in a dry run, that would be). */
  deleted: number;
  /** Tasks that changed meanwhile (retried, say: taken out of the index), or were damaged (left). */
  stale: number;
  /** Whether some remain (the budget ran out). */
  more: boolean;
}

/**
 * Deletes the finished tasks of `state` (succeeded, failed or cancelled).
 *
 * @throws {RangeError} for a state that is not final.
 */
export async function purgeFinished(
  store: Store,
  state: TaskState,
  options: PurgeOptions = {},
): Promise<PurgeResult> {
  if (state !== "succeeded" && state !== "failed" && state !== "cancelled") {
    throw new RangeError(
      `Only finished tasks can be purged (succeeded, failed or cancelled): received ${
        JSON.stringify(state)
      }`,
    );
  }
  const prefix = store.keys.doneState(state);
  // Keys are [..., "done", state, stoppedAt, ...]: the range ends at the cutoff time.
  const selector = options.before === undefined
    ? { prefix }
    : { start: prefix, end: [...prefix, options.before] };
  const started = Date.now();
  const budget = options.budgetMs ?? Infinity;
  const page = options.page ?? 100;
  let deleted = 0;
  let stale = 0;
  let cursor: string | undefined;
  // Whether the last page read was the end of the range (KV's cursor is then empty).
  let end = false;
  while (Date.now() - started < budget) {
    const entries: DoneEntry[] = [];
    const list = store.kv.list(selector, { limit: page, ...(cursor ? { cursor } : {}) });
    for await (const e of list) entries.push(readDoneEntry(e));
    end = entries.length < page;
    if (entries.length === 0) break;
    if (options.dryRun) {
      for (const e of entries) deleted += e.members.length;
    } else {
      const done = await deleteDoneMembers(
        store,
        state,
        entries.map((entry) => ({ entry, members: entry.members })),
      );
      deleted += done.deleted;
      stale += done.stale;
    }
    // Entries left in place (a damaged record's) would be read again: go past them.
    cursor = list.cursor;
    if (end) break;
  }
  let more = false;
  if (!end) {
    for await (const _ of store.kv.list(selector, { limit: 1, ...(cursor ? { cursor } : {}) })) {
      more = true;
    }
  }
  return { deleted, stale, more };
}
