/**
 * Retention: delete the oldest finished tasks past a count or an age (Django Q's `save_limit`
 * and `save_limit_per`). It reads counters and the oldest entries of the `done` indexes, never
 * scans records, and deletes only finished tasks, each delete checked against the versionstamp
 * of the record it read, so it never races a task that runs or was retried meanwhile.
 *
 * @module
 */
import { TaskRecord } from "../task/record.ts";
import { deleteRecords, type ReadRecord } from "./delete_many.ts";
import { commitAtomic } from "./commit.ts";
import { readStateCounts } from "./counters.ts";
import type { TaskState } from "./keys.ts";
import { KV_MAX_GET_MANY } from "./limits.ts";
import type { Store } from "./store.ts";
import { decodeDone, type DoneValue } from "./finish.ts";

/** How many finished tasks of one kind to keep. */
export interface Retention {
  /**
   * Keep at most this many (the newest); with `per`, this many per func or group.
   * @default no limit
   */
  count?: number;
  /**
   * Keep none older than this many milliseconds (by stop time).
   * @default no limit
   */
  ttl?: number;
  /**
   * A task past the count is kept until it has been finished this many milliseconds, so
   * whoever awaits its result can still read it on a busy queue.
   * @default 60000
   */
  minAge?: number;
}

/** The default {@linkcode Retention.minAge}. */
export const DEFAULT_MIN_AGE_MS = 60_000;

/** Retention settings of a queue. */
export interface RetentionOptions {
  /**
   * Succeeded tasks to keep.
   * @default { count: 250 } (Django Q's save_limit), each kept at least a minute
   */
  keepSucceeded?: Retention;
  /**
   * Failed and cancelled tasks to keep (each state on its own).
   * @default all
   */
  keepFailed?: Retention;
  /**
   * Apply the counts per func or per group (Django Q's `save_limit_per`); tasks without a
   * group are then not pruned by count.
   * @default one count for the whole queue
   */
  keepPer?: "func" | "group";
}

/** Django Q's default: keep the 250 newest successes. */
export const DEFAULT_KEEP_SUCCEEDED: Retention = Object.freeze({ count: 250 });

/** Django Q's default: keep every failure. */
export const DEFAULT_KEEP_FAILED: Retention = Object.freeze({});

/** The most tasks one prune pass deletes, so a heartbeat stays cheap. */
const MAX_PER_PASS = 1_000;

/**
 * Validates retention options.
 *
 * @throws {RangeError | TypeError} naming the bad field.
 */
export function validateRetention(options: RetentionOptions):
  & Required<
    Omit<RetentionOptions, "keepPer">
  >
  & { keepPer: "func" | "group" | null } {
  const one = (name: string, r: Retention | undefined, fallback: Retention): Retention => {
    if (r === undefined) return fallback;
    if (typeof r !== "object" || r === null) {
      throw new TypeError(`${name} must be { count?, ttl? }: received ${JSON.stringify(r)}`);
    }
    for (const f of ["count", "ttl", "minAge"] as const) {
      const v = r[f];
      if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) {
        throw new RangeError(`${name}.${f} must be an integer >= 0: received ${JSON.stringify(v)}`);
      }
    }
    return r;
  };
  if (
    options.keepPer !== undefined && options.keepPer !== "func" && options.keepPer !== "group"
  ) {
    throw new TypeError(
      `keepPer must be "func" or "group": received ${JSON.stringify(options.keepPer)}`,
    );
  }
  return {
    keepSucceeded: one("keepSucceeded", options.keepSucceeded, DEFAULT_KEEP_SUCCEEDED),
    keepFailed: one("keepFailed", options.keepFailed, DEFAULT_KEEP_FAILED),
    keepPer: options.keepPer ?? null,
  };
}

/**
 * Deletes finished tasks past the retention limits. Returns how many it deleted (at most
 * {@linkcode MAX_PER_PASS} per call; the next call goes on).
 */
