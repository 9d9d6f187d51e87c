/**
 * KV keys packed to bytes as Deno KV orders and stores them (the FoundationDB tuple layer,
 * limited to bytes, strings, numbers, bigints and booleans; Deno's `ext/kv/codec.rs`), in one
 * buffer, and read back. It serves `@deno/kv` on Bun, whose own `packKey` makes an array per
 * part (about a tenth of a W1 cluster's main thread), and the reader of raw SQLite rows
 * (`raw_rows.ts`).
 *
 * The bytes are `@deno/kv`'s but for -0: the package packs it as 0, Deno (and this) apart.
 *
 * @module
 */

const BYTES = 1;
const STRING = 2;
const INT_ZERO = 20;
const INT_ARBITRARY_NEGATIVE = 11;
const INT_ARBITRARY_POSITIVE = 29;
const DOUBLE = 33;
const FALSE = 38;
const TRUE = 39;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Grows by doubling; `take()` copies out what was written. */
class KeyWriter {
  #b = new Uint8Array(256);
  pos = 0;

  room(n: number): Uint8Array {
    if (this.pos + n > this.#b.length) {
      const next = new Uint8Array(Math.max(this.#b.length * 2, this.pos + n));
      next.set(this.#b.subarray(0, this.pos));
      this.#b = next;
    }
    return this.#b;
  }

  byte(n: number): void {
    this.room(1)[this.pos++] = n;
  }

  /** `data` with each 0 written as 0 0xff, then a closing 0. */
  escaped(data: Uint8Array): void {
    const b = this.room(data.length * 2 + 1);
    for (let i = 0; i < data.length; i++) {
      const x = data[i]!;
      b[this.pos++] = x;
      if (x === 0) b[this.pos++] = 0xff;
    }
    b[this.pos++] = 0;
  }

  /** A string: ASCII without NUL directly, anything else through UTF-8. */
  string(text: string): void {
    const b = this.room(text.length + 2);
    b[this.pos++] = STRING;
    const start = this.pos;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 0 || c > 127) {
        this.pos = start;
        this.escaped(encoder.encode(text));
        return;
      }
      b[this.pos++] = c;
    }
    b[this.pos++] = 0;
  }

  take(): Uint8Array {
    return this.#b.slice(0, this.pos);
  }
}

const writer = new KeyWriter();
const double = new DataView(new ArrayBuffer(8));

/** The bytes of `key` as Deno KV orders and stores it. */
export function packKey(key: readonly unknown[]): Uint8Array {
  writer.pos = 0;
  for (const part of key) packPart(part);
  return writer.take();
}

function packPart(part: unknown): void {
  if (typeof part === "string") return writer.string(part);
  if (part instanceof Uint8Array) {
    writer.byte(BYTES);
    return writer.escaped(part);
  }
  if (part === false) return writer.byte(FALSE);
  if (part === true) return writer.byte(TRUE);
  if (typeof part === "number") {
    double.setFloat64(0, part, false);
    // Negative numbers (and -0): every bit flipped; others: the sign bit set.
    const negative = (double.getUint8(0) & 0x80) !== 0;
    const b = writer.room(9);
    b[writer.pos++] = DOUBLE;
    for (let i = 0; i < 8; i++) {
      const x = double.getUint8(i);
      b[writer.pos++] = negative ? 0xff - x : i === 0 ? x | 0x80 : x;
    }
    return;
  }
  if (typeof part === "bigint") return packBigint(part);
  throw new Error(`Unsupported keyPart: ${typeof part} ${part}`);
}

function packBigint(n: bigint): void {
  const neg = n < 0n;
  const abs = neg ? -n : n;
  let count = 0;
  for (let v = abs; v !== 0n; v >>= 8n) count++;
  const bytes: number[] = [];
  if (count <= 8) bytes.push(neg ? INT_ZERO - count : INT_ZERO + count);
  else bytes.push(neg ? INT_ARBITRARY_NEGATIVE : INT_ARBITRARY_POSITIVE, count);
  for (let i = count - 1; i >= 0; i--) bytes.push(Number((abs >> BigInt(8 * i)) & 0xffn));
  // A negative one's bytes after the type code are flipped (its length byte too).
  if (neg) { for (let i = 1; i < bytes.length; i++) bytes[i] = 0xff - bytes[i]!; }
  const b = writer.room(bytes.length);
  for (const x of bytes) b[writer.pos++] = x;
}

/**
 * The key stored as `bytes`.
 *
 * @throws {Error} when the bytes are not a key in KV's encoding.
 */
export function unpackKey(bytes: Uint8Array): Deno.KvKey {
  const key: Deno.KvKeyPart[] = [];
  let i = 0;
  const fail = (why: string): never => {
    const all = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    throw new Error(`Not a KV key (${why} at byte ${i}): ${all}`);
  };
  const take = (n: number) => {
    if (i + n > bytes.length) fail("cut short");
    const out = bytes.subarray(i, i + n);
    i += n;
    return out;
  };
  /** An escaped part's bytes up to its closing 0 (a 0 inside is written 0 0xff). */
  const unescaped = (): Uint8Array => {
    const start = i;
    let plain = true;
    for (;;) {
      if (i >= bytes.length) fail("cut short");
      if (bytes[i] !== 0) i++;
      else if (bytes[i + 1] === 0xff) {
        plain = false;
        i += 2;
      } else break;
    }
    const raw = bytes.subarray(start, i++);
    if (plain) return raw.slice();
    const out: number[] = [];
    for (let j = 0; j < raw.length; j++) {
      out.push(raw[j]!);
      if (raw[j] === 0) j++;
    }
    return new Uint8Array(out);
  };
  const magnitude = (b: Uint8Array, negative: boolean) =>
    b.reduce((n, x) => (n << 8n) | BigInt(negative ? ~x & 0xff : x), 0n);
  while (i < bytes.length) {
    const type = take(1)[0]!;
    if (type === BYTES) key.push(unescaped());
    else if (type === STRING) key.push(text(unescaped()));
    else if (type === FALSE || type === TRUE) key.push(type === TRUE);
    else if (type === DOUBLE) {
      const b = new Uint8Array(take(8));
      if (b[0]! & 0x80) b[0] = b[0]! & 0x7f;
      else for (let j = 0; j < 8; j++) b[j] = ~b[j]! & 0xff;
      key.push(new DataView(b.buffer).getFloat64(0));
    } else if (type === INT_ZERO) key.push(0n);
    else if (type > INT_ZERO && type < INT_ARBITRARY_POSITIVE) {
      key.push(magnitude(take(type - INT_ZERO), false));
    } else if (type === INT_ARBITRARY_POSITIVE) key.push(magnitude(take(take(1)[0]!), false));
    else if (type < INT_ZERO && type > INT_ARBITRARY_NEGATIVE) {
      key.push(-magnitude(take(INT_ZERO - type), true));
    } else if (type === INT_ARBITRARY_NEGATIVE) {
      key.push(-magnitude(take(~take(1)[0]! & 0xff), true));
    } else fail(`unknown part type 0x${type.toString(16).padStart(2, "0")}`);
  }
  return key;
}

/** UTF-8 text, ASCII without a decoder call. */
function text(b: Uint8Array): string {
  let ascii = "";
  for (let j = 0; j < b.length; j++) {
    const c = b[j]!;
    if (c > 127) return decoder.decode(b);
    ascii += String.fromCharCode(c);
  }
  return ascii;
}
