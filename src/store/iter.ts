/**
 * Iters (Django Q's `async_iter`): one task per argument set, run in parallel, whose results
 * collate in input order. Each member's final commit stores its outcome under `iter_result` and
 * adds 1 to `iter_done`; the iter is finished when `iter_done` reaches its size. The iter
 * record is written after its tasks, so an iter id handed to the caller always has them all.
 *
 * @module
 */
import { TaskId } from "../task/task_id.ts";
import type { JsonValue } from "../task/json.ts";
import { CorruptRecordError } from "../task/record.ts";
import { commitAtomic } from "./commit.ts";
import { enqueueTasks } from "./enqueue.ts";
import type { EnqueueOptions, EnqueueSpec } from "./spec.ts";
import { NoSuchTaskError } from "./errors.ts";
import { MAX_BULK_TASKS } from "./limits.ts";
import { type MemberResult, readMemberResult } from "./member_result.ts";
import type { Store } from "./store.ts";

/** The stored iter. */
export interface IterRecord {
  id: string;
  func: string;
  /** How many member tasks. */
  total: number;
  /** Their task ids, in input order. */
  tasks: string[];
  createdAt: number;
}

/** How far an iter got. */
export interface IterStatus {
  id: string;
  total: number;
  /** Members finished (any final state). */
  done: number;
  /** Members that failed or were cancelled. */
  failed: number;
  /** Whether every member finished. */
  finished: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Validates every argument set, then enqueues one task per set and stores the iter.
 *
 * @throws {TypeError} when `argsList` is not iterable, naming what it is; or for a bad option.
 */
export async function createIter(
  store: Store,
  func: string,
  argsList: Iterable<unknown>,
  options: EnqueueOptions = {},
): Promise<IterRecord> {
  if (
    argsList === null || argsList === undefined || typeof argsList === "string" ||
    typeof (argsList as Iterable<unknown>)[Symbol.iterator] !== "function"
  ) {
    throw new TypeError(
      `iter() takes an iterable of argument lists (e.g. [[1, 2], [3, 4]]): received ${
        argsList === null ? "null" : typeof argsList === "string" ? "a string" : typeof argsList
      }`,
    );
  }
  if (options.unique !== undefined) {
    throw new TypeError(`Option unique of ${func} is not supported in an iter`);
  }
  const id = TaskId.create().id;
  const specs: EnqueueSpec[] = [];
  for (const item of argsList) {
    if (specs.length >= MAX_BULK_TASKS) {
      throw new RangeError(`An iter takes at most ${MAX_BULK_TASKS} argument sets`);
    }
    specs.push({
      func,
      args: Array.isArray(item) ? item : [item],
      options,
      iter: { id, index: specs.length },
    });
  }
  if (specs.length === 0) throw new RangeError("iter() needs at least one argument set");
  const records = await enqueueTasks(store, specs);
  const iter: IterRecord = {
    id,
    func,
    total: records.length,
    tasks: records.map((r) => r.id),
    createdAt: store.now(),
  };
  const res = await commitAtomic(
    store.kv.atomic().set(store.keys.iter(id), encoder.encode(JSON.stringify({ v: 1, ...iter }))),
  );
  if (!res.ok) throw new Error("Storing the iter was refused; retry.");
  return iter;
}

/**
 * Reads an iter record.
 *
 * @throws {NoSuchTaskError} when there is no such iter.
 */
export async function getIter(store: Store, id: string): Promise<IterRecord> {
  const e = await store.kv.get(store.keys.iter(id));
  if (e.versionstamp === null) throw new NoSuchTaskError(id, store.queue, "iter");
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(decoder.decode(e.value as Uint8Array));
  } catch (error) {
    throw new CorruptRecordError(e.key, `not UTF-8 JSON (${(error as Error).message})`);
  }
  if (raw?.v !== 1 || typeof raw.total !== "number" || !Array.isArray(raw.tasks)) {
    throw new CorruptRecordError(e.key, "not an iter record");
  }
  const { v: _, ...iter } = raw;
  return iter as unknown as IterRecord;
}

/** How many members of an iter finished. */
export async function iterDone(store: Store, id: string): Promise<number> {
  const e = await store.kv.get<Deno.KvU64>(store.keys.iterDone(id), { consistency: "strong" });
  return e.value ? Number(e.value.value) : 0;
}

/** Every member outcome, in input order (null for a member not finished). */
export async function iterOutcomes(
  store: Store,
  iter: IterRecord,
): Promise<(MemberResult | null)[]> {
  const out: (MemberResult | null)[] = Array.from({ length: iter.total }, () => null);
  for await (const e of store.kv.list({ prefix: store.keys.iterResults(iter.id) })) {
    out[e.key[e.key.length - 1] as number] = await readMemberResult(store, e.key, e.value);
  }
  return out;
}

/** An iter's progress. */
export async function iterStatus(store: Store, id: string): Promise<IterStatus> {
  const iter = await getIter(store, id);
  const outcomes = await iterOutcomes(store, iter);
  const done = outcomes.filter((o) => o !== null).length;
  return {
    id,
    total: iter.total,
    done,
    failed: outcomes.filter((o) => o !== null && o.state !== "succeeded").length,
    finished: done >= iter.total,
  };
}

/** The results in input order; a failed member's slot holds null. */
export function collate(outcomes: (MemberResult | null)[]): (JsonValue | null)[] {
  return outcomes.map((o) => (o?.state === "succeeded" ? o.result : null));
}