export async function pruneFinished(store: Store, options: RetentionOptions = {}): Promise<number> {
  const r = validateRetention(options);
  const now = store.now();
  const rules: [TaskState, Retention][] = [
    ["succeeded", r.keepSucceeded],
    ["failed", r.keepFailed],
    ["cancelled", r.keepFailed],
  ];
  const candidates: Deno.KvKey[] = [];
  const budget = () => MAX_PER_PASS - candidates.length;
  const counts = rules.some(([, k]) => k.count !== undefined) && r.keepPer === null
    ? await readStateCounts(store)
    : null;
  for (const [state, keep] of rules) {
    if (keep.ttl !== undefined && budget() > 0) {
      for await (
        const e of store.kv.list({
          start: store.keys.doneState(state),
          end: [...store.keys.doneState(state), now - keep.ttl],
        }, { limit: budget() })
      ) candidates.push(e.key);
    }
    if (keep.count === undefined) continue;
    const youngest = now - (keep.minAge ?? DEFAULT_MIN_AGE_MS);
    if (r.keepPer === null) {
      const excess = counts![state] - keep.count;
      if (excess <= 0 || budget() <= 0) continue;
      for await (
        const e of store.kv.list({
          start: store.keys.doneState(state),
          end: [...store.keys.doneState(state), youngest],
        }, { limit: Math.min(excess, budget()) })
      ) candidates.push(e.key);
      continue;
    }
    // Per func or group: the counters say which values are over their count; the oldest
    // `done` entries name their func and group.
    const excess = new Map<string, number>();
    for await (
      const e of store.kv.list<Deno.KvU64>({ prefix: store.keys.stat("done_by", r.keepPer) })
    ) {
      if (e.key[e.key.length - 1] !== state) continue;
      const raw = e.value?.value ?? 0n;
      const n = (raw > (1n << 63n) ? 0 : Number(raw)) - keep.count;
      if (n > 0) excess.set(e.key[e.key.length - 2] as string, n);
    }
    if (excess.size > 0 && budget() > 0) {
      candidates.push(...await oldestPer(store, state, r.keepPer, excess, youngest, budget()));
    }
  }
  return await deleteFinished(store, candidates);
}

/** The most `done` entries one pass reads to find the oldest of funcs or groups over count. */
const MAX_SCANNED = 10_000;

/**
 * The `done` keys of the oldest finished tasks of state `state` (stopped before `before`) of
 * each func or group in `excess`, up to its excess and `limit` in all. An entry whose value
 * names nothing (written by layout 1) is looked up in its record.
 */
async function oldestPer(
  store: Store,
  state: TaskState,
  per: "func" | "group",
  excess: Map<string, number>,
  before: number,
  limit: number,
): Promise<Deno.KvKey[]> {
  const out: Deno.KvKey[] = [];
  const prefix = store.keys.doneState(state);
  let unknown: Deno.KvEntry<unknown>[] = [];
  let wanted = Math.min(limit, [...excess.values()].reduce((a, b) => a + b, 0));
  const take = (key: Deno.KvKey, value: DoneValue) => {
    const v = per === "func" ? value.func : value.group;
    const n = v === null ? 0 : excess.get(v) ?? 0;
    if (n <= 0 || wanted <= 0) return;
    excess.set(v!, n - 1);
    wanted--;
    out.push(key);
  };
  const resolve = async () => {
    const records = await store.kv.getMany(
      unknown.map((e) => store.keys.task(e.key[e.key.length - 1] as string)),
    );
    records.forEach((r, i) => {
      if (r.versionstamp === null) return;
      try {
        const record = TaskRecord.decode(r.key, r.value);
        take(unknown[i]!.key, { func: record.func, group: record.group });
      } catch {
        // a damaged record is for 'kvq doctor', not for retention
      }
    });
    unknown = [];
  };
  for await (
    const e of store.kv.list({ start: prefix, end: [...prefix, before] }, { limit: MAX_SCANNED })
  ) {
    const value = decodeDone(e.value);
    if (value === null) unknown.push(e);
    else take(e.key, value);
    if (unknown.length === KV_MAX_GET_MANY) await resolve();
    if (wanted <= 0) break;
  }
  if (unknown.length > 0) await resolve();
  return out;
}

/** Deletes the finished tasks that `indexKeys` (`done` entries) point at. */
async function deleteFinished(store: Store, indexKeys: Deno.KvKey[]): Promise<number> {
  const ids = [...new Set(indexKeys.map((k) => k[k.length - 1] as string))];
  const byId = new Map<string, Deno.KvKey[]>();
  for (const key of indexKeys) {
    const id = key[key.length - 1] as string;
    byId.set(id, [...byId.get(id) ?? [], key]);
  }
  let deleted = 0;
  const found: ReadRecord[] = [];
  const orphans: Deno.KvKey[] = [];
  for (let j = 0; j < ids.length; j += KV_MAX_GET_MANY) {
    const slice = ids.slice(j, j + KV_MAX_GET_MANY);
    const entries = await store.kv.getMany(slice.map((id) => store.keys.task(id)), {
      consistency: "strong",
    });
    entries.forEach((e, n) => {
      if (e.versionstamp === null) {
        orphans.push(...byId.get(slice[n]!) ?? []);
        return;
      }
      try {
        const record = TaskRecord.decode(e.key, e.value);
        // Only finished tasks: one retried since its index entry was read is left alone.
        if (record.finished) found.push({ record, versionstamp: e.versionstamp });
      } catch {
        // a damaged record is for 'kvq delete', not for retention
      }
    });
  }
  deleted += (await deleteRecords(store, found)).length;
  for (let i = 0; i < orphans.length; i += 200) {
    const atomic = store.kv.atomic();
    for (const key of orphans.slice(i, i + 200)) atomic.delete(key);
    await commitAtomic(atomic);
  }
  return deleted;
}
