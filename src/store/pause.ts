/**
 * Pause and resume a queue: a `paused` key that clusters read before each claim. Setting or
 * deleting it bumps the queue's signal, so clusters learn of it through their change feed.
 *
 * @module
 */
import { commitAtomic } from "./commit.ts";
import type { Store } from "./store.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Why and since when a queue is paused. */
export interface PauseInfo {
  /** When it was paused (epoch ms). */
  at: number;
  /** Who or why, if given. */
  reason: string | null;
}

/** Pauses the queue: clusters finish what runs and claim nothing more from it. */
export async function pauseQueue(store: Store, reason: string | null = null): Promise<void> {
  const info: PauseInfo = { at: store.now(), reason };
  await commitAtomic(
    store.kv.atomic().set(store.keys.paused, encoder.encode(JSON.stringify(info)))
      .sum(store.keys.signal, 1n),
  );
  store.changes.notifyLocal();
}

/** Resumes the queue. */
export async function resumeQueue(store: Store): Promise<void> {
  await commitAtomic(store.kv.atomic().delete(store.keys.paused).sum(store.keys.signal, 1n));
  store.changes.notifyLocal();
}

/** The pause marker, or null when the queue is not paused. */
export async function pausedInfo(store: Store): Promise<PauseInfo | null> {
  const e = await store.kv.get(store.keys.paused, { consistency: "strong" });
  if (e.versionstamp === null) return null;
  try {
    const raw = JSON.parse(decoder.decode(e.value as Uint8Array));
    return { at: Number(raw.at) || 0, reason: typeof raw.reason === "string" ? raw.reason : null };
  } catch {
    return { at: 0, reason: null };
  }
}

/**
 * The names of the queues of `stores` that are paused, in one read of their `paused` keys
 * (the stores share one KV handle).
 */
export async function readPausedQueues(stores: readonly Store[]): Promise<Set<string>> {
  if (stores.length === 0) return new Set();
  const entries = await stores[0]!.kv.getMany(stores.map((s) => s.keys.paused));
  return new Set(stores.filter((_, i) => entries[i]?.versionstamp !== null).map((s) => s.queue));
}
