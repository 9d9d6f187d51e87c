/**
 * The `done` index: finished tasks by state and stop time, for listing, purge and retention.
 *
 * Two kinds of entry share it (layout 5):
 * - a task's own entry, `done, state, stoppedAt, id`, whose value names its func and group (see
 *   `finish.ts`): written by a finish that commits alone (a cancel, a lease recovery's final
 *   failure, a cached task with its `expireIn`), and by layouts 2–4;
 * - a batch entry, `done, state, stoppedAt, firstId, "b"`, one per state per outcome commit of a
 *   cluster, naming each task it finished with its stop time, attempt, func and group. Its time
 *   is the latest stop time of its tasks, so retention by age never takes one early.
 *
 * A delete or retry takes its task out of its batch entry after its own commit
 * ({@linkcode forgetDone}). Readers take a member as current only while its record is in the
 * entry's state with the same stop time and attempt ({@linkcode isCurrent}), so a member left
 * behind (a process killed between the two commits) is skipped; purge and retention drop the
 * members that are not current, and the entry with its last one.
 *
 * @module
 */
import { TaskRecord } from "../task/record.ts";
import { commitAtomic } from "./commit.ts";
import { deleteRecords, type ReadRecord } from "./delete_many.ts";
import { KV_MAX_GET_MANY } from "./limits.ts";
import type { TaskState } from "./keys.ts";
import type { Store } from "./store.ts";

/** The last key part of a batch entry. */
export const DONE_BATCH_TAG = "b";

/** The most bytes of members one batch entry holds (KV's values hold 64 KiB). */
const BATCH_BYTES = 48 * 1024;

/**
 * The most a batch entry's time (its latest stop time) passes a member's: the tasks of one
 * commit stop within a millisecond or two, and one that does not goes in an entry of its own. So
 * a task's entry is found in a short range after its stop time.
 */
export const DONE_SPREAD_MS = 100;

/** One finished task as a `done` entry names it. */
export interface DoneMember {
  readonly id: string;
  /** Its stop time as the entry recorded it. */
  readonly stoppedAt: number;
  /** Its attempt as the entry recorded it; null for a task's own entry (which has none). */
  readonly attempt: number | null;
  /** Its func, or null when the entry names none (one written by layout 1). */
  readonly func: string | null;
  readonly group: string | null;
}

/** A `done` entry as read, with the tasks it names. */
export interface DoneEntry {
  readonly key: Deno.KvKey;
  readonly versionstamp: string;
  /** Whether it is a batch entry. */
  readonly batch: boolean;
  /** Its tasks, oldest first. */
  readonly members: readonly DoneMember[];
}

