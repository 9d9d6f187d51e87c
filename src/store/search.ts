/**
 * Search across every task of a queue, newest first, in two ways:
 *
 * - **Look-ups.** Text that is exactly a task id, a human name, a func or a group is answered
 *   from the record or the `name`, `func` and `group` look-ups (empty entries whose keys end in
 *   the time-ordered id): a page costs a few reads however many tasks are stored.
 * - **Scan.** Any other text is looked for, literally and ignoring case, in each task's id,
 *   human name, func, group, partition, arguments (their JSON text) and errors. The scan reads
 *   the records newest first in batches, reports each match and its progress as it goes, and
 *   stops when the page is full or its time budget is spent, with a cursor to go on from. It
 *   only reads (eventual consistency, one short query per batch), so it never holds up a
 *   cluster's commits.
 *
 * A record that can't be decoded is skipped and reported through `onSkip`. A value KV itself
 * can't decode stops a `list`: the scan then reads the ids from the name look-ups and the
 * records key by key (slower, and it says so).
 *
 * @module
 */
import type { TaskRecord } from "../task/record.ts";
import { TaskId } from "../task/task_id.ts";
import { FUNC_NAME } from "./spec_options.ts";
import type { TaskState } from "./keys.ts";
import { readTaskRecords } from "./read_records.ts";
import { funcTailIds, idsNamed } from "./names.ts";
import { decodeCursor, encodeCursor, scanPage, totalTasks } from "./search_scan.ts";
import type { Store } from "./store.ts";

/** The longest search text, in characters. */
export const MAX_SEARCH_CHARS = 1000;

/** How long one scan reads before it answers with a cursor, unless told, in ms. */
export const DEFAULT_SEARCH_BUDGET_MS = 5000;

/** Options for {@linkcode searchTasks}. */
export interface SearchOptions {
  /** The most tasks in one page (1–1000). @default 50 */
  limit?: number;
  /** Where the previous page ended (its `cursor`). @default the newest task */
  cursor?: string;
  /** Only tasks in this state. @default every state */
  state?: TaskState;
  /** Scan the text in every field even when it names an id, name, func or group. @default false */
  scan?: boolean;
  /** How long a scan may read before it answers with a cursor, in ms. */
  budgetMs?: number;
  /** Called with each match as it is found, before the page is complete. */
  onMatch?: (record: TaskRecord) => void;
  /** Called after each batch a scan reads. */
  onProgress?: (progress: SearchProgress) => void;
  /** Called with each record that can't be decoded (or a change of read path); it is skipped. */
  onSkip?: (error: Error) => void;
  /** Stops the scan (the page so far is returned, with a cursor). */
  signal?: AbortSignal;
  /** The clock, for the budget. @default performance.now */
  clock?: () => number;
}

/** How far a scan has got. */
export interface SearchProgress {
  /** Records read so far, by this page and the pages before it. */
  scanned: number;
  /** Tasks in the queue, from its state counters (an estimate while tasks come and go). */
  total: number;
  /** Matches on this page so far. */
  matched: number;
  /** Time this page has taken, in ms. */
  elapsedMs: number;
}

/** Which look-ups a text was found in. */
export type SearchField = "id" | "name" | "func" | "group";

/** One page of search results. */
export interface SearchPage {
  /** The matches, newest first. */
  tasks: TaskRecord[];
  /** Pass it back for the next page; null when nothing is left to read. */
  cursor: string | null;
  /** `lookup`: answered from the look-ups named in `fields`; `scan`: by reading records. */
  via: "lookup" | "scan";
  /** The look-ups the text was found in (empty for a scan). */
  fields: SearchField[];
  /** Records read by the scan so far, this page and the ones before (0 for a look-up). */
  scanned: number;
  /** Tasks in the queue, from its state counters. */
  total: number;
  /** Records skipped because they could not be decoded. */
  skipped: number;
  /** Whether the scan stopped for its time budget (or `signal`) before the page was full. */
  outOfTime: boolean;
}

/**
 * Searches the tasks of `store` for `text` (see the module doc).
 *
 * @throws {RangeError} for empty text, text over {@linkcode MAX_SEARCH_CHARS} characters, a bad
 *   limit or budget, or a cursor this function did not give.
 */
export async function searchTasks(
  store: Store,
  text: string,
  options: SearchOptions = {},
): Promise<SearchPage> {
  const needle = checkText(text);
  const limit = options.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw new RangeError(`limit must be an integer from 1 to 1000: received ${limit}`);
  }
  const budget = options.budgetMs ?? DEFAULT_SEARCH_BUDGET_MS;
  if (!(budget > 0)) throw new RangeError(`budgetMs must be above 0: received ${budget}`);
  const cursor = options.cursor === undefined ? null : decodeCursor(options.cursor);
  // The ids a human name holds are read once (the name tail may be long, see `names.ts`), and
  // only where a page of look-ups may use them.
  const byName = cursor === null
    ? !options.scan
    : cursor.via === "lookup" && cursor.fields.includes("name");
  const named = byName && TaskId.isHumanName(needle) ? await idsNamed(store, needle) : [];
  const fields = cursor?.via === "lookup"
    ? cursor.fields
    : cursor === null && !options.scan
    ? await lookupFields(store, needle, named)
    : [];
  if (fields.length > 0) {
    return await lookupPage(store, needle, fields, named, limit, cursor?.after ?? null, options);
  }
  return await scanPage(store, needle, limit, budget, cursor, options);
}

