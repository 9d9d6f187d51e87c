/**
 * Promote: move delayed tasks whose time has come (`scheduled → queued`), one commit per batch,
 * each checked against the record's versionstamp so only one cluster promotes a task.
 *
 * @module
 */
import { TaskRecord } from "../task/record.ts";
import { addStateCounts, CountDeltas } from "./counters.ts";
import { CommitBudget } from "./budget.ts";
import { KV_MAX_GET_MANY } from "./limits.ts";
import type { Store } from "./store.ts";
import { commitAtomic } from "./commit.ts";
import { addDamaged } from "./damaged.ts";
import { addReadyEntry } from "./_entries.ts";
import { TurnBook } from "./turns.ts";

/** The time of the earliest delayed task, or null when none waits. */
export async function nextDelayedAt(store: Store): Promise<number | null> {
  for await (const e of store.kv.list({ prefix: store.keys.delayedPrefix }, { limit: 1 })) {
    return e.key[e.key.length - 2] as number;
  }
  return null;
}

/**
 * The first `limit` entries of a time index (keys `[...prefix, at, id]`) due at `now`, and the
 * time of the next one (in the past when more were due than `limit`), or null when none is left.
 */
export async function listDue(
  store: Store,
  prefix: Deno.KvKey,
  now: number,
  limit: number,
): Promise<{ due: Deno.KvEntry<unknown>[]; nextAt: number | null }> {
  const due: Deno.KvEntry<unknown>[] = [];
  for await (
    const e of store.kv.list({ prefix }, { limit: limit + 1, consistency: "strong" })
  ) {
    const at = e.key[e.key.length - 2] as number;
    if (at > now || due.length === limit) return { due, nextAt: at };
    due.push(e);
  }
  return { due, nextAt: null };
}

/**
 * Promotes up to `limit` delayed tasks due at `store.now()`. Returns how many became queued.
 */
export async function promoteDue(
  store: Store,
  options: { limit?: number; onCorrupt?: (error: Error) => void } = {},
): Promise<number> {
  return (await promoteAndPeek(store, options)).promoted;
}

/** What {@linkcode promoteAndPeek} did and saw. */
export interface PromoteResult {
  /** How many tasks became queued. */
  promoted: number;
  /**
   * When the next delayed task is due: a time in the past when more were due than one batch
   * takes; null when none waits.
   */
  nextAt: number | null;
}

/**
 * Promotes a batch of due delayed tasks and reads when the next one is due, in one list of
 * the delayed index (a cluster does this on every wake while tasks come due).
 */
export async function promoteAndPeek(
  store: Store,
  options: { limit?: number; onCorrupt?: (error: Error) => void } = {},
): Promise<PromoteResult> {
  const now = store.now();
  // Each promotion checks two keys (the delayed entry and the record).
  const limit = Math.max(1, Math.min(options.limit ?? 100, Math.floor(store.handle.maxChecks / 2)));
  const { due: entries, nextAt } = await listDue(store, store.keys.delayedPrefix, now, limit);
  if (entries.length === 0) return { promoted: 0, nextAt };
  const ids = entries.map((e) => e.key[e.key.length - 1] as string);
  const records: Deno.KvEntryMaybe<unknown>[] = [];
  for (let i = 0; i < ids.length; i += KV_MAX_GET_MANY) {
    records.push(
      ...await store.kv.getMany(
        ids.slice(i, i + KV_MAX_GET_MANY).map((id) => store.keys.task(id)),
        {
          consistency: "strong",
        },
      ),
    );
  }
  const atomic = store.kv.atomic();
  const counts = new CountDeltas();
  let promoted = 0;
  const budget = new CommitBudget({ maxChecks: store.handle.maxChecks });
  const turns = new TurnBook(store);
  const queuedNow: TaskRecord[] = [];
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    const found = records[i]!;
    // Large records are rewritten whole (and a small one copied into its ready entry): stop
    // before the commit would pass its byte limit.
    const size = found.value instanceof Uint8Array ? 2 * found.value.length + 512 : 512;
    // Besides its entries: its partition's gauges and last turn, if it has one.
    const cost = { checks: 2, mutations: 6, bytes: size };
    if (!budget.fits(cost)) break;
    budget.take(cost);
    atomic.check({ key: entry.key, versionstamp: entry.versionstamp });
    atomic.delete(entry.key);
    if (found.versionstamp === null) continue;
    let record: TaskRecord;
    try {
      record = TaskRecord.decode(found.key, found.value);
    } catch (error) {
      options.onCorrupt?.(error as Error);
      addDamaged(
        atomic,
        store,
        found.key[found.key.length - 1] as string,
        error as Error,
        found.value,
      );
      continue;
    }
    if (record.state !== "scheduled") continue;
    // A task with a partition joins the line at its partition's turn (see `turns.ts`).
    const [queued] = record.partition === null
      ? [record.promote()]
      : await turns.place([record.promote()]);
    queuedNow.push(queued!);
    atomic.check({ key: found.key, versionstamp: found.versionstamp });
    atomic.set(found.key, queued!.encode());
    addReadyEntry(atomic, store.keys, queued!);
    counts.move("scheduled", "queued", 1, queued!.partition);
    promoted++;
  }
  addStateCounts(atomic, store, counts);
  turns.add(atomic, queuedNow);
  const result = await commitAtomic(atomic);
  // Another cluster promoted them first: look again (its promotion signals a change).
  if (!result.ok) return { promoted: 0, nextAt: now };
  if (promoted > 0) store.changes.notifyLocal();
  return { promoted, nextAt };
}