type Packed = [id: string, stoppedAt: number, attempt: number, func: string, group?: string];

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Whether `key` (under a state's `done` prefix) is a batch entry's. */
export function isBatchKey(key: Deno.KvKey): boolean {
  return key.length > 0 && key[key.length - 1] === DONE_BATCH_TAG &&
    typeof key[key.length - 2] === "string" && typeof key[key.length - 3] === "number";
}

/** The tasks a `done` entry names; none for a damaged batch entry. */
export function readDoneEntry(entry: Deno.KvEntry<unknown>): DoneEntry {
  const { key, versionstamp } = entry;
  if (!isBatchKey(key)) {
    const value = decodeDone(entry.value);
    return {
      key,
      versionstamp,
      batch: false,
      members: [{
        id: String(key[key.length - 1]),
        stoppedAt: Number(key[key.length - 2]),
        attempt: null,
        func: value?.func ?? null,
        group: value?.group ?? null,
      }],
    };
  }
  const members: DoneMember[] = [];
  try {
    const packed = JSON.parse(decoder.decode(entry.value as Uint8Array))?.b;
    for (const m of Array.isArray(packed) ? packed : []) {
      if (!Array.isArray(m) || typeof m[0] !== "string" || typeof m[1] !== "number") continue;
      members.push({
        id: m[0],
        stoppedAt: m[1],
        attempt: typeof m[2] === "number" ? m[2] : null,
        func: typeof m[3] === "string" ? m[3] : null,
        group: typeof m[4] === "string" ? m[4] : null,
      });
    }
  } catch {
    // damaged: it names nothing, and purge or retention drops it
  }
  return { key, versionstamp, batch: true, members };
}

/** Whether `record` is still the finish that `member` of an entry of `state` names. */
export function isCurrent(member: DoneMember, record: TaskRecord, state: TaskState): boolean {
  return record.state === state && record.finished && record.stoppedAt === member.stoppedAt &&
    (member.attempt === null || record.attempt === member.attempt);
}

/**
 * The batch entries of one outcome commit: the finished tasks of each state, in entries of at
 * most {@linkcode BATCH_BYTES}.
 */
export class DoneBatches {
  readonly #store: Store;
  readonly #byState = new Map<
    TaskState,
    { packed: string[]; bytes: number; records: TaskRecord[] }[]
  >();

  constructor(store: Store) {
    this.#store = store;
  }

  /** Names `record` (finished, not cached) in its state's entry. */
  add(record: TaskRecord): void {
    const packed: Packed = [record.id, record.stoppedAt!, record.attempt, record.func];
    if (record.group !== null) packed.push(record.group);
    const text = JSON.stringify(packed);
    let groups = this.#byState.get(record.state);
    if (!groups) this.#byState.set(record.state, groups = []);
    // Each entry within its byte limit, and its stop times within DONE_SPREAD_MS.
    let last = groups.find((g) =>
      g.bytes + text.length <= BATCH_BYTES &&
      Math.abs(g.records[0]!.stoppedAt! - record.stoppedAt!) <= DONE_SPREAD_MS / 2
    );
    if (!last) groups.push(last = { packed: [], bytes: 0, records: [] });
    last.packed.push(text);
    last.bytes += text.length + 1;
    last.records.push(record);
  }

  /** Adds the entries to `atomic`: one set each. */
  apply(atomic: Deno.AtomicOperation): void {
    const k = this.#store.keys;
    for (const [state, groups] of this.#byState) {
      for (const g of groups) {
        const at = Math.max(...g.records.map((r) => r.stoppedAt!));
        atomic.set(
          k.doneBatch(state, at, g.records[0]!.id),
          encoder.encode(`{"b":[${g.packed.join(",")}]}`),
        );
      }
    }
  }
}

/**
 * Removes the members `drop` names from `entry`: rewrites it with the rest, or deletes it when
 * none is left (a task's own entry always). Checked: an entry changed since it was read is left
 * for the next pass. Returns whether it was written.
 */
export async function dropMembers(
  store: Store,
  entry: DoneEntry,
  drop: ReadonlySet<string>,
): Promise<boolean> {
  const left = entry.members.filter((m) => !drop.has(m.id));
  // A damaged batch entry names nothing (its tasks' records are untouched): it goes too.
  const damaged = entry.batch && entry.members.length === 0;
  if (left.length === entry.members.length && !damaged) return true;
  const atomic = store.kv.atomic().check({ key: entry.key, versionstamp: entry.versionstamp });
  if (left.length === 0 || !entry.batch) atomic.delete(entry.key);
  else atomic.set(entry.key, encodeMembers(left));
  return (await commitAtomic(atomic)).ok;
}

/**
 * Takes a deleted or retried task out of the batch entry that names it (its own entry, if any,
 * goes in the commit that deleted or retried it: see `delete.ts`). After that commit, not in
 * it: an entry that is not rewritten only keeps a member its readers skip (see
 * {@linkcode isCurrent}), and retention drops it later.
 */
export async function forgetDone(store: Store, record: TaskRecord): Promise<void> {
  if (record.stoppedAt === null || record.cached !== null) return;
  const prefix = store.keys.doneState(record.state);
  const from = record.stoppedAt;
  for (let attempt = 0; attempt < 3; attempt++) {
    let found: DoneEntry | null = null;
    for await (
      const e of store.kv.list({
        start: [...prefix, from],
        end: [...prefix, from + DONE_SPREAD_MS + 1],
      }, { consistency: "strong" })
    ) {
      if (!isBatchKey(e.key)) continue;
      const entry = readDoneEntry(e);
      if (entry.members.some((m) => m.id === record.id && m.stoppedAt === from)) {
        found = entry;
        break;
      }
    }
    if (found === null || await dropMembers(store, found, new Set([record.id]))) return;
  }
}

/** Tasks of `done` entries picked for deletion (all of an entry's, or some). */
export interface DonePick {
  readonly entry: DoneEntry;
  readonly members: readonly DoneMember[];
}

/**
 * Deletes the picked finished tasks of `state` whose records are still the finishes their
 * entries name, and takes out of the entries every picked task that is deleted, gone, or
 * changed since (retried, say). A damaged record is left, with its place in its entry.
 */
export async function deleteDoneMembers(
  store: Store,
  state: TaskState,
  picks: readonly DonePick[],
): Promise<{ deleted: number; stale: number }> {
  const members = picks.flatMap((p) => p.members);
  const found: ReadRecord[] = [];
  const drop = new Set<string>();
  let stale = 0;
  for (let i = 0; i < members.length; i += KV_MAX_GET_MANY) {
    const part = members.slice(i, i + KV_MAX_GET_MANY);
    const entries = await store.kv.getMany(part.map((m) => store.keys.task(m.id)), {
      consistency: "strong",
    });
    entries.forEach((e, j) => {
      const member = part[j]!;
      if (e.versionstamp === null) return void drop.add(member.id);
      try {
        const record = TaskRecord.decode(e.key, e.value);
        if (isCurrent(member, record, state)) found.push({ record, versionstamp: e.versionstamp });
        else {
          stale++;
          drop.add(member.id);
        }
      } catch {
        stale++; // damaged: `kvq doctor` reports it; this leaves it
      }
    });
  }
  const deleted = await deleteRecords(store, found);
  for (const r of deleted) drop.add(r.id);
  // An entry changed since it was read keeps what it names until the next pass.
  for (const { entry } of picks) await dropMembers(store, entry, drop);
  return { deleted: deleted.length, stale };
}

function encodeMembers(members: readonly DoneMember[]): Uint8Array {
  const packed = members.map((m) => {
    const p: (string | number | null)[] = [m.id, m.stoppedAt, m.attempt, m.func];
    if (m.group !== null) p.push(m.group);
    return p;
  });
  return encoder.encode(JSON.stringify({ b: packed }));
}

/** What a task's own `done` entry says of it: its func and group. */
export interface DoneValue {
  func: string;
  group: string | null;
}

/** A task's own `done` entry value: `{"f": func, "g": group}` (no `g` without a group). */
export function encodeDone(record: TaskRecord): Uint8Array {
  return encoder.encode(
    JSON.stringify(
      record.group === null ? { f: record.func } : { f: record.func, g: record.group },
    ),
  );
}

/**
 * Decodes a task's own `done` entry value; null when it names nothing (an empty one, as layout
 * 1 wrote, or a damaged one): read the record then.
 */
export function decodeDone(value: unknown): DoneValue | null {
  if (!(value instanceof Uint8Array) || value.length === 0) return null;
  try {
    const v = JSON.parse(decoder.decode(value));
    if (typeof v?.f !== "string") return null;
    return { func: v.f, group: typeof v.g === "string" ? v.g : null };
  } catch {
    return null;
  }
}
