/**
 * A fast wire codec for `@deno/kv` on Bun; this file writes, `bun_codec_read.ts` reads. The
 * package talks to its native SQLite binding in KV Connect protobuf messages, built by a general
 * protobuf runtime that makes a 64-bit `Long` object for every tag, length and number. A W1
 * profile of a Bun cluster spent about a third of its main thread there. These modules write
 * and read the six messages a local KV file uses (`AtomicWrite`, `SnapshotRead` and their
 * outputs) directly, byte for byte as the package does (see the test, which compares them);
 * `bun_fast_kv.ts` puts them in place of the package's codec on a local KV. Remote KV (KV
 * Connect over HTTP) keeps the package's own.
 *
 * Field numbers are those of `com.deno.kv.datapath` in `@deno/kv` 0.14.
 *
 * @module
 */

/** A check of an atomic write, as `@deno/kv` builds it. */
export interface CheckMessage {
  key: Uint8Array;
  versionstamp?: Uint8Array;
}

/** A mutation of an atomic write, as `@deno/kv` builds it. */
export interface MutationMessage {
  key: Uint8Array;
  value?: { data: Uint8Array; encoding: string };
  mutationType: string;
  expireAtMs: string;
  sumMin: Uint8Array;
  sumMax: Uint8Array;
  sumClamp: boolean;
}

/** An enqueue of an atomic write, as `@deno/kv` builds it. */
export interface EnqueueMessage {
  payload: Uint8Array;
  deadlineMs: string;
  keysIfUndelivered: Uint8Array[];
  backoffSchedule: number[];
}

/** An atomic write request. */
export interface AtomicWriteMessage {
  checks: CheckMessage[];
  mutations: MutationMessage[];
  enqueues: EnqueueMessage[];
}

/** One range of a snapshot read. */
export interface ReadRangeMessage {
  start: Uint8Array;
  end: Uint8Array;
  limit: number;
  reverse: boolean;
}

/** A snapshot read request. */
export interface SnapshotReadMessage {
  ranges: ReadRangeMessage[];
}

/** One entry read. */
export interface KvEntryMessage {
  key: Uint8Array;
  value: Uint8Array;
  encoding: string;
  versionstamp: Uint8Array;
}

/** What a snapshot read answers. */
export interface SnapshotReadOutputMessage {
  ranges: { values: KvEntryMessage[] }[];
  readDisabled: boolean;
  readIsStronglyConsistent: boolean;
  status: string;
}

/** What an atomic write answers. */
export interface AtomicWriteOutputMessage {
  status: string;
  versionstamp: Uint8Array;
  failedChecks: number[];
}

const MUTATION_TYPES: Record<string, number> = {
  M_UNSPECIFIED: 0,
  M_SET: 1,
  M_DELETE: 2,
  M_SUM: 3,
  M_MAX: 4,
  M_MIN: 5,
  M_SET_SUFFIX_VERSIONSTAMPED_KEY: 9,
};
const ENCODINGS: Record<string, number> = { VE_UNSPECIFIED: 0, VE_V8: 1, VE_LE64: 2, VE_BYTES: 3 };

// Wire types written.
const VARINT = 0;
const LENGTH = 2;

/** Bytes of a varint of a non-negative safe integer, or of a 64-bit two's complement. */
function varintSize(n: number): number {
  if (n < 0) return 10;
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** A 64-bit integer field given as decimal text, as a number when it is a safe one. */
function int64(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) {
    throw new RangeError(`A 64-bit field outside the safe integers: ${text}`);
  }
  return n;
}

/** Writes messages into one buffer sized up front. */
class Writer {
  readonly bytes: Uint8Array;
  pos = 0;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
  }

  varint(n: number): void {
    const b = this.bytes;
    if (n < 0) {
      // int32/int64 negatives: ten bytes of two's complement.
      let big = BigInt.asUintN(64, BigInt(n));
      for (let i = 0; i < 9; i++) {
        b[this.pos++] = Number(big & 127n) | 128;
        big >>= 7n;
      }
      b[this.pos++] = Number(big);
      return;
    }
    while (n >= 128) {
      b[this.pos++] = (n % 128) | 128;
      n = Math.floor(n / 128);
    }
    b[this.pos++] = n;
  }

  tag(field: number, wire: number): void {
    this.bytes[this.pos++] = (field << 3) | wire;
  }

  lengthField(field: number, data: Uint8Array): void {
    this.tag(field, LENGTH);
    this.varint(data.byteLength);
    this.bytes.set(data, this.pos);
    this.pos += data.byteLength;
  }

  varintField(field: number, n: number): void {
    this.tag(field, VARINT);
    this.varint(n);
  }
}

