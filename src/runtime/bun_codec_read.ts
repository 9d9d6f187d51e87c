/**
 * The read half of the `@deno/kv` wire codec (see `bun_codec.ts`): the native binding's answers
 * to a snapshot read and an atomic write, decoded to the objects the package's own decoders
 * give. Unknown fields are skipped; a message cut short is refused.
 *
 * @module
 */
import type {
  AtomicWriteOutputMessage,
  KvEntryMessage,
  SnapshotReadOutputMessage,
} from "./bun_codec.ts";

const ENCODING_NAMES = ["VE_UNSPECIFIED", "VE_V8", "VE_LE64", "VE_BYTES"];
const WRITE_STATUS: Record<number, string> = {
  0: "AW_UNSPECIFIED",
  1: "AW_SUCCESS",
  2: "AW_CHECK_FAILURE",
  5: "AW_WRITE_DISABLED",
};
const READ_STATUS: Record<number, string> = {
  0: "SR_UNSPECIFIED",
  1: "SR_SUCCESS",
  2: "SR_READ_DISABLED",
};

// Wire types.
const VARINT = 0;
const FIXED64 = 1;
const LENGTH = 2;
const FIXED32 = 5;

/** Reads protobuf fields from `bytes[start, end)`. */
class Reader {
  readonly #b: Uint8Array;
  pos: number;
  readonly end: number;

  constructor(bytes: Uint8Array, start = 0, end = bytes.byteLength) {
    this.#b = bytes;
    this.pos = start;
    this.end = end;
  }

  get more(): boolean {
    return this.pos < this.end;
  }

  /** A varint as a number (exact up to 2^53; only tags, lengths, enums and bools are read). */
  varint(): number {
    let n = 0;
    let scale = 1;
    for (;;) {
      if (this.pos >= this.end) throw new RangeError("A KV answer ends inside a varint");
      const byte = this.#b[this.pos++]!;
      n += (byte & 127) * scale;
      if (byte < 128) return n;
      scale *= 128;
    }
  }

  /** The bounds of a length-delimited field's data; the reader moves past it. */
  span(): [number, number] {
    const len = this.varint();
    const start = this.pos;
    if (start + len > this.end) throw new RangeError("A KV answer ends inside a field");
    this.pos += len;
    return [start, this.pos];
  }

  bytes(): Uint8Array {
    const [s, e] = this.span();
    return this.#b.subarray(s, e);
  }

  sub(): Reader {
    const [s, e] = this.span();
    return new Reader(this.#b, s, e);
  }

  skip(wire: number): void {
    if (wire === VARINT) this.varint();
    else if (wire === FIXED64) this.pos += 8;
    else if (wire === LENGTH) this.span();
    else if (wire === FIXED32) this.pos += 4;
    else throw new RangeError(`Unknown wire type ${wire} in a KV answer`);
  }
}

function decodeEntry(r: Reader): KvEntryMessage {
  const entry: KvEntryMessage = {
    key: new Uint8Array(),
    value: new Uint8Array(),
    encoding: "VE_UNSPECIFIED",
    versionstamp: new Uint8Array(),
  };
  while (r.more) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === LENGTH) entry.key = r.bytes();
    else if (field === 2 && wire === LENGTH) entry.value = r.bytes();
    else if (field === 3 && wire === VARINT) {
      entry.encoding = ENCODING_NAMES[r.varint()] ?? entry.encoding;
    } else if (field === 4 && wire === LENGTH) entry.versionstamp = r.bytes();
    else r.skip(wire);
  }
  return entry;
}

/** Decodes a snapshot read's answer as `@deno/kv`'s `SnapshotReadOutput.decodeBinary` does. */
export function decodeSnapshotReadOutput(bytes: Uint8Array): SnapshotReadOutputMessage {
  const out: SnapshotReadOutputMessage = {
    ranges: [],
    readDisabled: false,
    readIsStronglyConsistent: false,
    status: "SR_UNSPECIFIED",
  };
  const r = new Reader(bytes);
  while (r.more) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === LENGTH) {
      const range = r.sub();
      const values: KvEntryMessage[] = [];
      while (range.more) {
        const t = range.varint();
        if (t >>> 3 === 1 && (t & 7) === LENGTH) values.push(decodeEntry(range.sub()));
        else range.skip(t & 7);
      }
      out.ranges.push({ values });
    } else if (field === 2 && wire === VARINT) out.readDisabled = r.varint() !== 0;
    else if (field === 4 && wire === VARINT) out.readIsStronglyConsistent = r.varint() !== 0;
    else if (field === 8 && wire === VARINT) {
      out.status = READ_STATUS[r.varint()] ?? "SR_UNSPECIFIED";
    } else r.skip(wire);
  }
  return out;
}

/** Decodes an atomic write's answer as `@deno/kv`'s `AtomicWriteOutput.decodeBinary` does. */
export function decodeAtomicWriteOutput(bytes: Uint8Array): AtomicWriteOutputMessage {
  const out: AtomicWriteOutputMessage = {
    status: "AW_UNSPECIFIED",
    versionstamp: new Uint8Array(),
    failedChecks: [],
  };
  const r = new Reader(bytes);
  while (r.more) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === VARINT) out.status = WRITE_STATUS[r.varint()] ?? "AW_UNSPECIFIED";
    else if (field === 2 && wire === LENGTH) out.versionstamp = r.bytes();
    else if (field === 4 && wire === VARINT) out.failedChecks.push(r.varint() >>> 0);
    else if (field === 4 && wire === LENGTH) {
      // packed
      const packed = r.sub();
      while (packed.more) out.failedChecks.push(packed.varint() >>> 0);
    } else r.skip(wire);
  }
  return out;
}
