/**
 * The scan of a search (see `search.ts`): the records read newest first in batches, each tested
 * for the text, with progress and a time budget; and the cursors both kinds of search page give.
 *
 * @module
 */
import { TaskRecord } from "../task/record.ts";
import { readStateCounts } from "./counters.ts";
import { isUndecodable } from "./kv.ts";
import { readChunks } from "./chunks.ts";
import { readTaskRecords } from "./read_records.ts";
import { everyTaskId } from "./names.ts";
import type { SearchField, SearchOptions, SearchPage } from "./search.ts";
import type { Store } from "./store.ts";

/** Records one scan batch reads. */
const SCAN_BATCH = 500;

/** Where a scan goes on: below `after`, having read `scanned` records on the pages before. */
interface ScanCursor {
  via: "scan";
  after: string | null;
  scanned: number;
  /** Reading ids from the name look-ups (a value KV can't decode stopped a list). */
  byNames?: boolean;
}

export type Cursor = ScanCursor | { via: "lookup"; fields: SearchField[]; after: string };

export async function scanPage(
  store: Store,
  text: string,
  limit: number,
  budget: number,
  cursor: Cursor | null,
  options: SearchOptions,
): Promise<SearchPage> {
  const clock = options.clock ?? (() => performance.now());
  const started = clock();
  const from: ScanCursor = cursor?.via === "scan"
    ? cursor
    : { via: "scan", after: null, scanned: 0 };
  const total = await totalTasks(store);
  const match = matcher(text);
  const tasks: TaskRecord[] = [];
  let skipped = 0;
  let scanned = from.scanned;
  let after = from.after;
  let byNames = from.byNames === true;
  let done = false;
  const skip = (error: Error) => {
    skipped++;
    options.onSkip?.(error);
  };
  const outOfTime = () => clock() - started >= budget || options.signal?.aborted === true;
  // Through the name look-ups: the ids below `after`, newest first, read once for the page.
  let byName: string[] | null = null;
  while (tasks.length < limit && !done && !outOfTime()) {
    let batch: { id: string; record: TaskRecord | null }[];
    try {
      if (byNames) {
        byName ??= await idsBelow(store, after);
        batch = await idsBatch(store, byName.splice(0, SCAN_BATCH), skip);
      } else batch = await recordsBatch(store, after, match.quick, skip);
    } catch (error) {
      if (byNames || !isUndecodable(error)) throw error;
      byNames = true;
      options.onSkip?.(
        new Error(
          `A task record in queue ${store.queue} can't be decoded by KV; searching through the name look-ups instead, which is slower ('kvq doctor --scan' finds and sets it aside).`,
        ),
      );
      continue;
    }
    if (batch.length === 0) {
      done = true;
      break;
    }
    for (const { id, record } of batch) {
      after = id;
      scanned++;
      if (record === null) continue;
      // Args stored apart are read only for a record that matched nothing else.
      const chunked = record.args === null && record.argsChunks > 0;
      if (
        !match.full(record) && !(chunked && await inChunkedArgs(store, record, match.text, skip))
      ) continue;
      if (options.state !== undefined && record.state !== options.state) continue;
      tasks.push(record);
      options.onMatch?.(record);
      if (tasks.length === limit) break;
    }
    options.onProgress?.({ scanned, total, matched: tasks.length, elapsedMs: clock() - started });
  }
  const next: ScanCursor = { via: "scan", after, scanned, ...(byNames ? { byNames } : {}) };
  return {
    tasks,
    cursor: done ? null : encodeCursor(next),
    via: "scan",
    fields: [],
    scanned,
    total,
    skipped,
    outOfTime: !done && tasks.length < limit,
  };
}

/**
 * The next batch of records below `after`, newest first, by listing them. A record whose raw
 * text can't hold the needle is not decoded (`quick`); one that can't be decoded is skipped.
 */
async function recordsBatch(
  store: Store,
  after: string | null,
  quick: ((raw: string) => boolean) | null,
  skip: (error: Error) => void,
): Promise<{ id: string; record: TaskRecord | null }[]> {
  const prefix = store.keys.tasks;
  const selector = after === null ? { prefix } : { prefix, end: store.keys.task(after) };
  const out: { id: string; record: TaskRecord | null }[] = [];
  const iter = store.kv.list(selector, {
    limit: SCAN_BATCH,
    reverse: true,
    batchSize: SCAN_BATCH,
    consistency: "eventual",
  });
  // Reported once the whole batch was read: a list that stops part-way is read again.
  const skipped: Error[] = [];
  for await (const e of iter) {
    const id = String(e.key[e.key.length - 1]);
    if (quick !== null && e.value instanceof Uint8Array) {
      const raw = decoder.decode(e.value);
      // Large args are stored apart (see `chunks.ts`): such a record is decoded to read them.
      if (!quick(raw) && !raw.includes(CHUNKED_ARGS)) {
        out.push({ id, record: null });
        continue;
      }
    }
    try {
      out.push({ id, record: TaskRecord.decode(e.key, e.value) });
    } catch (error) {
      skipped.push(error as Error);
      out.push({ id, record: null });
    }
  }
  skipped.forEach(skip);
  return out;
}

