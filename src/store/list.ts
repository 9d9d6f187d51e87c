/**
 * List: tasks by state (through that state's index), by func or group (their look-ups), or all,
 * newest first, paged by KV cursor so a page costs the same however many tasks are stored. A
 * record that can't be decoded is reported through `onCorrupt` and skipped.
 *
 * Listing uses eventual consistency where KV offers it: it decides nothing.
 *
 * @module
 */
import type { TaskRecord } from "../task/record.ts";
import type { TaskState } from "./keys.ts";
import type { Store } from "./store.ts";
import { isUndecodable } from "./kv.ts";
import { listLeases } from "./leases.ts";
import { everyTaskId, funcTailIds } from "./names.ts";
import { readTaskRecords } from "./read_records.ts";
import { listDone } from "./list_done.ts";

/** Options for {@linkcode listTasks}. */
export interface ListOptions {
  /**
   * Only tasks in this state.
   * @default every state
   */
  state?: TaskState;
  /**
   * Only tasks of this group.
   * @default every group
   */
  group?: string;
  /**
   * Only tasks of this function.
   * @default every function
   */
  func?: string;
  /**
   * Only tasks enqueued at or after this time (epoch ms).
   * @default no bound
   */
  since?: number;
  /**
   * The most tasks in one page.
   * @default 50
   */
  limit?: number;
  /**
   * Where the previous page ended.
   * @default the first page
   */
  cursor?: string;
  /** Called with each record that can't be decoded; it is skipped. */
  onCorrupt?: (error: Error) => void;
}

/** One page of tasks. */
export interface TaskPage {
  /** The tasks, newest first (queued: next to run first). */
  tasks: TaskRecord[];
  /** Pass it back for the next page; null on the last page. */
  cursor: string | null;
}

/** Lists one page of tasks. */
export async function listTasks(store: Store, options: ListOptions = {}): Promise<TaskPage> {
  const everything = options.group === undefined && options.state === undefined;
  if (everything && options.cursor?.startsWith(BY_NAME)) return await listByNames(store, options);
  try {
    return await listPage(store, options);
  } catch (error) {
    // A list of the records stops at a value KV can't decode: go through the name look-ups.
    if (!everything || !isUndecodable(error)) throw error;
    options.onCorrupt?.(
      new Error(
        `A task record in queue ${store.queue} can't be decoded by KV; listing through the name look-ups instead ('kvq doctor --scan' finds and sets it aside).`,
      ),
    );
    return await listByNames(store, options);
  }
}

/** Cursors of {@linkcode listByNames}: the last id shown. */
const BY_NAME = "id:";

/**
 * All tasks, newest first, from the ids of the name look-ups (whose values are empty, so no
 * damaged value stops the list). Reads every look-up: the slow path, for a store with a value KV
 * can't decode.
 */
async function listByNames(store: Store, options: ListOptions): Promise<TaskPage> {
  const ids = await Array.fromAsync(everyTaskId(store));
  return await pageOfIds(store, ids, options, BY_NAME);
}

/** Cursors of the running list: the last id shown. */
const RUNNING = "running:";

/**
 * The running tasks, newest first: those the claim entries name whose record still runs. There
 * are at most as many as the clusters' places, so it reads them all.
 */
async function listRunning(store: Store, options: ListOptions): Promise<TaskPage> {
  const { leases } = await listLeases(store);
  return await pageOfIds(store, leases.map((l) => l.id), options, RUNNING, "running");
}

/** One page of the records of `ids`, newest first, after the id in a cursor of `mark`. */
async function pageOfIds(
  store: Store,
  ids: string[],
  options: ListOptions,
  mark: string,
  state?: TaskState,
): Promise<TaskPage> {
  const limit = options.limit ?? 50;
  ids.sort().reverse();
  const after = options.cursor?.startsWith(mark) ? options.cursor.slice(mark.length) : null;
  const from = after === null ? 0 : ids.findIndex((id) => id < after);
  const tasks: TaskRecord[] = [];
  let at = from < 0 ? ids.length : from;
  while (at < ids.length && tasks.length < limit) {
    const page = ids.slice(at, at + (limit - tasks.length));
    at += page.length;
    for (const record of await readTaskRecords(store, page, options.onCorrupt)) {
      if (state !== undefined && record.state !== state) continue;
      if (options.func !== undefined && record.func !== options.func) continue;
      if (options.since !== undefined && record.enqueuedAt < options.since) continue;
      tasks.push(record);
    }
  }
  return { tasks, cursor: at < ids.length ? `${mark}${ids[at - 1]}` : null };
}