/** A field of bytes: tag, length, data. */
function lengthSize(data: Uint8Array): number {
  return 1 + varintSize(data.byteLength) + data.byteLength;
}

function checkSize(c: CheckMessage): number {
  return lengthSize(c.key) + (c.versionstamp === undefined ? 0 : lengthSize(c.versionstamp));
}

function valueSize(v: { data: Uint8Array; encoding: string }): number {
  return lengthSize(v.data) + 1 + varintSize(code(ENCODINGS, v.encoding, "value encoding"));
}

function mutationSize(m: MutationMessage): number {
  let size = lengthSize(m.key);
  if (m.value !== undefined) {
    const inner = valueSize(m.value);
    size += 1 + varintSize(inner) + inner;
  }
  size += 1 + varintSize(code(MUTATION_TYPES, m.mutationType, "mutation type"));
  size += 1 + varintSize(int64(m.expireAtMs));
  return size + lengthSize(m.sumMin) + lengthSize(m.sumMax) + 2;
}

function enqueueSize(e: EnqueueMessage): number {
  let size = lengthSize(e.payload) + 1 + varintSize(int64(e.deadlineMs));
  for (const k of e.keysIfUndelivered) size += lengthSize(k);
  for (const ms of e.backoffSchedule) size += 1 + varintSize(ms >>> 0);
  return size;
}

function code(table: Record<string, number>, name: string, what: string): number {
  const n = table[name];
  if (n === undefined) throw new TypeError(`Unknown ${what}: ${name}`);
  return n;
}

/** Encodes an atomic write as `@deno/kv`'s `AtomicWrite.encodeBinary` does. */
export function encodeAtomicWrite(write: AtomicWriteMessage): Uint8Array {
  const checkSizes = write.checks.map(checkSize);
  const mutationSizes = write.mutations.map(mutationSize);
  const enqueueSizes = write.enqueues.map(enqueueSize);
  let total = 0;
  for (const s of checkSizes) total += 1 + varintSize(s) + s;
  for (const s of mutationSizes) total += 1 + varintSize(s) + s;
  for (const s of enqueueSizes) total += 1 + varintSize(s) + s;
  const w = new Writer(total);
  write.checks.forEach((c, i) => {
    w.tag(1, LENGTH);
    w.varint(checkSizes[i]!);
    w.lengthField(1, c.key);
    if (c.versionstamp !== undefined) w.lengthField(2, c.versionstamp);
  });
  write.mutations.forEach((m, i) => {
    w.tag(2, LENGTH);
    w.varint(mutationSizes[i]!);
    w.lengthField(1, m.key);
    if (m.value !== undefined) {
      w.tag(2, LENGTH);
      w.varint(valueSize(m.value));
      w.lengthField(1, m.value.data);
      w.varintField(2, ENCODINGS[m.value.encoding]!);
    }
    w.varintField(3, MUTATION_TYPES[m.mutationType]!);
    w.varintField(4, int64(m.expireAtMs));
    w.lengthField(5, m.sumMin);
    w.lengthField(6, m.sumMax);
    w.varintField(7, m.sumClamp ? 1 : 0);
  });
  write.enqueues.forEach((e, i) => {
    w.tag(3, LENGTH);
    w.varint(enqueueSizes[i]!);
    w.lengthField(1, e.payload);
    w.varintField(2, int64(e.deadlineMs));
    for (const k of e.keysIfUndelivered) w.lengthField(3, k);
    for (const ms of e.backoffSchedule) w.varintField(4, ms >>> 0);
  });
  return w.bytes;
}

/** Encodes a snapshot read as `@deno/kv`'s `SnapshotRead.encodeBinary` does. */
export function encodeSnapshotRead(read: SnapshotReadMessage): Uint8Array {
  const sizes = read.ranges.map((r) =>
    lengthSize(r.start) + lengthSize(r.end) + 1 + varintSize(r.limit | 0) + 2
  );
  let total = 0;
  for (const s of sizes) total += 1 + varintSize(s) + s;
  const w = new Writer(total);
  read.ranges.forEach((r, i) => {
    w.tag(1, LENGTH);
    w.varint(sizes[i]!);
    w.lengthField(1, r.start);
    w.lengthField(2, r.end);
    w.varintField(3, r.limit | 0);
    w.varintField(4, r.reverse ? 1 : 0);
  });
  return w.bytes;
}

export { decodeAtomicWriteOutput, decodeSnapshotReadOutput } from "./bun_codec_read.ts";
