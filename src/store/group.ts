/**
 * Group look-ups: the ids of a group's tasks, read through the `group` index.
 *
 * @module
 */
import { TaskRecord } from "../task/record.ts";
import { KV_MAX_GET_MANY } from "./limits.ts";
import type { Store } from "./store.ts";

/** Every record of a group, oldest first. Corrupt records are reported and skipped. */
export async function groupRecords(
  store: Store,
  group: string,
  onCorrupt?: (error: Error) => void,
): Promise<{ record: TaskRecord; versionstamp: string }[]> {
  const ids: string[] = [];
  for await (const e of store.kv.list({ prefix: store.keys.groupPrefix(group) })) {
    ids.push(e.key[e.key.length - 1] as string);
  }
  const out: { record: TaskRecord; versionstamp: string }[] = [];
  for (let i = 0; i < ids.length; i += KV_MAX_GET_MANY) {
    const entries = await store.kv.getMany(
      ids.slice(i, i + KV_MAX_GET_MANY).map((id) => store.keys.task(id)),
    );
    for (const e of entries) {
      if (e.versionstamp === null) continue;
      try {
        out.push({ record: TaskRecord.decode(e.key, e.value), versionstamp: e.versionstamp });
      } catch (error) {
        onCorrupt?.(error as Error);
      }
    }
  }
  return out;
}

/** Deletes task `id`'s entry in group `group`'s index (the task itself stays). */
export async function deleteGroupEntry(store: Store, group: string, id: string): Promise<void> {
  await store.kv.delete(store.keys.group(group, id));
}
