/**
 * Enqueue: one commit stores the record, its index entry (ready or delayed), its look-ups, the
 * counters, the signal bump and, for a delayed task, a native doorbell (see `_entries.ts`). Bulk
 * enqueue packs many tasks per commit within the atomic limits; a unique task reads its key's
 * holder first. The specs are checked first (see `spec.ts`): a bad one stores nothing.
 *
 * @module
 */
import { TaskRecord } from "../task/record.ts";
import type { TaskId } from "../task/task_id.ts";
import { addEnqueueMutations, READY_COPY_BYTES, skipUniqueCheck } from "./_entries.ts";
import { TAIL_BATCH } from "./names.ts";
import { buildChunked } from "./build.ts";
import { addCancelWaiting } from "./cancel.ts";
import { commitAtomic } from "./commit.ts";
import { CommitBudget } from "./budget.ts";
import { buildChecked, checkAll, type Checked, type EnqueueSpec, UniqueTaskError } from "./spec.ts";
import type { Store } from "./store.ts";
import { TurnBook } from "./turns.ts";
import { withProducerSpan } from "../telemetry/tasks.ts";

// The spec types, validation and the entry writes live in their own modules; these names stay
// importable from here, where the API's enqueue options have always been.
export {
  checkAll,
  type EnqueueOptions,
  type EnqueueSpec,
  parseEta,
  prepareRecords,
  recordFor,
  type UniqueMode,
  type UniqueOption,
  UniqueTaskError,
} from "./spec.ts";
export { addEnqueueMutations, doorbell } from "./_entries.ts";
export { buildRecord } from "./build.ts";

/**
 * Validates every spec, then stores all of them. Nothing is stored if any spec is invalid.
 *
 * @throws {TypeError | RangeError} naming the task and the bad field.
 */
export async function enqueueTasks(
  store: Store,
  specs: readonly EnqueueSpec[],
  existing?: Set<string>,
): Promise<TaskRecord[]> {
  const now = store.now();
  const checked = checkAll(store, specs, now);
  // Within a producer span when tracing is on: each task carries its trace context.
  return await withProducerSpan(specs[0]?.func ?? "", specs.length, store.queue, (trace) => {
    if (trace !== null) { for (const c of checked) c.options.trace = trace; }
    return storeAll(store, checked, now, existing);
  });
}

async function storeAll(
  store: Store,
  checked: Checked[],
  now: number,
  existing?: Set<string>,
): Promise<TaskRecord[]> {
  if (checked.some((c) => c.options.unique !== null)) {
    // Unique tasks read their key's holder first: one checked commit each, in order.
    const out: TaskRecord[] = [];
    for (const c of checked) {
      if (c.options.unique === null) {
        const [record] = await storeChecked(store, [c], now);
        out.push(record!);
      } else out.push(await enqueueUnique(store, c, existing));
    }
    return out;
  }
  return await storeChecked(store, checked, now);
}

/** Hooks of an idempotent bulk enqueue (see `enqueue_batch.ts`) into {@linkcode storeChecked}. */
export interface StoreCheckedHooks {
  /** The id of the task of call `index`. @default a new UUIDv7 */
  id?: (index: number) => TaskId;
  /** Adds to each commit what marks the calls it stores (their indexes). */
  mark?: (atomic: Deno.AtomicOperation, indexes: readonly number[], first: boolean) => void;
  /** What `mark` adds to a commit at most: mutations and bytes. */
  markCost?: { mutations: number; bytes: number };
}

/** Builds records for `checked` and stores them in commits as full as KV's limits allow. */
export async function storeChecked(
  store: Store,
  checked: readonly Checked[],
  now: number,
  hooks: StoreCheckedHooks = {},
): Promise<TaskRecord[]> {
  // Then build records and pack them into commits as full as the limits allow. The next commit
  // is built (ids, records, their bytes) while the previous one is being written.
  const records: TaskRecord[] = [];
  let inFlight: Promise<void> | null = null;
  let next = 0;
  let commits = 0;
  const turns = new TurnBook(store);
  // Room for what every commit adds besides its tasks, and for the caller's marks.
  const budget = new CommitBudget({
    maxChecks: store.handle.maxChecks,
    reserve: {
      mutations: ENQUEUE_FIXED_MUTATIONS + (hooks.markCost?.mutations ?? 0),
      bytes: ENQUEUE_FIXED_BYTES + (hooks.markCost?.bytes ?? 0),
    },
  });
  while (next < checked.length) {
    const part: TaskRecord[] = [];
    const indexes: number[] = [];
    budget.reset();
    while (next < checked.length) {
      const c = checked[next]!;
      const id = hooks.id?.(next);
      const record = records[next] ??= c.large === null
        ? buildChecked(store, c, now, 0, id)
        : await buildChunked(store, c, now, id);
      const cost = {
        checks: 0,
        mutations: enqueueMutationCount(record, part.length),
        bytes: enqueueBytes(record),
      };
      if (!budget.fits(cost)) break;
      budget.take(cost);
      part.push(record);
      indexes.push(next);
      next++;
    }
    // Tasks with a partition take their turns (no read when none has one).
    const placed = await turns.place(part);
    placed.forEach((r, i) => records[indexes[i]!] = r);
    const atomic = store.kv.atomic();
    addEnqueueMutations(store, atomic, placed, now);
    turns.add(atomic, placed);
    hooks.mark?.(atomic, indexes, commits++ === 0);
    if (inFlight) await inFlight;
    // Each stored commit wakes the clusters: they start on a long batch while it is stored.
    inFlight = commitEnqueue(atomic, part.length).then(() => {
      if (next < checked.length) store.changes.notifyLocal();
    });
  }
  if (inFlight) await inFlight;
  store.changes.notifyLocal();
  return records;
}

