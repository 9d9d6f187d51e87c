/**
 * The human-name look-up, written off the enqueue's path. A `name, humanName, id` entry sorts by
 * a hash-derived name, so writing it lands at a random place in the KV file: measured, it was
 * most of an enqueue's cost (bulk enqueue 6.4k tasks/s with it, 15.5k/s without). Enqueue writes
 * a `name_tail, id` entry instead, at a time-ordered key, and a cluster moves the tail into the
 * look-up when it has time ({@linkcode compactNames}, from its heartbeat). The tail entry's value
 * is the task's name, so a look-up by name reads the tail meanwhile without hashing any id.
 *
 * @module
 */
import { CorruptRecordError, type TaskRecord } from "../task/record.ts";
import { TaskId } from "../task/task_id.ts";
import { sameBytes } from "../runtime/bytes.ts";
import { commitAtomic } from "./commit.ts";
import { readTaskRecords } from "./read_records.ts";
import type { Store } from "./store.ts";

/** Tasks one compaction commit moves: two mutations each, well inside a commit's 1,000. */
const COMPACT_BATCH = 400;

const EMPTY = new Uint8Array();
const encoder = new TextEncoder();

/** The ids of the tasks named `name`, oldest first: from the look-up, then from the tail. */
export async function idsNamed(store: Store, name: string): Promise<string[]> {
  const ids = new Set<string>();
  for await (const e of store.kv.list({ prefix: store.keys.namePrefix(name) })) {
    ids.add(String(e.key[e.key.length - 1]));
  }
  // The tail's values hold the names, so finding one hashes nothing.
  const wanted = encoder.encode(name);
  for await (const e of store.kv.list({ prefix: store.keys.nameTailPrefix }, { batchSize: 1000 })) {
    if (e.value instanceof Uint8Array && sameBytes(e.value, wanted)) {
      ids.add(String(e.key[e.key.length - 1]));
    }
  }
  return [...ids].sort();
}

/** The ids in the name tail, oldest first. */
export async function tailIds(store: Store, limit = Infinity): Promise<string[]> {
  const out: string[] = [];
  for await (
    const e of store.kv.list({ prefix: store.keys.nameTailPrefix }, {
      batchSize: 1000,
      ...(Number.isFinite(limit) ? { limit } : {}),
    })
  ) {
    out.push(String(e.key[e.key.length - 1]));
  }
  return out;
}

/**
 * The id of every task that has a look-up entry (in the name look-up or its tail), each once,
 * for the readers that must not depend on the records' values (a damaged value stops a list).
 */
export async function* everyTaskId(store: Store): AsyncGenerator<string> {
  const tail = new Set(await tailIds(store));
  for await (const e of store.kv.list({ prefix: store.keys.names }, { batchSize: 1000 })) {
    const id = String(e.key[e.key.length - 1]);
    if (!tail.has(id)) yield id;
  }
  yield* tail;
}

/**
 * Moves up to `max` tasks of the name tail into the name look-up, oldest first, and returns
 * how many it moved. A tail entry whose record is gone, or is a finished cached one (its
 * look-up expires with it, written when it finished), is only dropped. It checks nothing: a
 * task deleted between the read and the commit may leave a look-up entry that names no record,
 * which a look-up by name skips as it skips a deleted task's.
 */
export async function compactNames(store: Store, max = COMPACT_BATCH): Promise<number> {
  let moved = 0;
  while (moved < max) {
    const ids = await tailIds(store, Math.min(COMPACT_BATCH, max - moved));
    if (ids.length === 0) break;
    const live = await liveRecords(store, ids);
    const atomic = store.kv.atomic();
    for (const id of ids) {
      atomic.delete(store.keys.nameTail(id));
      const r = live.get(id);
      // A damaged record keeps a look-up too, by the name its id gives: the doctor finds it so.
      if (r === null && TaskId.isId(id)) {
        atomic.set(store.keys.name(TaskId.parse(id).name, id), EMPTY);
      } else if (r && !(r.cached !== null && r.finished)) {
        atomic.set(store.keys.name(r.name, id), EMPTY);
      }
    }
    await commitAtomic(atomic);
    moved += ids.length;
    if (ids.length < COMPACT_BATCH) break;
  }
  return moved;
}

/** The records of `ids` that exist, by id: null for one that can't be decoded. */
async function liveRecords(
  store: Store,
  ids: string[],
): Promise<Map<string, TaskRecord | null>> {
  const out = new Map<string, TaskRecord | null>();
  const records = await readTaskRecords(store, ids, (error) => {
    if (error instanceof CorruptRecordError) out.set(String(error.key.at(-1)), null);
  });
  for (const r of records) out.set(r.id, r);
  return out;
}