async function listPage(store: Store, options: ListOptions): Promise<TaskPage> {
  const limit = options.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw new RangeError(`limit must be an integer from 1 to 1000: received ${limit}`);
  }
  const k = store.keys;
  const { state } = options;
  let selector: Deno.KvListSelector;
  let reverse = true;
  if (options.group !== undefined) selector = { prefix: k.groupPrefix(options.group) };
  else if (options.func !== undefined && state !== "running") {
    return await listByFunc(store, options.func, limit, options);
  } else if (state === "queued") {
    selector = { prefix: k.readyPrefix };
    reverse = false;
  } else if (state === "scheduled") {
    selector = { prefix: k.delayedPrefix };
    reverse = false;
  } else if (state === "running") return await listRunning(store, options);
  else if (state !== undefined) return await listDone(store, state, limit, options);
  else selector = { prefix: k.tasks };
  // A group's look-up lists only the group's tasks.
  const filtered = options.func !== undefined || options.since !== undefined ||
    (options.group !== undefined && state !== undefined);
  const tasks: TaskRecord[] = [];
  let cursor: string | null = options.cursor ?? null;
  // Filters may drop entries: read on until the page is full or the index ends.
  for (let round = 0; round < 20 && tasks.length < limit; round++) {
    const want = filtered ? Math.max(limit * 2, 100) : limit - tasks.length;
    const iter = store.kv.list(selector, {
      limit: want,
      reverse,
      consistency: "eventual",
      ...(cursor ? { cursor } : {}),
    });
    const ids: string[] = [];
    for await (const e of iter) ids.push(e.key[e.key.length - 1] as string);
    // A read that came back short reached the end of the index. (Deno then gives no cursor;
    // `@deno/kv` on Bun gives one anyway.)
    cursor = ids.length < want ? null : iter.cursor || null;
    for (const record of await readTaskRecords(store, ids, options.onCorrupt)) {
      if (state !== undefined && record.state !== state) continue;
      if (options.func !== undefined && record.func !== options.func) continue;
      if (options.since !== undefined && record.enqueuedAt < options.since) continue;
      if (tasks.length < limit) tasks.push(record);
    }
    if (cursor === null || !filtered) break;
  }
  return { tasks, cursor };
}

/** Cursors of {@linkcode listByFunc}: the last id read. */
const BY_FUNC = "func:";

/**
 * The tasks of `func`, newest first, paged by id: from its look-up, and from the name tail's
 * batch entries for bulk-enqueued tasks whose look-up is not written yet (see `names.ts`).
 */
async function listByFunc(
  store: Store,
  func: string,
  limit: number,
  options: ListOptions,
): Promise<TaskPage> {
  if (options.cursor !== undefined && !options.cursor.startsWith(BY_FUNC)) {
    throw new RangeError(
      `A list by func continues from the cursor its previous page gave ("${BY_FUNC}…"): received ${
        JSON.stringify(options.cursor)
      }; list again without the cursor`,
    );
  }
  let after = options.cursor?.slice(BY_FUNC.length) ?? null;
  const prefix = store.keys.funcPrefix(func);
  const filtered = options.state !== undefined || options.since !== undefined;
  const tasks: TaskRecord[] = [];
  // Filters may drop entries: read on until the page is full or both sources end.
  for (let round = 0; round < 20 && tasks.length < limit; round++) {
    const want = filtered ? Math.max(limit * 2, 100) : limit - tasks.length;
    const tail = await funcTailIds(store, func, { before: after, limit: want });
    const ids = new Set(tail);
    let listed = 0;
    for await (
      const e of store.kv.list(after === null ? { prefix } : { prefix, end: [...prefix, after] }, {
        limit: want,
        reverse: true,
        consistency: "eventual",
      })
    ) {
      ids.add(String(e.key[e.key.length - 1]));
      listed++;
    }
    const page = [...ids].sort().reverse().slice(0, want);
    if (page.length === 0) return { tasks, cursor: null };
    // Read the page's records in order, stopping where the page of tasks fills.
    const records = new Map(
      (await readTaskRecords(store, page, options.onCorrupt)).map((r) => [r.id, r]),
    );
    for (const id of page) {
      if (tasks.length >= limit) return { tasks, cursor: `${BY_FUNC}${after}` };
      after = id;
      const record = records.get(id);
      if (record === undefined || record.func !== func) continue;
      if (options.state !== undefined && record.state !== options.state) continue;
      if (options.since !== undefined && record.enqueuedAt < options.since) continue;
      tasks.push(record);
    }
    const more = listed === want || ids.size > page.length || tail.length === want;
    if (!more) return { tasks, cursor: null };
  }
  return { tasks, cursor: `${BY_FUNC}${after}` };
}
