/**
 * The rows of a local KV file read straight from its SQLite table, for what KV itself can't
 * read: `kv.list` stops with an error at a value its engine can't decode, so `kvq export` reads
 * the rest of the store this way and keeps such a value's bytes as they are stored.
 *
 * Deno KV keeps each entry in the table `kv` (columns `k`, `v`, `v_encoding`, `expiration_ms`),
 * with the key in the ordered tuple encoding of FoundationDB, which {@linkcode encodeKvKey} and
 * {@linkcode decodeKvKey} implement for the part types KV allows. A value's encoding is 1 (V8
 * serialised), 2 (a `KvU64`, 8 bytes little-endian) or 3 (bytes as they are).
 *
 * Read only a copy made with `copyStore` (see `read_copy.ts`), never a file this process has
 * open through KV: closing any other descriptor of that file drops the locks KV holds on it.
 *
 * @module
 */

import { packKey, unpackKey } from "../runtime/kv_key_pack.ts";

/** The value encodings of Deno KV's SQLite table. */
export const VALUE_ENCODING = { v8: 1, u64: 2, bytes: 3 } as const;

/** The bytes of `key` as Deno KV orders and stores it (see `kv_key_pack.ts`). */
export function encodeKvKey(key: Deno.KvKey): Uint8Array {
  return packKey(key);
}

/**
 * The key stored as `bytes` (see `kv_key_pack.ts`).
 *
 * @throws {Error} when the bytes are not a key in KV's encoding.
 */
export function decodeKvKey(bytes: Uint8Array): Deno.KvKey {
  return unpackKey(bytes);
}

/** One row of the `kv` table. */
export interface RawRow {
  key: Deno.KvKey;
  /** The stored bytes of the value. */
  value: Uint8Array;
  /** How the value is encoded: see {@linkcode VALUE_ENCODING}. */
  encoding: number;
}

/**
 * The live rows of the KV file at `path` whose keys start with `prefix`, after `after` when
 * given, in key order. Expired rows (which KV no longer returns) are left out. Read through
 * `node:sqlite`, read-only, in one transaction: one state of the store.
 */
export async function* rawRows(
  path: string,
  prefix: Deno.KvKey,
  after: Deno.KvKey | null,
  now = Date.now(),
): AsyncGenerator<RawRow> {
  const { DatabaseSync } = await import("node:sqlite");
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const start = encodeKvKey(after ?? prefix);
    const end = new Uint8Array([...encodeKvKey(prefix), 0xff]);
    const rows = db.prepare(
      "select k, v, v_encoding, expiration_ms from kv where k > ? and k < ? order by k",
    ).iterate(start, end) as Iterable<
      { k: Uint8Array; v: Uint8Array; v_encoding: number; expiration_ms: number }
    >;
    for (const row of rows) {
      if (row.expiration_ms >= 0 && row.expiration_ms <= now) continue;
      yield {
        key: decodeKvKey(new Uint8Array(row.k)),
        value: new Uint8Array(row.v),
        encoding: Number(row.v_encoding),
      };
    }
  } finally {
    db.close();
  }
}
