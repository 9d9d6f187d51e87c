/**
 * Expire: end the waiting tasks whose start-by deadline (`expireIn`) passed before they started.
 * Each becomes `cancelled` with a {@linkcode TaskExpiredError} in a commit checked against its
 * record, as a cancel would (its hooks and chain see it end), so it never runs; a claim that
 * meets one first leaves it for this pass (see `claim.ts`). Deadlines of tasks that started or
 * ended meanwhile are dropped as their time comes.
 *
 * @module
 */
import { TaskRecord } from "../task/record.ts";
import { addCancelWaiting } from "./cancel.ts";
import { commitAtomic } from "./commit.ts";
import { addDamaged } from "./damaged.ts";
import { listDue } from "./promote.ts";
import type { Store } from "./store.ts";

/** The error an expired task ends with. */
export const TASK_EXPIRED = "TaskExpiredError";

/** The most deadlines one pass handles; the next pass takes the rest. */
const PASS_LIMIT = 100;

/** What {@linkcode expireDue} did and saw. */
export interface ExpireResult {
  /** Tasks that ended expired. */
  expired: number;
  /** When the next deadline comes (in the past: more were due than one pass takes), or null. */
  nextAt: number | null;
}

/**
 * Ends the waiting tasks whose deadline has come, one checked commit each (expiry is rare, and
 * each may run a hook), and reads when the next deadline comes.
 */
export async function expireDue(
  store: Store,
  options: { onCorrupt?: (error: Error) => void } = {},
): Promise<ExpireResult> {
  const now = store.now();
  const k = store.keys;
  const { due, nextAt } = await listDue(store, k.expiringPrefix, now, PASS_LIMIT);
  let expired = 0;
  for (const entry of due) {
    const id = entry.key[entry.key.length - 1] as string;
    const found = await store.kv.get(k.task(id), { consistency: "strong" });
    const atomic = store.kv.atomic()
      .check({ key: entry.key, versionstamp: entry.versionstamp })
      .check({ key: found.key, versionstamp: found.versionstamp })
      .delete(entry.key);
    let record: TaskRecord | null = null;
    if (found.versionstamp !== null) {
      try {
        record = TaskRecord.decode(found.key, found.value);
      } catch (error) {
        options.onCorrupt?.(error as Error);
        addDamaged(atomic, store, id, error as Error, found.value);
      }
    }
    const ends = record !== null && record.expiredAt(now);
    if (ends) {
      await addCancelWaiting(atomic, store, record!, {
        name: TASK_EXPIRED,
        message: `Not started by its deadline (expireIn), ${
          new Date(record!.expiresAt!).toISOString()
        }: it will not run`,
      });
    }
    if ((await commitAtomic(atomic)).ok && ends) expired++;
  }
  if (expired > 0) store.changes.notifyLocal();
  return { expired, nextAt };
}
