/**
 * Retention: delete the oldest finished tasks past a count or an age (Django Q's `save_limit`
 * and `save_limit_per`). It reads counters and the oldest entries of the `done` indexes, never
 * scans records, and deletes only finished tasks, each delete checked against the versionstamp
 * of the record it read, so it never races a task that runs or was retried meanwhile.
 *
 * @module
 */
import { TaskRecord } from "../task/record.ts";
import { readStateCounts } from "./counters.ts";
import type { TaskState } from "./keys.ts";
import { KV_MAX_GET_MANY } from "./limits.ts";
import type { Store } from "./store.ts";
import {
  deleteDoneMembers,
  type DoneEntry,
  type DoneMember,
  type DonePick,
  type DoneValue,
  readDoneEntry,
} from "./done_index.ts";

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
  let picked = 0;
  const budget = () => MAX_PER_PASS - picked;
  const counts = rules.some(([, k]) => k.count !== undefined) && r.keepPer === null
    ? await readStateCounts(store)
    : null;
  let deleted = 0;
  for (const [state, keep] of rules) {
    const picks = new Picks();
    const prefix = store.keys.doneState(state);
    // The oldest tasks of the state that stopped before `before`, up to `n`.
    const oldest = async (before: number, n: number) => {
      let left = Math.min(n, budget());
      if (left <= 0) return;
      for await (
        const e of store.kv.list({ start: prefix, end: [...prefix, before] }, { limit: left })
      ) {
        const entry = readDoneEntry(e);
        const taken = entry.members.slice(0, left);
        left -= taken.length;
        // Both rules take from the oldest: a task the ttl took counts for the count too.
        picked += picks.add(entry, taken);
        if (left <= 0) break;
      }
    };
    if (keep.ttl !== undefined) await oldest(now - keep.ttl, Infinity);
    if (keep.count !== undefined) {
      const youngest = now - (keep.minAge ?? DEFAULT_MIN_AGE_MS);
      if (r.keepPer === null) {
        await oldest(youngest, counts![state] - keep.count);
      } else {
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
          picked += await oldestPer(store, state, r.keepPer, excess, youngest, budget(), picks);
        }
      }
    }
    if (picks.size > 0) deleted += (await deleteDoneMembers(store, state, picks.list())).deleted;
  }
  return deleted;
}

/** The tasks picked from each `done` entry, each once. */
class Picks {
  readonly #byEntry = new Map<string, { entry: DoneEntry; members: Map<string, DoneMember> }>();
  #size = 0;

  /** The tasks picked. */
  get size(): number {
    return this.#size;
  }

  /** Picks `members` of `entry`; returns how many were new. */
  add(entry: DoneEntry, members: readonly DoneMember[]): number {
    const key = JSON.stringify(entry.key);
    let at = this.#byEntry.get(key);
    if (!at) this.#byEntry.set(key, at = { entry, members: new Map() });
    let added = 0;
    for (const m of members) {
      if (at.members.has(m.id)) continue;
      at.members.set(m.id, m);
      added++;
    }
    this.#size += added;
    return added;
  }

  list(): DonePick[] {
    return [...this.#byEntry.values()].map((p) => ({
      entry: p.entry,
      members: [...p.members.values()],
    }));
  }
}

/** The most `done` entries one pass reads to find the oldest of funcs or groups over count. */
const MAX_SCANNED = 10_000;

/**
 * Picks the oldest finished tasks of state `state` (stopped before `before`) of each func or
 * group in `excess`, up to its excess and `limit` in all; returns how many. A task whose entry
 * names no func (written by layout 1) is looked up in its record.
 */
async function oldestPer(
  store: Store,
  state: TaskState,
  per: "func" | "group",
  excess: Map<string, number>,
  before: number,
  limit: number,
  picks: Picks,
): Promise<number> {
  const prefix = store.keys.doneState(state);
  let unknown: { entry: DoneEntry; member: DoneMember }[] = [];
  let wanted = Math.min(limit, [...excess.values()].reduce((a, b) => a + b, 0));
  let taken = 0;
  const take = (entry: DoneEntry, member: DoneMember, value: DoneValue) => {
    const v = per === "func" ? value.func : value.group;
    const n = v === null ? 0 : excess.get(v) ?? 0;
    if (n <= 0 || wanted <= 0) return;
    excess.set(v!, n - 1);
    wanted--;
    taken += picks.add(entry, [member]);
  };
  const resolve = async () => {
    const records = await store.kv.getMany(unknown.map((u) => store.keys.task(u.member.id)));
    records.forEach((r, i) => {
      if (r.versionstamp === null) return;
      try {
        const record = TaskRecord.decode(r.key, r.value);
        take(unknown[i]!.entry, unknown[i]!.member, { func: record.func, group: record.group });
      } catch {
        // a damaged record is for 'kvq doctor', not for retention
      }
    });
    unknown = [];
  };
  for await (
    const e of store.kv.list({ start: prefix, end: [...prefix, before] }, { limit: MAX_SCANNED })
  ) {
    const entry = readDoneEntry(e);
    for (const member of entry.members) {
      if (member.func === null) unknown.push({ entry, member });
      else take(entry, member, { func: member.func, group: member.group });
      if (unknown.length === KV_MAX_GET_MANY) await resolve();
      if (wanted <= 0) break;
    }
    if (wanted <= 0) break;
  }
  if (unknown.length > 0) await resolve();
  return taken;
}