/**
 * Enqueues one unique task: reads the key's holder, then commits with a check on the key (and
 * on the holder), so of racing enqueuers exactly one stores a task.
 */
async function enqueueUnique(
  store: Store,
  c: Checked,
  existing?: Set<string>,
): Promise<TaskRecord> {
  const { key, mode } = c.options.unique!;
  const k = store.keys;
  const now = store.now();
  const built = c.large === null
    ? buildChecked(store, c, now, 0)
    : await buildChunked(store, c, now);
  const turns = new TurnBook(store);
  const record = (await turns.place([built]))[0]!;
  for (let attempt = 0; attempt < 50; attempt++) {
    const held = await store.kv.get(k.unique(key), { consistency: "strong" });
    const atomic = store.kv.atomic().check({ key: k.unique(key), versionstamp: held.versionstamp });
    if (held.versionstamp !== null) {
      const holderId = decoder.decode(held.value as Uint8Array);
      const found = await store.kv.get(k.task(holderId), { consistency: "strong" });
      let holder: TaskRecord | null = null;
      try {
        holder = found.versionstamp === null ? null : TaskRecord.decode(found.key, found.value);
      } catch {
        // a damaged holder no longer holds the key
      }
      if (holder !== null && !holder.finished) {
        const keep = mode === "keep" || (mode === "replace" && holder.state === "running");
        if (keep) {
          existing?.add(holder.id);
          return holder;
        }
        if (mode === "reject") throw new UniqueTaskError(key, holder.id, holder.state);
        // replace: the waiting holder is cancelled in the commit that enqueues this task.
        atomic.check({ key: found.key, versionstamp: found.versionstamp });
        await addCancelWaiting(atomic, store, holder, {
          name: "TaskReplacedError",
          message: `Replaced by task ${record.id} (unique key ${JSON.stringify(key)})`,
        }, { keepUnique: true });
      } else {
        atomic.check({ key: found.key, versionstamp: found.versionstamp });
      }
    }
    skipUniqueCheck(atomic);
    addEnqueueMutations(store, atomic, [record], now);
    turns.add(atomic, [record]);
    if ((await commitAtomic(atomic)).ok) {
      store.changes.notifyLocal();
      return record;
    }
  }
  throw new Error(`Unique key ${JSON.stringify(key)} kept changing while enqueueing; retry.`);
}

const decoder = new TextDecoder();

/** Mutations and enqueues one commit adds besides its tasks: 2 counters, the signal, a doorbell. */
const ENQUEUE_FIXED_MUTATIONS = 4;

/** Bytes one commit carries besides its tasks (counter and signal keys), with a margin. */
const ENQUEUE_FIXED_BYTES = 4 * 1024;

/**
 * Mutations the task at `position` in a commit costs: record, ready or delayed entry, a share of
 * the name tail (one entry per {@linkcode TAIL_BATCH} tasks, written by the first of each),
 * group look-up, start-by deadline, its partition's gauge and last turn.
 */
function enqueueMutationCount(record: TaskRecord, position: number): number {
  return 2 + (position % TAIL_BATCH === 0 ? 1 : 0) + (record.group === null ? 0 : 1) +
    (record.expiresAt === null ? 0 : 1) + (record.partition === null ? 0 : 2);
}

/**
 * Bytes one task adds to a commit: its record, the copy in its ready entry (a small queued
 * one), and its keys (each well under 256 bytes).
 */
function enqueueBytes(record: TaskRecord): number {
  const size = record.encode().length;
  const copy = record.state === "queued" && size <= READY_COPY_BYTES ? size : 0;
  return size + copy + 5 * 256 + (record.group === null ? 0 : record.group.length * 4) +
    record.func.length * 4;
}

async function commitEnqueue(atomic: Deno.AtomicOperation, count: number): Promise<void> {
  const result = await commitAtomic(atomic);
  if (!result.ok) {
    throw new Error(`Enqueue of ${count} tasks was refused by KV; retry.`);
  }
}
