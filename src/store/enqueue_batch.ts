/**
 * Idempotent bulk enqueue: `enqueueMany(calls, { idempotencyKey })`. A bulk enqueue spans many
 * commits, so a producer killed mid-call leaves some of them stored. With a key, a retry of the
 * same call stores only what is missing and returns every task, the ones stored before included:
 *
 * - the task ids come from the key and each call's index (`TaskId.derived`), at the batch's start
 *   time, so a retry computes the same ids;
 * - the first commit writes the batch head (`batch, key, "head"`: start time, a hash of the calls),
 *   checked to be new, so two producers can't run one batch at once;
 * - each commit writes a part marker (`batch, key, "part", uuid`) naming the call indexes it stored.
 *
 * A retry reads the head and the markers and stores the other calls. Head and markers expire after
 * {@linkcode BATCH_KEEP_MS}; a retry after that stores the batch again. Calls with a `unique` key
 * need none of this (the key keeps a retry from storing twice) and are refused with one.
 *
 * @module
 */
import { createHash, randomUUID } from "node:crypto";
import { TaskId } from "../task/task_id.ts";
import type { TaskRecord } from "../task/record.ts";
import { storeChecked } from "./enqueue.ts";
import { withProducerSpan } from "../telemetry/tasks.ts";
import { checkAll, type EnqueueSpec, recordFor } from "./spec.ts";
import { getTask } from "./get.ts";
import { KV_MAX_KEY_BYTES } from "./limits.ts";
import type { Store } from "./store.ts";

/** How long a batch's head and markers are kept for retries: a day. */
export const BATCH_KEEP_MS = 24 * 60 * 60 * 1000;

/** The longest idempotency key, in characters. */
export const MAX_IDEMPOTENCY_KEY = 256;

/** Raised when an idempotency key names a batch of other calls. */
export class IdempotencyKeyError extends Error {
  /** The key. */
  readonly key: string;
  constructor(key: string, why: string) {
    super(`Idempotency key ${JSON.stringify(key)} ${why}`);
    this.name = "IdempotencyKeyError";
    this.key = key;
  }
}

interface Head {
  at: number;
  hash: string;
  total: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The index ranges of `indexes` (sorted), as `[first, last]` pairs. */
function ranges(indexes: readonly number[]): [number, number][] {
  const out: [number, number][] = [];
  for (const i of indexes) {
    const last = out[out.length - 1];
    if (last && last[1] === i - 1) last[1] = i;
    else out.push([i, i]);
  }
  return out;
}

/**
 * Stores `specs` once under `key`: see the module doc. Resolves with a record per call, in
 * order; `existing` gets the ids stored by an earlier try.
 *
 * @throws {IdempotencyKeyError} when the key was used for other calls, or is in use right now.
 * @throws {TypeError} for a bad key, a call with a `unique` key, or an invalid call.
 */
export async function enqueueBatch(
  store: Store,
  specs: readonly EnqueueSpec[],
  key: string,
  existing?: Set<string>,
): Promise<TaskRecord[]> {
  if (typeof key !== "string" || key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY) {
    throw new TypeError(
      `An idempotency key must be a string of 1-${MAX_IDEMPOTENCY_KEY} characters: received ${
        JSON.stringify(typeof key === "string" ? key.slice(0, 80) : key)
      }`,
    );
  }
  const now = store.now();
  const checked = checkAll(store, specs, now);
  if (checked.some((c) => c.options.unique !== null)) {
    throw new TypeError(
      "An idempotency key can't be combined with unique tasks: a unique key already keeps a retry from storing a task twice",
    );
  }
  if (
    encoder.encode(JSON.stringify(store.keys.batchPart(key, randomUUID()))).length >
      KV_MAX_KEY_BYTES
  ) {
    throw new TypeError(`Idempotency key is too long for a KV key: use a shorter one`);
  }
  // The calls as given: validated options hold due times computed from "now", which a retry
  // computes anew.
  const hash = createHash("sha256");
  for (const spec of specs) {
    hash.update(JSON.stringify([spec.func, spec.args, spec.options ?? {}])).update("\n");
  }
  const digest = hash.digest("hex");

  const headKey = store.keys.batchHead(key);
  const stored = await store.kv.get<Uint8Array>(headKey, { consistency: "strong" });
  let head: Head = { at: now, hash: digest, total: checked.length };
  const done = new Set<number>();
  if (stored.versionstamp !== null) {
    head = JSON.parse(decoder.decode(stored.value!)) as Head;
    if (head.hash !== digest || head.total !== checked.length) {
      throw new IdempotencyKeyError(key, "was used for a batch of other calls; use a new key");
    }
    for await (const e of store.kv.list<Uint8Array>({ prefix: store.keys.batchParts(key) })) {
      for (const [first, last] of JSON.parse(decoder.decode(e.value)) as [number, number][]) {
        for (let i = first; i <= last; i++) done.add(i);
      }
    }
  }
  const idOf = (i: number) => TaskId.derived(head.at, `${store.queue}\n${key}`, i);
  const todo = checked.map((_, i) => i).filter((i) => !done.has(i));
  const records: (TaskRecord | null)[] = checked.map(() => null);
  if (todo.length > 0) {
    const headBytes = encoder.encode(JSON.stringify(head));
    const built = await withProducerSpan(specs[0]!.func, todo.length, store.queue, (trace) => {
      if (trace !== null) { for (const i of todo) checked[i]!.options.trace = trace; }
      return storeChecked(store, todo.map((i) => checked[i]!), now, {
        id: (n) => idOf(todo[n]!),
        mark(atomic, indexes, first) {
          if (first && stored.versionstamp === null) {
            // A second producer with the same key fails here instead of storing twice.
            atomic.check({ key: headKey, versionstamp: null })
              .set(headKey, headBytes, { expireIn: BATCH_KEEP_MS });
          }
          const calls = indexes.map((n) => todo[n]!);
          atomic.set(
            store.keys.batchPart(key, randomUUID()),
            encoder.encode(JSON.stringify(ranges(calls))),
            {
              expireIn: BATCH_KEEP_MS,
            },
          );
        },
        markCost: { mutations: 2, bytes: 4096 },
      });
    }).catch((error) => {
      if (/refused by KV/.test((error as Error).message)) {
        throw new IdempotencyKeyError(
          key,
          "is being enqueued by another call right now; retry it later",
        );
      }
      throw error;
    });
    todo.forEach((i, n) => records[i] = built[n]!);
  }
  // The tasks stored by an earlier try: as they are now (a finished one may have been pruned).
  for (const i of done) {
    const id = idOf(i).id;
    existing?.add(id);
    records[i] = await getTask(store, id).catch(() => null);
  }
  // One gone since (pruned once finished) is described as it was enqueued, under its id.
  return records.map((r, i) => r ?? recordFor(store, checked[i]!, now, idOf(i)));
}
