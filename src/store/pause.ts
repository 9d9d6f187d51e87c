/**
 * Pause and resume a queue: a `paused` key that clusters read before each claim. Setting or
 * deleting it bumps the queue's signal, so clusters learn of it through their change feed.
 *
 * @module
 */
import { commitAtomic } from "./commit.ts";
import { decodeLimits, type QueueLimits } from "./flow.ts";
import type { Store } from "./store.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Why and since when a queue is paused. */
export interface PauseInfo {
  /** When it was paused (epoch ms). */
  at: number;
  /** Who or why, if given. */
  reason: string | null;
  /**
   * Paused only until then (epoch ms): a task pushed back (see `RateLimitedError`). Null: until
   * it is resumed.
   */
  until: number | null;
}

function decodePause(value: unknown): PauseInfo {
  try {
    const raw = JSON.parse(decoder.decode(value as Uint8Array));
    return {
      at: Number(raw.at) || 0,
      reason: typeof raw.reason === "string" ? raw.reason : null,
      until: typeof raw.until === "number" && Number.isFinite(raw.until) ? raw.until : null,
    };
  } catch {
    return { at: 0, reason: null, until: null };
  }
}

/**
 * Holds the queue until `until` (a task was rate limited): clusters start nothing more from it
 * until then. A pause by hand, or a hold that lasts longer, is kept.
 */
export async function holdQueueUntil(store: Store, until: number, reason: string): Promise<void> {
  const key = store.keys.paused;
  for (let attempt = 0; attempt < 10; attempt++) {
    const e = await store.kv.get(key, { consistency: "strong" });
    const current = e.versionstamp === null ? null : decodePause(e.value);
    if (current !== null && (current.until === null || current.until >= until)) return;
    const info: PauseInfo = { at: store.now(), reason, until };
    const written = await commitAtomic(
      store.addSignal(store.kv.atomic().check(e).set(key, encoder.encode(JSON.stringify(info)))),
    );
    if (written.ok) {
      store.changes.notifyLocal();
      return;
    }
  }
}

/**
 * Holds partition `partition` of the queue until `until` (a task of it was rate limited):
 * clusters start nothing more of it until then; its other partitions go on. The holds of a
 * queue are one value (`keys.partitionHolds`), read with its pause key; ended holds are
 * dropped when it is written.
 */
export async function holdPartitionUntil(
  store: Store,
  partition: string,
  until: number,
): Promise<void> {
  const key = store.keys.partitionHolds;
  for (let attempt = 0; attempt < 10; attempt++) {
    const e = await store.kv.get(key, { consistency: "strong" });
    const holds = decodeHolds(e.value, store.now());
    if ((holds.get(partition) ?? 0) >= until) return;
    holds.set(partition, until);
    const written = await commitAtomic(
      store.addSignal(
        store.kv.atomic().check(e).set(
          key,
          encoder.encode(JSON.stringify(Object.fromEntries(holds))),
        ),
      ),
    );
    if (written.ok) {
      store.changes.notifyLocal();
      return;
    }
  }
}

/** The partitions held after `now`, until when. */
export function decodeHolds(value: unknown, now: number): Map<string, number> {
  const out = new Map<string, number>();
  if (!(value instanceof Uint8Array)) return out;
  try {
    const raw = JSON.parse(decoder.decode(value));
    if (typeof raw !== "object" || raw === null) return out;
    for (const [p, until] of Object.entries(raw)) {
      if (typeof until === "number" && until > now) out.set(p, until);
    }
  } catch {
    // damaged: no holds
  }
  return out;
}

/** Pauses the queue: clusters finish what runs and claim nothing more from it. */
export async function pauseQueue(store: Store, reason: string | null = null): Promise<void> {
  const info: PauseInfo = { at: store.now(), reason, until: null };
  await commitAtomic(
    store.addSignal(
      store.kv.atomic().set(store.keys.paused, encoder.encode(JSON.stringify(info))),
    ),
  );
  store.changes.notifyLocal();
}

/** Resumes the queue. */
export async function resumeQueue(store: Store): Promise<void> {
  await commitAtomic(store.addSignal(store.kv.atomic().delete(store.keys.paused)));
  store.changes.notifyLocal();
}

/** The pause marker, or null when the queue is not paused. */
export async function pausedInfo(store: Store): Promise<PauseInfo | null> {
  const e = await store.kv.get(store.keys.paused, { consistency: "strong" });
  if (e.versionstamp === null) return null;
  const info = decodePause(e.value);
  return info.until !== null && info.until <= store.now() ? null : info;
}

/**
 * Which of `stores`' queues are paused now, which of those are held until a time (see
 * {@linkcode holdQueueUntil}), the limits of those that have some (see `flow.ts`), and their
 * held partitions (see {@linkcode holdPartitionUntil}): one `getMany` for up to three queues.
 */
export async function readPausedQueues(
  stores: readonly Store[],
): Promise<{
  paused: Set<string>;
  holds: Map<string, number>;
  limits: Map<string, QueueLimits>;
  partitionHolds: Map<string, Map<string, number>>;
  /** Per queue, its pause key's versionstamp (null: absent), for a claim to check. */
  pauseStamps: Map<string, string | null>;
}> {
  const pauseStamps = new Map<string, string | null>();
  const paused = new Set<string>();
  const holds = new Map<string, number>();
  const limits = new Map<string, QueueLimits>();
  const partitionHolds = new Map<string, Map<string, number>>();
  if (stores.length === 0) return { paused, holds, limits, partitionHolds, pauseStamps };
  // Each queue's pause, limits and partition holds keys in one read (KV allows 10 keys a
  // getMany).
  const keys = stores.flatMap((s) => [s.keys.paused, s.keys.limits, s.keys.partitionHolds]);
  const entries: Deno.KvEntryMaybe<unknown>[] = [];
  for (let i = 0; i < keys.length; i += 9) {
    entries.push(...await stores[0]!.kv.getMany(keys.slice(i, i + 9)));
  }
  stores.forEach((store, i) => {
    const limit = decodeLimits(entries[3 * i + 1]?.value);
    if (limit !== null) limits.set(store.queue, limit);
    const held = decodeHolds(entries[3 * i + 2]?.value, store.now());
    if (held.size > 0) partitionHolds.set(store.queue, held);
    const e = entries[3 * i];
    pauseStamps.set(store.queue, e?.versionstamp ?? null);
    if (!e || e.versionstamp === null) return;
    const info = decodePause(e.value);
    if (info.until !== null) {
      if (info.until <= store.now()) return; // the hold is over
      holds.set(store.queue, info.until);
    }
    paused.add(store.queue);
  });
  return { paused, holds, limits, partitionHolds, pauseStamps };
}
