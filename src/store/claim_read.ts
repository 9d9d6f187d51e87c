/**
 * What a claim reads of the tasks it lists (see `claim.ts`): their records, from the copies in
 * their ready entries or with `getMany`, and under partition limits which of them the
 * partitions allow.
 *
 * @module
 */
import { TaskRecord } from "../task/record.ts";
import type { FlowGate, PartitionPicks } from "./gate.ts";
import { KV_MAX_GET_MANY } from "./limits.ts";
import type { Store } from "./store.ts";

/** The most ready entries a claim under partition limits looks at. */
export const LOOKAHEAD = 200;

/**
 * Picks, in line order, up to `max` tasks the partitions allow (and every stale entry met, to
 * drop), reading the counters of the partitions met first.
 */
export async function pickByPartition(
  gate: FlowGate,
  all: RecordEntry[],
  max: number,
): Promise<{ at: number[]; picks: PartitionPicks }> {
  const partitions = new Set<string>();
  for (const r of all) {
    if (r.record?.state === "queued" && r.record.partition !== null) {
      partitions.add(r.record.partition);
    }
  }
  const picks = await gate.partitions!.open([...partitions]);
  const at: number[] = [];
  let tasks = 0;
  for (let i = 0; i < all.length && tasks < max; i++) {
    const record = all[i]!.record;
    if (record === null || record.state !== "queued") {
      at.push(i); // stale: the claim drops it
      continue;
    }
    if (record.partition !== null && !picks.take(record.partition)) continue;
    at.push(i);
    tasks++;
  }
  return { at, picks };
}

export type RecordEntry = {
  record: TaskRecord | null;
  versionstamp: string | null;
  error?: Error;
  value?: unknown;
};

/**
 * The records of the picked ready entries, with the versionstamps their claim checks. A ready
 * entry that holds a copy of its record (see `addReadyEntry`) was written in one commit with
 * it, so the two share a versionstamp: checking the record against the entry's versionstamp
 * fails if the record changed since, and the copy is used as it is (`useCopies`). The rest
 * are read with `getMany`.
 */
export async function readPicked(
  store: Store,
  picked: Deno.KvEntry<unknown>[],
  useCopies: boolean,
): Promise<RecordEntry[]> {
  const out: (RecordEntry | null)[] = picked.map((e) => {
    if (!useCopies || !(e.value instanceof Uint8Array) || e.value.length === 0) return null;
    const id = e.key[e.key.length - 1] as string;
    try {
      const record = TaskRecord.decode(store.keys.task(id), e.value);
      return record.id === id ? { record, versionstamp: e.versionstamp } : null;
    } catch {
      return null; // a damaged copy: the record says what is wrong
    }
  });
  const missing = out.flatMap((r, i) => r === null ? [i] : []);
  if (missing.length === 0) return out as RecordEntry[];
  const read = await getRecords(
    store,
    missing.map((i) => picked[i]!.key[picked[i]!.key.length - 1] as string),
  );
  missing.forEach((at, i) => out[at] = read[i]!);
  return out as RecordEntry[];
}

async function getRecords(store: Store, ids: string[]): Promise<RecordEntry[]> {
  const out: RecordEntry[] = [];
  const chunks: string[][] = [];
  for (let i = 0; i < ids.length; i += KV_MAX_GET_MANY) {
    chunks.push(ids.slice(i, i + KV_MAX_GET_MANY));
  }
  const results = await Promise.all(
    chunks.map((c) =>
      store.kv.getMany(c.map((id) => store.keys.task(id)), { consistency: "strong" })
    ),
  );
  for (const entries of results) {
    for (const e of entries) {
      if (e.versionstamp === null) {
        out.push({ record: null, versionstamp: null });
        continue;
      }
      try {
        out.push({ record: TaskRecord.decode(e.key, e.value), versionstamp: e.versionstamp });
      } catch (error) {
        out.push({
          record: null,
          versionstamp: e.versionstamp,
          error: error as Error,
          value: e.value,
        });
      }
    }
  }
  return out;
}
