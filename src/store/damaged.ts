/**
 * Damaged records: task records whose stored value can't be decoded (written by another program,
 * or broken on disk). A claim or promotion that meets one drops its index entry and sets it aside
 * under `damaged, id` in the same commit, reported once, so the queue goes on with everything
 * else and nothing reads it again on the hot path. Listings skip it with a warning, `export`
 * keeps its raw bytes, `kvq doctor` lists (and with `--scan` finds) them, and `kvq delete`
 * removes one.
 *
 * @module
 */
import { TaskId } from "../task/task_id.ts";
import { everyTaskId } from "./names.ts";
import { TaskRecord } from "../task/record.ts";
import { commitAtomic } from "./commit.ts";
import { KV_MAX_GET_MANY } from "./limits.ts";
import { isUnreadable } from "./kv.ts";
import type { Store } from "./store.ts";

/** One damaged record as set aside. */
export interface DamagedEntry {
  /** The task id (the last part of its key). */
  id: string;
  /** Why it could not be read. */
  reason: string;
  /** When it was set aside, epoch ms. */
  at: number;
  /** The stored value's size in bytes, when it is bytes. */
  bytes: number | null;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Adds the `damaged` entry of task `id` to `atomic`. */
export function addDamaged(
  atomic: Deno.AtomicOperation,
  store: Store,
  id: string,
  error: Error,
  value: unknown,
): void {
  const entry: Omit<DamagedEntry, "id"> = {
    reason: shortReason(error),
    at: store.now(),
    bytes: value instanceof Uint8Array ? value.length : null,
  };
  atomic.set(store.keys.damaged(id), encoder.encode(JSON.stringify(entry)));
}

/** What was wrong, without the key and the advice a CorruptRecordError adds around it. */
function shortReason(error: Error): string {
  return error.message.replace(/^Stored value at .*? is not a valid kvq record: /, "")
    .replace(/\. It was skipped;.*$/s, "").slice(0, 300);
}

/** How many damaged records the queue set aside, counted up to `max`. */
export async function countDamaged(store: Store, max = 10_000): Promise<number> {
  let n = 0;
  for await (const _ of store.kv.list({ prefix: store.keys.damagedPrefix }, { limit: max })) n++;
  return n;
}

/** The damaged records set aside, oldest id first, at most `limit`. */
export async function listDamaged(store: Store, limit = 1000): Promise<DamagedEntry[]> {
  const out: DamagedEntry[] = [];
  for await (const e of store.kv.list({ prefix: store.keys.damagedPrefix }, { limit })) {
    const id = String(e.key[e.key.length - 1]);
    try {
      out.push({ id, ...JSON.parse(decoder.decode(e.value as Uint8Array)) });
    } catch {
      out.push({ id, reason: "(its damaged entry is damaged too)", at: 0, bytes: null });
    }
  }
  return out;
}

/**
 * Reads every task record of the queue and sets aside those that can't be decoded: for records
 * broken where no claim looks (finished ones, or ones whose index entry is gone). The ids come
 * from the name look-ups, whose values are empty: a list of the records themselves would stop at
 * the first value the KV engine can't decode. Resolves with how many records it read and the
 * damaged ones it found.
 */
export async function scanDamaged(
  store: Store,
  onProgress?: (read: number) => void,
): Promise<{ read: number; found: DamagedEntry[] }> {
  let read = 0;
  const found: DamagedEntry[] = [];
  let ids: string[] = [];
  const check = async () => {
    const entries = await store.kv.getMany(ids.map((id) => store.keys.task(id)));
    for (const e of entries) {
      if (e.versionstamp === null) continue;
      read++;
      if (read % 10_000 === 0) onProgress?.(read);
      try {
        TaskRecord.decode(e.key, e.value);
      } catch (error) {
        const id = String(e.key[e.key.length - 1]);
        const atomic = store.kv.atomic();
        addDamaged(atomic, store, id, error as Error, e.value);
        await commitAtomic(atomic);
        found.push({
          id,
          reason: shortReason(error as Error),
          at: store.now(),
          bytes: e.value instanceof Uint8Array ? e.value.length : null,
        });
      }
    }
    ids = [];
  };
  for await (const id of everyTaskId(store)) {
    ids.push(id);
    if (ids.length === KV_MAX_GET_MANY) await check();
  }
  if (ids.length > 0) await check();
  return { read, found };
}

/**
 * Deletes a damaged record with every entry kvq can find for its id without reading it: its
 * damaged entry, lease, progress, cancel request, name look-up and chunks. Index entries that
 * depend on what the record held (its ready or done position, its func and group) are dropped by the
 * claim, the promotion and retention when they meet them. Counters can't be corrected without
 * the record's state.
 *
 * @returns false when there is no record at that id.
 */
export async function deleteDamaged(store: Store, id: string): Promise<boolean> {
  const k = store.keys;
  const entry = await store.kv.get(k.task(id)).catch(() => null);
  const atomic = store.kv.atomic();
  if (entry !== null) {
    if (entry.versionstamp === null) return false;
    // An unreadable value has no versionstamp to check against: it is deleted as it is.
    if (!isUnreadable(entry)) atomic.check({ key: k.task(id), versionstamp: entry.versionstamp });
  }
  atomic.delete(k.task(id))
    .delete(k.damaged(id))
    .delete(k.progress(id))
    .delete(k.cancel(id));
  if (TaskId.isId(id)) {
    atomic.delete(k.name(TaskId.parse(id).name, id)).delete(k.nameTail(id))
      .delete(k.nameTailOne(id));
  }
  if (!(await commitAtomic(atomic)).ok) return false;
  for (const part of ["args", "result"] as const) {
    for await (const c of store.kv.list({ prefix: k.blobs(id, part) })) {
      await store.kv.delete(c.key);
    }
  }
  store.changes.notifyLocal();
  return true;
}

/** The bytes stored at `key`, for describing a record that can't be decoded; null if none. */
export async function storedBytes(store: Store, key: Deno.KvKey): Promise<Uint8Array | null> {
  const raw = await store.kv.get(key).catch(() => null);
  return raw?.value instanceof Uint8Array ? raw.value : null;
}
