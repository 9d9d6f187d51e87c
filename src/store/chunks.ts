/**
 * Large payloads (args or result past the inline limit) stored in chunks under their own keys,
 * in commits of their own before the record that points at them.
 *
 * @module
 */
import { CHUNK_BYTES, KV_MAX_COMMIT_BYTES } from "./limits.ts";
import type { Store } from "./store.ts";
import { commitAtomic } from "./commit.ts";

/** Raised when a payload is over the configured ceiling. */
export class PayloadTooLargeError extends RangeError {
  constructor(what: string, bytes: number, limit: number) {
    super(
      `${what} is ${formatBytes(bytes)}, over the ${
        formatBytes(limit)
      } limit (maxPayloadBytes). Store the data elsewhere and pass a reference, or raise the limit.`,
    );
    this.name = "PayloadTooLargeError";
  }
}

/** Renders a byte count for messages. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

const PER_COMMIT = Math.max(1, Math.floor((KV_MAX_COMMIT_BYTES - 16 * 1024) / CHUNK_BYTES));

/**
 * Writes `bytes` in chunks for task `id`; returns the chunk count. A result is written under
 * `blob`, an id the record then names, so two writers never share chunk keys.
 */
export async function writeChunks(
  store: Store,
  id: string,
  part: "args" | "result",
  bytes: Uint8Array,
  blob: string | null = null,
): Promise<number> {
  const count = Math.ceil(bytes.length / CHUNK_BYTES);
  for (let first = 0; first < count; first += PER_COMMIT) {
    const atomic = store.kv.atomic();
    for (let i = first; i < Math.min(count, first + PER_COMMIT); i++) {
      atomic.set(
        blob === null ? store.keys.blob(id, part, i) : store.keys.resultBlob(id, blob, i),
        bytes.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES),
      );
    }
    const res = await commitAtomic(atomic);
    if (!res.ok) throw new Error(`Writing chunks of task ${id} failed; try again.`);
  }
  return count;
}

/** Reads a chunked payload back. */
export async function readChunks(
  store: Store,
  id: string,
  part: "args" | "result",
  count: number,
  blob: string | null = null,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const prefix = blob === null ? store.keys.blobs(id, part) : store.keys.resultBlobPrefix(id, blob);
  for await (const entry of store.kv.list<Uint8Array>({ prefix })) {
    // Results written before blob ids: numbered chunks right under the part.
    if (blob === null && typeof entry.key[entry.key.length - 1] !== "number") continue;
    if (blob === null && entry.key.length !== prefix.length + 1) continue;
    parts.push(entry.value);
  }
  if (parts.length !== count) {
    throw new Error(
      `Task ${id} has ${parts.length} of ${count} ${part} chunks stored; the payload is damaged.`,
    );
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Deletes a chunked payload, every blob of it (its own commits; chunks are never checked). */
export async function deleteChunks(
  store: Store,
  id: string,
  part: "args" | "result",
  blob: string | null = null,
): Promise<void> {
  let atomic = store.kv.atomic();
  let n = 0;
  const prefix = blob === null ? store.keys.blobs(id, part) : store.keys.resultBlobPrefix(id, blob);
  for await (const entry of store.kv.list({ prefix })) {
    atomic.delete(entry.key);
    if (++n % PER_COMMIT === 0) {
      await commitAtomic(atomic);
      atomic = store.kv.atomic();
    }
  }
  if (n % PER_COMMIT !== 0) await commitAtomic(atomic);
}
