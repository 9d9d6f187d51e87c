/**
 * The records of a list of task ids, read with `getMany` in as few reads as KV allows: for
 * listings, searches and the name look-ups.
 *
 * @module
 */
import { TaskRecord } from "../task/record.ts";
import { KV_MAX_GET_MANY } from "./limits.ts";
import type { Store } from "./store.ts";

/**
 * The records of `ids` that exist, in the order given (eventual consistency: for listings);
 * one that can't be decoded goes to `onCorrupt` and is left out.
 */
export async function readTaskRecords(
  store: Store,
  ids: string[],
  onCorrupt?: (error: Error) => void,
): Promise<TaskRecord[]> {
  const groups: string[][] = [];
  for (let i = 0; i < ids.length; i += KV_MAX_GET_MANY) {
    groups.push(ids.slice(i, i + KV_MAX_GET_MANY));
  }
  const pages = await Promise.all(
    groups.map((g) =>
      store.kv.getMany(g.map((id) => store.keys.task(id)), { consistency: "eventual" })
    ),
  );
  const out: TaskRecord[] = [];
  for (const entry of pages.flat()) {
    if (entry.versionstamp === null) continue;
    try {
      out.push(TaskRecord.decode(entry.key, entry.value));
    } catch (error) {
      onCorrupt?.(error as Error);
    }
  }
  return out;
}