/**
 * Every task id below `after`, newest first, from the name look-ups (whose values KV wrote
 * itself, so nothing stops the list).
 */
async function idsBelow(store: Store, after: string | null): Promise<string[]> {
  const ids: string[] = [];
  for await (const id of everyTaskId(store)) if (after === null || id < after) ids.push(id);
  return ids.sort().reverse();
}

/** The records of a batch of `ids`, read key by key; those missing or damaged as null. */
async function idsBatch(
  store: Store,
  ids: string[],
  skip: (error: Error) => void,
): Promise<{ id: string; record: TaskRecord | null }[]> {
  const records = new Map((await readTaskRecords(store, ids, skip)).map((r) => [r.id, r]));
  return ids.map((id) => ({ id, record: records.get(id) ?? null }));
}

const decoder = new TextDecoder();

/** What the stored text of a record whose args are stored in chunks holds. */
const CHUNKED_ARGS = '"argsChunks":';

/**
 * Whether the args of `record`, stored in chunks (over the inline size), hold the text. Chunks
 * that can't be read are reported through `skip`, and the record does not match.
 */
async function inChunkedArgs(
  store: Store,
  record: TaskRecord,
  text: (s: string) => boolean,
  skip: (error: Error) => void,
): Promise<boolean> {
  try {
    return text(decoder.decode(await readChunks(store, record.id, "args", record.argsChunks)));
  } catch (error) {
    skip(error as Error);
    return false;
  }
}

/**
 * How a scan tests records for `text`, ignoring case. `quick` rules a record out from its raw
 * JSON text without decoding it, when the needle is plain printable ASCII with no quote or
 * backslash (those are written escaped in JSON, so the raw text would not show them as typed).
 */
export function matcher(text: string): {
  quick: ((raw: string) => boolean) | null;
  full: (record: TaskRecord) => boolean;
  text: (s: string) => boolean;
} {
  const needle = text.toLowerCase();
  const plain = /^[\x20-\x7e]*$/.test(needle) && !/["\\]/.test(needle);
  const has = (s: string) => s.toLowerCase().includes(needle);
  return {
    quick: plain ? has : null,
    full: (r) => searchableText(r).some(has),
    text: has,
  };
}

/**
 * The fields a scan looks in: id, human name, func, group, partition, args, errors (and args
 * stored in chunks, read apart: see `inChunkedArgs`).
 */
export function searchableText(r: TaskRecord): string[] {
  const out = [r.id, r.name, r.func];
  if (r.group !== null) out.push(r.group);
  if (r.partition !== null) out.push(r.partition);
  if (r.args !== null) out.push(JSON.stringify(r.args));
  // Each a field of its own, as in the stored text (see `matcher`).
  for (const e of [r.error, ...r.errors]) if (e) out.push(e.name, e.message);
  return out;
}

export async function totalTasks(store: Store): Promise<number> {
  const counts = await readStateCounts(store);
  return Object.values(counts).reduce((n, c) => n + c, 0);
}

// ── cursors ─────────────────────────────────────────────────────────────────────────────────

export function encodeCursor(cursor: Cursor): string {
  return btoa(JSON.stringify(cursor)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

export function decodeCursor(text: string): Cursor {
  const bad = () =>
    new RangeError(
      `That search cursor is not one kvq gave: start the search again without it (received ${
        JSON.stringify(text.slice(0, 40))
      })`,
    );
  let c: unknown;
  try {
    c = JSON.parse(atob(text.replaceAll("-", "+").replaceAll("_", "/")));
  } catch {
    throw bad();
  }
  const v = c as Partial<ScanCursor> & { fields?: unknown };
  if (v?.via === "scan") {
    if ((v.after === null || typeof v.after === "string") && Number.isSafeInteger(v.scanned)) {
      return {
        via: "scan",
        after: v.after,
        scanned: v.scanned!,
        ...(v.byNames ? { byNames: true } : {}),
      };
    }
  } else if (v?.via === "lookup" && typeof v.after === "string" && Array.isArray(v.fields)) {
    const fields = v.fields.filter((f): f is SearchField =>
      f === "id" || f === "name" || f === "func" || f === "group"
    );
    if (fields.length > 0) return { via: "lookup", fields, after: v.after };
  }
  throw bad();
}