/** Checks the search text: 1 to {@linkcode MAX_SEARCH_CHARS} characters, taken literally. */
export function checkText(text: string): string {
  if (typeof text !== "string" || text.trim() === "") {
    throw new RangeError("The search text is empty: give the text to look for");
  }
  if (text.length > MAX_SEARCH_CHARS) {
    throw new RangeError(
      `The search text is at most ${MAX_SEARCH_CHARS} characters: received ${text.length}`,
    );
  }
  return text.trim();
}

// ── look-ups ────────────────────────────────────────────────────────────────────────────────

/** The look-ups that hold `text` exactly: each is probed with one short read. */
async function lookupFields(
  store: Store,
  text: string,
  named: readonly string[],
): Promise<SearchField[]> {
  const k = store.keys;
  const probes: [SearchField, Deno.KvKey | null][] = [
    ["func", FUNC_NAME.test(text) ? k.funcPrefix(text) : null],
    ["group", text.length <= 256 ? k.groupPrefix(text) : null],
  ];
  const found: SearchField[] = [];
  if (TaskId.isId(text)) {
    const entry = await store.kv.get(k.task(text.toLowerCase()), { consistency: "eventual" });
    if (entry.versionstamp !== null) found.push("id");
  }
  if (named.length > 0) found.push("name");
  const hits = await Promise.all(probes.map(async ([field, prefix]) => {
    if (prefix === null) return false;
    for await (const _ of store.kv.list({ prefix }, { limit: 1, consistency: "eventual" })) {
      return true;
    }
    // A func's bulk-enqueued tasks may all be in the name tail still (see `names.ts`).
    return field === "func" && (await funcTailIds(store, text, { limit: 1 })).length > 0;
  }));
  probes.forEach(([field], i) => hits[i] && found.push(field));
  return found;
}

/** The look-up prefix of `field` (func or group) for `text`. */
function lookupPrefix(store: Store, field: SearchField, text: string): Deno.KvKey {
  return field === "func" ? store.keys.funcPrefix(text) : store.keys.groupPrefix(text);
}

/** One page from the look-ups: their ids below `after`, merged newest first. */
async function lookupPage(
  store: Store,
  text: string,
  fields: SearchField[],
  named: readonly string[],
  limit: number,
  after: string | null,
  options: SearchOptions,
): Promise<SearchPage> {
  const tasks: TaskRecord[] = [];
  let skipped = 0;
  let last = after;
  let more = true;
  // An id or a human name holds one task or a few: their ids are known at once.
  const known = [
    ...(fields.includes("id") ? [text.toLowerCase()] : []),
    ...(fields.includes("name") ? named : []),
  ];
  // A state filter may drop entries: read on until the page is full or the look-ups end.
  for (let round = 0; round < 20 && tasks.length < limit && more; round++) {
    const want = options.state === undefined ? limit - tasks.length : Math.max(limit * 2, 100);
    const ids = new Set(known.filter((id) => last === null || id < last));
    more = false;
    await Promise.all(
      fields.filter((f) => f === "func" || f === "group").map(async (field) => {
        const prefix = lookupPrefix(store, field, text);
        const selector = last === null ? { prefix } : { prefix, end: [...prefix, last] };
        let n = 0;
        for await (
          const e of store.kv.list(selector, {
            limit: want,
            reverse: true,
            consistency: "eventual",
          })
        ) {
          ids.add(String(e.key[e.key.length - 1]));
          n++;
        }
        if (n === want) more = true;
      }),
    );
    // A func's bulk-enqueued tasks whose look-up is not written yet: the newest below the page.
    if (fields.includes("func")) {
      const tail = await funcTailIds(store, text, { before: last, limit: want });
      for (const id of tail) ids.add(id);
      if (tail.length === want) more = true;
    }
    // Newest first across the look-ups; ids past the page are read again next time.
    const page = [...ids].sort().reverse().slice(0, want);
    if (page.length < ids.size) more = true;
    if (page.length === 0) break;
    last = page[page.length - 1]!;
    for (const r of await readTaskRecords(store, page, (e) => (skipped++, options.onSkip?.(e)))) {
      if (options.state !== undefined && r.state !== options.state) continue;
      if (tasks.length >= limit) {
        // Read but not shown: the next page starts just before this one.
        more = true;
        last = tasks[tasks.length - 1]!.id;
        break;
      }
      tasks.push(r);
      options.onMatch?.(r);
    }
  }
  return {
    tasks,
    cursor: more && last !== null ? encodeCursor({ via: "lookup", fields, after: last }) : null,
    via: "lookup",
    fields,
    scanned: 0,
    total: await totalTasks(store),
    skipped,
    outOfTime: false,
  };
}
