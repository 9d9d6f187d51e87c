/**
 * Committing an atomic operation when other processes share the KV file. SQLite lets one
 * process write at a time; a commit that finds the file locked past the driver's busy timeout
 * fails with "database is locked" (measured: four processes claiming from one file hit it within
 * a second on Deno and on Bun). Nothing was written then, so the same operation is committed
 * again after a short, jittered pause.
 *
 * @module
 */
import { delay } from "../runtime/delay.ts";

/** How long one commit keeps retrying a locked database before giving up. */
const BUSY_GIVE_UP_MS = 30_000;

/** Whether `error` says the KV file was locked by another process (nothing was written). */
export function isBusyError(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return /database is locked|database table is locked|SQLITE_BUSY/i.test(message);
}

/**
 * Commits `atomic`, retrying while another process holds the write lock.
 *
 * @throws whatever the commit throws for any other reason, or the lock error after
 *   {@linkcode BUSY_GIVE_UP_MS}.
 */
export async function commitAtomic(
  atomic: Deno.AtomicOperation,
): Promise<Deno.KvCommitResult | Deno.KvCommitError> {
  return await retryBusy(() => atomic.commit());
}

/** KV writes this process made (counted where KV is opened, in `kv.ts`). */
export const commitStats = { commits: 0, mutations: 0 };

/** Runs `op` again while it fails because the database is locked. */
export async function retryBusy<T>(op: () => Promise<T>): Promise<T> {
  const started = Date.now();
  for (let attempt = 0;; attempt++) {
    try {
      return await op();
    } catch (error) {
      if (!isBusyError(error) || Date.now() - started > BUSY_GIVE_UP_MS) throw error;
      const pause = Math.min(100, 2 ** Math.min(attempt, 7)) * (0.5 + Math.random());
      await delay(pause);
    }
  }
}
