/**
 * Purge: delete the finished tasks of one state, oldest first, optionally only those that
 * stopped before a cutoff, walking the state's `done` index (ordered by stop time) a page at a
 * time. Each page is deleted in as few checked commits as KV allows (`delete_many.ts`, which
 * retention uses too), so a task retried meanwhile is left alone and running tasks are never
 * touched. `kvq purge` and the dashboard's purge both use it.
 *
 * @module
 */
import { TaskRecord } from "../task/record.ts";
import { deleteRecords, type ReadRecord } from "./delete_many.ts";
import type { TaskState } from "./keys.ts";
import { KV_MAX_GET_MANY } from "./limits.ts";
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
  /** Tasks that changed meanwhile (retried, say), or were damaged, and were left. */
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
  // Keys are [..., "done", state, stoppedAt, id]: the range ends at the cutoff time.
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
    const ids: string[] = [];
    const indexKeys = new Map<string, Deno.KvKey>();
    const list = store.kv.list(selector, { limit: page, ...(cursor ? { cursor } : {}) });
    for await (const e of list) {
      const id = e.key[e.key.length - 1] as string;
      ids.push(id);
      indexKeys.set(id, e.key);
    }
    end = ids.length < page;
    if (ids.length === 0) break;
    if (options.dryRun) {
      deleted += ids.length;
      cursor = list.cursor;
      if (end) break;
      continue;
    }
    const found: ReadRecord[] = [];
    const orphans: string[] = [];
    for (let i = 0; i < ids.length; i += KV_MAX_GET_MANY) {
      const part = ids.slice(i, i + KV_MAX_GET_MANY);
      const entries = await store.kv.getMany(part.map((id) => store.keys.task(id)));
      entries.forEach((e, j) => {
        if (e.versionstamp === null) return void orphans.push(part[j]!);
        try {
          const record = TaskRecord.decode(e.key, e.value);
          if (record.state === state) found.push({ record, versionstamp: e.versionstamp });
          else stale++;
        } catch {
          stale++; // damaged: `kvq doctor` reports it; a purge leaves it
        }
      });
    }
    const gone = await deleteRecords(store, found);
    deleted += gone.length;
    // Index entries whose record is gone are dead weight: drop them too.
    for (const id of orphans) await store.kv.delete(indexKeys.get(id)!);
    // Entries left in place (changed meanwhile) would be read again: go past them.
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
