/**
 * Get: one task by id or human name, with chunked payloads and live progress filled in.
 *
 * @module
 */
import { TaskRecord } from "../task/record.ts";
import { TaskId } from "../task/task_id.ts";
import { readChunks } from "./chunks.ts";
import { InvalidTaskRefError } from "./errors.ts";
import { KV_MAX_GET_MANY } from "./limits.ts";
import { idsNamed } from "./names.ts";
import type { Store } from "./store.ts";

const decoder = new TextDecoder();

/** Resolves an id or a human name to an id; null when no task has that name. */
export async function resolveTaskRef(store: Store, ref: string): Promise<string | null> {
  if (TaskId.isId(ref)) return ref.toLowerCase();
  if (!TaskId.isHumanName(ref)) throw new InvalidTaskRefError(ref);
  return (await idsNamed(store, ref)).at(-1) ?? null;
}

/** Reads the raw record and its versionstamp; null when absent. */
export async function getRecord(
  store: Store,
  id: string,
): Promise<{ record: TaskRecord; versionstamp: string } | null> {
  const entry = await store.kv.get(store.keys.task(id), { consistency: "strong" });
  if (entry.versionstamp === null) return null;
  return { record: TaskRecord.decode(entry.key, entry.value), versionstamp: entry.versionstamp };
}

/**
 * Fetches a task by id or human name, with its args and result loaded and its latest progress.
 * Null when there is no such task.
 *
 * @throws {CorruptRecordError} when the stored value is not a record.
 */
export async function getTask(store: Store, ref: string): Promise<TaskRecord | null> {
  const id = await resolveTaskRef(store, ref);
  if (id === null) return null;
  const [entry, progress] = await store.kv.getMany([store.keys.task(id), store.keys.progress(id)]);
  if (entry!.versionstamp === null) return null;
  let record = TaskRecord.decode(entry!.key, entry!.value);
  if (record.argsChunks > 0 && record.args === null) {
    const bytes = await readChunks(store, id, "args", record.argsChunks);
    record = record.loaded({ args: JSON.parse(decoder.decode(bytes)) });
  }
  if (record.resultChunks > 0 && record.resultJson === null) {
    const bytes = await readChunks(store, id, "result", record.resultChunks, record.resultBlob);
    record = record.loaded({ resultJson: decoder.decode(bytes) });
  }
  if (progress!.versionstamp !== null && progress!.value instanceof Uint8Array) {
    try {
      record = record.loaded({ progress: JSON.parse(decoder.decode(progress!.value)) });
    } catch {
      // a damaged progress value is only a display matter
    }
  }
  return record;
}

/**
 * Reads task records by id in batches of `getMany`, skipping missing and damaged ones (a damaged
 * record is reported where it is listed).
 */
export async function readRecords(
  store: Store,
  ids: readonly string[],
  consistency: Deno.KvConsistencyLevel = "eventual",
): Promise<TaskRecord[]> {
  const out: TaskRecord[] = [];
  for (let i = 0; i < ids.length; i += KV_MAX_GET_MANY) {
    const part = ids.slice(i, i + KV_MAX_GET_MANY);
    const entries = await store.kv.getMany(part.map((id) => store.keys.task(id)), { consistency });
    for (const e of entries) {
      if (e.versionstamp === null) continue;
      try {
        out.push(TaskRecord.decode(e.key, e.value));
      } catch {
        // damaged: `kvq doctor` reports it
      }
    }
  }
  return out;
}

/** The records among tasks `ids` that are finished (a strong read). */
export async function readFinished(store: Store, ids: readonly string[]): Promise<TaskRecord[]> {
  return (await readRecords(store, ids, "strong")).filter((r) => r.finished);
}
