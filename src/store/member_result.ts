/**
 * The outcome of a chain step or an iter member, kept under the chain's or iter's own keys so it
 * outlives the task record (`save: false`, retention). The value is UTF-8 JSON: `{ state,
 * result }` with the result spliced in as JSON text, `{ state, error }`, or for a result too
 * large for one value, `{ state, task, blob, chunks }` pointing at the task's result chunks.
 *
 * @module
 */
import type { ErrorInfo } from "../task/errors.ts";
import type { JsonValue } from "../task/json.ts";
import { CorruptRecordError, type TaskRecord } from "../task/record.ts";
import { readChunks } from "./chunks.ts";
import type { TaskState } from "./keys.ts";
import { INLINE_PAYLOAD_BYTES } from "./limits.ts";
import type { Store } from "./store.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A member's outcome, read back. */
export interface MemberResult {
  state: TaskState;
  result: JsonValue | null;
  error: ErrorInfo | null;
}

/** Encodes the outcome of finished `record` whose result is `resultJson` (null if none). */
export function encodeMemberResult(record: TaskRecord, resultJson: string | null): Uint8Array {
  if (record.state !== "succeeded") {
    return encoder.encode(JSON.stringify({ state: record.state, error: record.error }));
  }
  const json = resultJson ?? "null";
  if (
    json.length * 3 > INLINE_PAYLOAD_BYTES && encoder.encode(json).length > INLINE_PAYLOAD_BYTES
  ) {
    return encoder.encode(
      JSON.stringify({
        state: record.state,
        task: record.id,
        blob: record.resultBlob,
        chunks: record.resultChunks,
      }),
    );
  }
  return encoder.encode(`{"state":"succeeded","result":${json}}`);
}

/**
 * Decodes a member outcome, reading the task's chunks for a large result.
 *
 * @throws {CorruptRecordError} naming the key.
 */
export async function readMemberResult(
  store: Store,
  key: Deno.KvKey,
  value: unknown,
): Promise<MemberResult> {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(decoder.decode(value as Uint8Array));
  } catch (error) {
    throw new CorruptRecordError(key, `not UTF-8 JSON (${(error as Error).message})`);
  }
  const state = raw.state as TaskState;
  if (typeof raw.task === "string" && typeof raw.chunks === "number") {
    const bytes = await readChunks(
      store,
      raw.task,
      "result",
      raw.chunks,
      typeof raw.blob === "string" ? raw.blob : null,
    );
    return { state, result: JSON.parse(decoder.decode(bytes)), error: null };
  }
  return {
    state,
    result: (raw.result ?? null) as JsonValue | null,
    error: (raw.error ?? null) as ErrorInfo | null,
  };
}
