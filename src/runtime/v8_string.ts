/**
 * A string in V8's serialization format, of any format version from 13 to 16. Deno 2.9 writes
 * version 16; `@deno/kv`'s limited serializer on Bun reads only 15 and threw on every doorbell a
 * Deno process enqueued, which ended a Bun cluster's doorbell listener. The string tags have
 * not changed between these versions.
 *
 * @module
 */

const VERSION_TAG = 0xff;
const PADDING = 0x00;
const ONE_BYTE = 0x22; // '"': Latin-1
const TWO_BYTE = 0x63; // 'c': UTF-16LE

/** The string `bytes` hold, or null when they hold something else. */
export function decodeV8String(bytes: Uint8Array): string | null {
  if (bytes.length < 4 || bytes[0] !== VERSION_TAG || bytes[1]! < 13 || bytes[1]! > 16) {
    return null;
  }
  let pos = 2;
  while (bytes[pos] === PADDING) pos++;
  const tag = bytes[pos++];
  if (tag !== ONE_BYTE && tag !== TWO_BYTE) return null;
  let length = 0;
  for (let shift = 0;; shift += 7) {
    if (pos >= bytes.length || shift > 28) return null;
    const b = bytes[pos++]!;
    length += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) break;
  }
  if (pos + length !== bytes.length) return null;
  const body = bytes.subarray(pos);
  if (tag === ONE_BYTE) {
    let out = "";
    for (let i = 0; i < body.length; i++) out += String.fromCharCode(body[i]!);
    return out;
  }
  if (length % 2 !== 0) return null;
  return new TextDecoder("utf-16le").decode(body);
}
