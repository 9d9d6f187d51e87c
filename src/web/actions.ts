/**
 * What the dashboard's buttons do. Each action goes through the same queue and schedule APIs
 * the library and the CLI use, so the dashboard can do nothing they couldn't.
 *
 * @module
 */
import type { Queue } from "../queue/queue.ts";
import type { TaskState } from "../store/keys.ts";
import type { Store } from "../store/store.ts";
import { purgeFinished } from "../store/purge.ts";

/** The most task ids one bulk request may name. */
export const MAX_BULK_IDS = 1000;

/** How long one purge or "retry all" request may work before it reports what is left. */
export const ACTION_BUDGET_MS = 20_000;

/** Entries read per page by purge and "retry all". */
export const ACTION_PAGE = 100;

/** What an action did. */
export interface ActionResult {
  /** One line for the viewer. */
  message: string;
  /** Where to go next (after a delete of the task being viewed, say). */
  location?: string;
}

/** The bulk operations. */
export type BulkOp = "retry" | "cancel" | "delete";

/** Applies `op` to each task; failures are counted and the first reason is given. */
export async function bulk(
  queue: Queue,
  op: BulkOp,
  ids: readonly string[],
): Promise<ActionResult> {
  if (ids.length === 0) throw new RangeError("Select at least one task.");
  if (ids.length > MAX_BULK_IDS) {
    throw new RangeError(`Select at most ${MAX_BULK_IDS} tasks at once: received ${ids.length}`);
  }
  let done = 0;
  const reasons: string[] = [];
  for (const id of ids) {
    try {
      if (op === "retry") await queue.retry(id);
      else if (op === "cancel") await queue.cancel(id);
      else await queue.delete(id);
      done++;
    } catch (error) {
      reasons.push((error as Error).message);
    }
  }
  const verb = op === "retry" ? "Retried" : op === "cancel" ? "Cancelled" : "Deleted";
  return {
    message: `${verb} ${done} task${done === 1 ? "" : "s"}${
      reasons.length ? `; ${reasons.length} skipped: ${reasons[0]}` : ""
    }.`,
  };
}

/** Retries every failed task, a page at a time, within {@linkcode ACTION_BUDGET_MS}. */
export async function retryAllFailed(
  queue: Queue,
  budgetMs = ACTION_BUDGET_MS,
): Promise<ActionResult> {
  const started = Date.now();
  let retried = 0;
  let skipped = 0;
  while (Date.now() - started < budgetMs) {
    const page = await queue.tasks({ state: "failed", limit: ACTION_PAGE });
    if (page.tasks.length === 0) break;
    let progress = 0;
    for (const r of page.tasks) {
      try {
        await queue.retry(r.id);
        retried++;
        progress++;
      } catch {
        skipped++;
      }
    }
    if (progress === 0) break;
  }
  const left = (await queue.counts()).failed;
  return {
    message: `Retried ${retried} failed task${retried === 1 ? "" : "s"}${
      skipped ? `, ${skipped} skipped` : ""
    }${left > 0 ? `; ${left} still failed (click again to go on)` : ""}.`,
  };
}

/**
 * Deletes the finished tasks of one state, oldest first, a page at a time, for up to
 * {@linkcode ACTION_BUDGET_MS}, and says how many are left.
 */
export async function purge(
  store: Store,
  state: TaskState,
  budgetMs = ACTION_BUDGET_MS,
): Promise<ActionResult> {
  const { deleted, stale, more } = await purgeFinished(store, state, {
    budgetMs,
    page: ACTION_PAGE,
  });
  return {
    message: `Purged ${deleted} ${state} task${deleted === 1 ? "" : "s"} from queue ${store.queue}${
      more ? `; more remain (click again to go on)` : ""
    }${stale > 0 ? ` (${stale} changed meanwhile and were left)` : ""}.`,
  };
}
