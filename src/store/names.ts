/**
 * The human-name look-up (and the func look-up), written off the enqueue's path. A
 * `name, humanName, id` entry sorts by a hash-derived name, so writing it lands at a random
 * place in the KV file: measured, it was most of an enqueue's cost (bulk enqueue 6.4k tasks/s
 * with it, 15.5k/s without). Enqueue writes a name-tail entry instead, at a time-ordered key, and
 * a cluster moves the tail into the look-up when it has time ({@linkcode compactNames}, from its
 * heartbeat). The tail holds the tasks' names, so a look-up by name reads the tail meanwhile
 * without hashing any id.
 *
 * The tail has three shapes of entry, read alike:
 * - `name_tail, id`: one task, its value the task's name (a failed task retried by hand, a
 *   task created by another's outcome), beside its func look-up. Deleting or finishing the task
 *   deletes it.
 * - `name_tail, lastId, "b"`: the tasks of one bulk-enqueue commit, at most
 *   {@linkcode TAIL_BATCH}, its value the JSON list of `[id, name, func]`: one mutation for
 *   them all instead of a name-tail entry and a func look-up each (bulk enqueue measured 1.15x
 *   faster for the name, 1.33x more for the func). Readers by func read it too
 *   ({@linkcode funcTailIds}). Nothing deletes it but compaction, which writes both look-ups
 *   and drops the ids whose records are gone.
 * - `name_tail, id, "s"`: a batch of one, as an enqueue of one task writes it (one mutation
 *   instead of two). Its key names its only task, so deleting or finishing that task deletes it
 *   as it deletes a `name_tail, id` entry. A release of layout 4 reads it as a batch.
 *
 * @module
 */
import { CorruptRecordError, type TaskRecord } from "../task/record.ts";
import { TaskId } from "../task/task_id.ts";
import { commitAtomic } from "./commit.ts";
import type { QueueKeys } from "./keys.ts";
import { readTaskRecords } from "./read_records.ts";
import type { Store } from "./store.ts";

/**
 * Tasks one compaction commit moves (two look-ups each at most, well inside a commit's 1,000),
 * and so the most one batch entry of the tail names: a batch moves in one commit.
 */
export const TAIL_BATCH = 400;

const EMPTY = new Uint8Array();
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Adds the name-tail entries of `records`, enqueued in one commit, which stand for their name
 * and func look-ups: one entry per {@linkcode TAIL_BATCH} tasks, keyed by the newest one's id,
 * or for a single task one at a key of its own (`keys.nameTailOne`).
 */
export function addNameTails(
  atomic: Deno.AtomicOperation,
  keys: QueueKeys,
  records: readonly TaskRecord[],
): void {
  const encode = (part: readonly TaskRecord[]) =>
    encoder.encode(JSON.stringify(part.map((r) => [r.id, r.name, r.func])));
  if (records.length === 1) {
    atomic.set(keys.nameTailOne(records[0]!.id), encode(records));
    return;
  }
  for (let i = 0; i < records.length; i += TAIL_BATCH) {
    const part = records.slice(i, i + TAIL_BATCH);
    const value = encode(part);
    const newest = part.reduce((a, r) => r.id > a ? r.id : a, part[0]!.id);
    atomic.set(keys.nameTailBatch(newest), value);
  }
}

/** A task in the name tail: its func only in a batch entry (a per-task one has its look-up). */
type TailTask = [id: string, name: string | null, func: string | null];

/** One entry of the name tail: its key, the newest id it holds, and its tasks. */
interface TailEntry {
  key: Deno.KvKey;
  newest: string;
  tasks: TailTask[];
}

/**
 * The entries of the name tail, oldest first (`reverse`: newest first), by the newest id each
 * holds (`TailEntry.newest`). A per-task entry whose value is not a name gives its id with no
 * name; a batch entry whose value can't be read gives no task (compaction drops it).
 */
async function* tailEntries(store: Store, reverse = false): AsyncGenerator<TailEntry> {
  const prefix = store.keys.nameTailPrefix;
  for await (const e of store.kv.list({ prefix }, { batchSize: reverse ? 20 : 500, reverse })) {
    const id = String(e.key[prefix.length]);
    if (e.key.length === prefix.length + 1) {
      const name = e.value instanceof Uint8Array ? decoder.decode(e.value) : null;
      yield { key: e.key, newest: id, tasks: [[id, name, null]] };
    } else yield { key: e.key, newest: id, tasks: decodeBatch(e.value) };
  }
}

/** The tasks of a batch entry's value; none when it can't be read. */
function decodeBatch(value: unknown): TailTask[] {
  if (!(value instanceof Uint8Array)) return [];
  try {
    const list = JSON.parse(decoder.decode(value));
    if (!Array.isArray(list)) return [];
    return list.flatMap((t) =>
      Array.isArray(t) && typeof t[0] === "string"
        ? [[t[0], typeof t[1] === "string" ? t[1] : null, typeof t[2] === "string" ? t[2] : null]]
        : []
    );
  } catch {
    return [];
  }
}

