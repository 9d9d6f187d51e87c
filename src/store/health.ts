/**
 * Whether KV answers: one strong read of a queue's signal key, for readiness probes.
 *
 * @module
 */
import type { Store } from "./store.ts";

/** Resolves once KV answered a strong read; rejects with KV's error. */
export async function kvAnswers(store: Store): Promise<void> {
  await store.kv.get(store.keys.signal);
}
