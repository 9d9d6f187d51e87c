/**
 * A running task's progress: one value under its own key, written by the cluster that runs it
 * (read back by `getTask`, deleted with the attempt's outcome).
 *
 * @module
 */
import type { Store } from "./store.ts";

const encoder = new TextEncoder();

/** Stores the progress a task reported: how far along (in [0, 1]) and its message. */
export async function writeProgress(
  store: Store,
  id: string,
  fraction: number,
  message: string | undefined,
): Promise<void> {
  const value = JSON.stringify({ fraction, message, at: Date.now() });
  await store.kv.set(store.keys.progress(id), encoder.encode(value));
}