/** The ids of the tasks named `name`, oldest first: from the look-up, then from the tail. */
export async function idsNamed(store: Store, name: string): Promise<string[]> {
  const ids = new Set<string>();
  for await (const e of store.kv.list({ prefix: store.keys.namePrefix(name) })) {
    ids.add(String(e.key[e.key.length - 1]));
  }
  // The tail holds the names, so finding one hashes nothing.
  for await (const entry of tailEntries(store)) {
    for (const [id, named] of entry.tasks) if (named === name) ids.add(id);
  }
  return [...ids].sort();
}

/** Options for {@linkcode funcTailIds}. */
export interface FuncTailOptions {
  /**
   * Only ids below this one (a page's cursor).
   * @default no bound
   */
  before?: string | null;
  /**
   * The most ids: the newest ones.
   * @default all
   */
  limit?: number;
}

/**
 * The ids of the tasks of `func` in the tail's batch entries, newest first: enqueued tasks
 * whose func look-up compaction has not written yet. It reads the tail from its newest entry
 * and stops once no older entry can hold one of the `limit` newest, so a page after a large
 * bulk enqueue reads a few entries, not the whole tail.
 */
export async function funcTailIds(
  store: Store,
  func: string,
  options: FuncTailOptions = {},
): Promise<string[]> {
  const before = options.before ?? null;
  const limit = options.limit ?? Infinity;
  let out: string[] = [];
  for await (const entry of tailEntries(store, true)) {
    // Entries come by their newest id: once the page is full (and kept sorted, newest first),
    // one whose newest is older than the page's oldest adds nothing.
    if (out.length >= limit && entry.newest < out[limit - 1]!) break;
    for (const [id, , f] of entry.tasks) {
      if (f === func && (before === null || id < before)) out.push(id);
    }
    if (out.length >= limit) out = out.sort().reverse().slice(0, limit);
  }
  return out.sort().reverse();
}

/** The ids in the name tail, oldest first. */
export async function tailIds(store: Store): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of tailEntries(store)) {
    for (const [id] of entry.tasks) out.push(id);
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
 * Moves up to about `max` tasks of the name tail into the name look-up (a batch entry's tasks
 * into the func look-up too), oldest first (a batch entry whole), and returns how many it took
 * off the tail. A task whose record is gone, or is a
 * finished cached one (its look-up expires with it, written when it finished), is only dropped.
 * It checks nothing: a task deleted between the read and the commit may leave a look-up entry
 * that names no record, which a look-up by name skips as it skips a deleted task's.
 */
export async function compactNames(store: Store, max = TAIL_BATCH): Promise<number> {
  let moved = 0;
  while (moved < max) {
    const room = Math.min(TAIL_BATCH, max - moved);
    const entries: TailEntry[] = [];
    let taken = 0;
    let mutations = 0;
    let ended = true;
    for await (const entry of tailEntries(store)) {
      // A batch moves whole: past the room only when it is the first this call takes. The
      // commit holds the entries' deletes and up to two look-ups a task (a batch of
      // TAIL_BATCH fits one commit; 400 single-task entries do not).
      const cost = moveMutations(entry);
      const full = taken + entry.tasks.length > room || mutations + cost > COMPACT_MUTATIONS;
      if (full && (entries.length > 0 || moved > 0)) {
        ended = false;
        break;
      }
      entries.push(entry);
      taken += entry.tasks.length;
      mutations += cost;
    }
    if (entries.length === 0) break;
    const tasks = entries.flatMap((e) => e.tasks);
    const live = await liveRecords(store, tasks.map(([id]) => id));
    const atomic = store.kv.atomic();
    for (const entry of entries) atomic.delete(entry.key);
    for (const [id, , func] of tasks) {
      const r = live.get(id);
      // A damaged record keeps its look-ups too, by the name its id gives and the func the tail
      // gives: the doctor finds it so, as it did when enqueue wrote them.
      if (r === null && TaskId.isId(id)) {
        atomic.set(store.keys.name(TaskId.parse(id).name, id), EMPTY);
        if (func !== null) atomic.set(store.keys.func(func, id), EMPTY);
      } else if (r && !(r.cached !== null && r.finished)) {
        atomic.set(store.keys.name(r.name, id), EMPTY);
        if (func !== null) atomic.set(store.keys.func(r.func, id), EMPTY);
      }
    }
    await commitAtomic(atomic);
    moved += tasks.length;
    if (ended) break;
  }
  return moved;
}

/** The most mutations one compaction commit holds: KV's 1,000, less a margin. */
const COMPACT_MUTATIONS = 900;

/** The mutations that move `entry`: its delete, a name look-up a task, and a func look-up. */
function moveMutations(entry: TailEntry): number {
  return 1 + entry.tasks.reduce((n, [, , func]) => n + (func === null ? 1 : 2), 0);
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
