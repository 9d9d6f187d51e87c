/**
 * Backup and restore of everything kvq keeps in a KV store, as NDJSON: one JSON object per line,
 * in key order, so the same store always exports to the same bytes.
 *
 * The first line is a header, `{"kvq":"export","version":1}`. Every other line is one entry:
 *
 * - `key`: the key parts, types kept: a string or boolean as itself; a finite number as a JSON
 *   number, and `NaN`, `±Infinity` and `-0` as `{"number":"NaN"}`; a bigint as
 *   `{"bigint":"123"}`; a `Uint8Array` as `{"bytes":"<base64>"}`;
 * - then either `value`, the stored bytes in base64 (kvq stores every value as a `Uint8Array`),
 *   or `u64`, a `KvU64` counter as a decimal string.
 *
 * Expiry (`expireIn`) can't be read back from KV, so it is not kept. On import, cluster heartbeats
 * get the expiry a cluster gives them, so restored heartbeats of stopped clusters lapse.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { type Kv, runtime } from "../runtime/mod.ts";
import { CommitBudget, keyBytes } from "./budget.ts";
import { commitAtomic } from "./commit.ts";
import { isUndecodable } from "./kv.ts";
import { type RawRow, rawRows, VALUE_ENCODING } from "./raw_rows.ts";
import { copyStore } from "./read_copy.ts";
import { formatKey, ROOT } from "./keys.ts";
import { KV_MAX_KEY_BYTES, KV_MAX_VALUE_BYTES } from "./limits.ts";

/** The header line of an export. */
export const EXPORT_HEADER = '{"kvq":"export","version":1}';

/** How long a restored cluster heartbeat lives: what a cluster gives its own (30 s at least). */
export const RESTORED_HEARTBEAT_EXPIRE_MS = 30_000;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** One entry to restore. */
export interface ExportEntry {
  /** The key. */
  key: Deno.KvKey;
  /** The bytes of a value, or the number of a `KvU64` counter. */
  value: Uint8Array | bigint;
}

/**
 * A value the export kept as stored, because KV could not decode it (or another program wrote
 * it): import reports it and leaves it out.
 */
export interface RawExportEntry {
  key: Deno.KvKey;
  /** The stored bytes. */
  raw: Uint8Array;
  /** Their encoding in KV's table (1: V8 serialised). */
  encoding: number;
}

/** A line of an export that can't be read: says which line and why. */
export class ExportLineError extends Error {
  /** The 1-based line number. */
  readonly line: number;
  constructor(line: number, reason: string) {
    super(`Line ${line}: ${reason}`);
    this.name = "ExportLineError";
    this.line = line;
  }
}

function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

function fromBase64(text: unknown, what: string, line: number): Uint8Array {
  if (typeof text !== "string" || !BASE64.test(text)) {
    throw new ExportLineError(line, `${what} must be base64 text: found ${short(text)}`);
  }
  return new Uint8Array(Buffer.from(text, "base64"));
}

function short(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** A key part as JSON, its type kept. */
export function encodeKeyPart(part: Deno.KvKeyPart): unknown {
  if (typeof part === "string" || typeof part === "boolean") return part;
  if (typeof part === "number") {
    if (Number.isFinite(part) && !Object.is(part, -0)) return part;
    return { number: Object.is(part, -0) ? "-0" : String(part) };
  }
  if (typeof part === "bigint") return { bigint: part.toString() };
  if (part instanceof Uint8Array) return { bytes: toBase64(part) };
  throw new TypeError(`Unknown key part type: ${typeof part}`);
}

/** Reads a key part written by {@linkcode encodeKeyPart}. */
export function decodeKeyPart(value: unknown, line: number): Deno.KvKeyPart {
  if (typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") return value;
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const entries = Object.entries(value);
    if (entries.length === 1) {
      const [type, text] = entries[0]!;
      if (type === "bigint" && typeof text === "string" && /^-?\d+$/.test(text)) {
        return BigInt(text);
      }
      if (type === "number" && ["NaN", "Infinity", "-Infinity", "-0"].includes(text as string)) {
        return text === "-0" ? -0 : Number(text);
      }
      if (type === "bytes") return fromBase64(text, "a bytes key part", line);
    }
  }
  throw new ExportLineError(
    line,
    `a key part must be a string, number, boolean, {"bigint":"…"}, {"number":"NaN"} or {"bytes":"…"}: found ${
      short(value)
    }`,
  );
}

/** Whether `value` is a `KvU64` (Deno's, or `@deno/kv`'s on Bun). */
function isU64(value: unknown): value is Deno.KvU64 {
  return typeof value === "object" && value !== null &&
    typeof (value as { value?: unknown }).value === "bigint" && !(value instanceof Uint8Array);
}

/** A value under the kvq prefix that is neither bytes nor a `KvU64`: another program wrote it. */
export class ForeignValueError extends TypeError {
  constructor(key: Deno.KvKey, value: unknown) {
    super(
      `The value at ${formatKey(key)} is ${
        value === null ? "null" : typeof value
      }, not bytes or a KvU64 counter; kvq writes only those, so something else wrote it. ` +
        "Move it out of the kvq prefix and export again.",
    );
    this.name = "ForeignValueError";
  }
}

/** One export line for an entry. */
export function encodeEntry(key: Deno.KvKey, value: unknown): string {
  const k = JSON.stringify(key.map(encodeKeyPart));
  if (value instanceof Uint8Array) return `{"key":${k},"value":"${toBase64(value)}"}`;
  if (isU64(value)) return `{"key":${k},"u64":"${value.value}"}`;
  throw new ForeignValueError(key, value);
}

/**
 * One export line for a row read from the KV file: a value or counter as
 * {@linkcode encodeEntry} writes it, or else the stored bytes as they are, with their encoding
 * (`{"key": […], "raw": "<base64>", "encoding": 1}`), which import reports and leaves out.
 */
export function encodeRawRow(row: RawRow): { line: string; raw: boolean } {
  const k = JSON.stringify(row.key.map(encodeKeyPart));
  if (row.encoding === VALUE_ENCODING.bytes) {
    return { line: `{"key":${k},"value":"${toBase64(row.value)}"}`, raw: false };
  }
  if (row.encoding === VALUE_ENCODING.u64 && row.value.length === 8) {
    const n = new DataView(row.value.buffer, row.value.byteOffset, 8).getBigUint64(0, true);
    return { line: `{"key":${k},"u64":"${n}"}`, raw: false };
  }
  return {
    line: `{"key":${k},"raw":"${toBase64(row.value)}","encoding":${row.encoding}}`,
    raw: true,
  };
}

/** Options for {@linkcode exportLines}. */
export interface ExportOptions {
  /**
   * The path of the KV file, when local: a value KV can't decode (or one another program
   * wrote) is then kept raw, and the rest of the store read from a copy of the file. Needs
   * `release`.
   */
  file?: string;
  /**
   * Closes this process's KV handle of `file` before the copy is made: a process that opens
   * and closes another descriptor of an SQLite file it has open drops the locks SQLite holds
   * on it, which lets another process delete the journal under it. Required with `file`.
   */
  release?: () => void;
  /** Called once for each value kept raw, with its key. */
  onRaw?: (key: Deno.KvKey) => void;
}

/**
 * The lines of an export of every key under `["kvq"]`, header first, in key order. Reads in
 * pages; entries written meanwhile may or may not be included, so stop clusters first for a
 * consistent snapshot.
 *
 * @throws the error of KV's list at a value it can't decode, when `options.file` is not given.
 *   Once such a value is met, `kv` is closed (see {@linkcode ExportOptions.release}).
 */
export async function* exportLines(kv: Kv, options: ExportOptions = {}): AsyncGenerator<string> {
  yield EXPORT_HEADER;
  let last: Deno.KvKey | null = null;
  try {
    for await (const e of kv.list({ prefix: [ROOT] }, { batchSize: 500 })) {
      const line = encodeEntry(e.key, e.value);
      last = e.key;
      yield line;
    }
    return;
  } catch (error) {
    const past = isUndecodable(error) || error instanceof ForeignValueError;
    if (!options.file || !options.release || !past) throw error;
  }
  // KV's list can't go past that value: read the rest from the file's table, in a copy, with
  // this process's KV handle closed first (see ExportOptions.release).
  options.release();
  using copy = copyStore(options.file);
  for await (const row of rawRows(copy.path, [ROOT], last)) {
    const { line, raw } = encodeRawRow(row);
    if (raw) options.onRaw?.(row.key);
    yield line;
  }
}

/**
 * Reads one export line (1-based `line`): the header when `line` is 1.
 *
 * @returns the entry (a raw one for a value kept as stored), or null for the header or a blank
 *   line.
 * @throws {ExportLineError} naming the line and what is wrong.
 */
export function parseExportLine(
  text: string,
  line: number,
): ExportEntry | RawExportEntry | null {
  if (text.trim() === "" && line !== 1) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ExportLineError(line, `not JSON (${(error as Error).message})`);
  }
  if (line === 1) {
    const h = parsed as { kvq?: unknown; version?: unknown };
    if (h?.kvq !== "export") {
      throw new ExportLineError(
        line,
        `not a kvq export: the first line must be ${EXPORT_HEADER} (made by kvq export)`,
      );
    }
    if (h.version !== 1) {
      throw new ExportLineError(line, `export version ${short(h.version)} is not supported (1 is)`);
    }
    return null;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ExportLineError(line, `an entry must be an object with key and value or u64`);
  }
  const { key, value, u64, raw, encoding, ...rest } = parsed as Record<string, unknown>;
  const extra = Object.keys(rest);
  if (extra.length > 0) throw new ExportLineError(line, `unknown field ${short(extra[0])}`);
  if (!Array.isArray(key) || key.length === 0) {
    throw new ExportLineError(line, `key must be a non-empty array: found ${short(key)}`);
  }
  const parts = key.map((p) => decodeKeyPart(p, line));
  if (parts[0] !== ROOT) {
    throw new ExportLineError(line, `the key ${formatKey(parts)} is not under ["${ROOT}"]`);
  }
  const keyBytes = parts.reduce<number>(
    (n, p) => n + (p instanceof Uint8Array ? p.length : String(p).length) + 2,
    0,
  );
  if (keyBytes > KV_MAX_KEY_BYTES) {
    throw new ExportLineError(line, `the key is longer than ${KV_MAX_KEY_BYTES} bytes`);
  }
  if (raw !== undefined) {
    if (value !== undefined || u64 !== undefined || !Number.isInteger(encoding)) {
      throw new ExportLineError(line, `a raw entry has key, raw (base64) and encoding alone`);
    }
    return { key: parts, raw: fromBase64(raw, "raw", line), encoding: encoding as number };
  }
  if (encoding !== undefined) throw new ExportLineError(line, `unknown field "encoding"`);
  if ((value === undefined) === (u64 === undefined)) {
    throw new ExportLineError(line, `an entry needs exactly one of value (base64) or u64`);
  }
  if (u64 !== undefined) {
    if (typeof u64 !== "string" || !/^\d+$/.test(u64) || BigInt(u64) >= 1n << 64n) {
      throw new ExportLineError(
        line,
        `u64 must be a decimal string under 2^64: found ${short(u64)}`,
      );
    }
    return { key: parts, value: BigInt(u64) };
  }
  const bytes = fromBase64(value, "value", line);
  if (bytes.length > KV_MAX_VALUE_BYTES) {
    throw new ExportLineError(line, `the value is larger than ${KV_MAX_VALUE_BYTES} bytes`);
  }
  return { key: parts, value: bytes };
}

function isHeartbeat(key: Deno.KvKey): boolean {
  return key.length === 4 && key[0] === ROOT && key[2] === "cluster";
}

/** Options for {@linkcode importEntries}. */
export interface ImportOptions {
  /** Called after each commit with the number of entries written so far. */
  onProgress?: (written: number) => void;
}

/**
 * Writes entries in batched commits (each within the KV limits of mutations and bytes).
 * Existing keys are overwritten. Resolves with the number written.
 */
export async function importEntries(
  kv: Kv,
  entries: AsyncIterable<ExportEntry> | Iterable<ExportEntry>,
  options: ImportOptions = {},
): Promise<number> {
  let atomic = kv.atomic();
  let mutations = 0;
  let written = 0;
  // A set counts its key twice, as KV counts it (see budget.ts); no reserve: nothing else is added.
  const budget = new CommitBudget({
    maxChecks: 1,
    reserve: { mutations: 0, bytes: 0 },
  });
  const flush = async () => {
    if (mutations === 0) return;
    const result = await commitAtomic(atomic);
    if (!result.ok) throw new Error("An import commit was refused; nothing of it was written.");
    written += mutations;
    options.onProgress?.(written);
    atomic = kv.atomic();
    mutations = 0;
    budget.reset();
  };
  for await (const { key, value } of entries) {
    const cost = {
      checks: 0,
      mutations: 1,
      bytes: 2 * keyBytes(key) + (value instanceof Uint8Array ? value.length : 8),
    };
    if (!budget.fits(cost)) await flush();
    budget.take(cost);
    if (typeof value === "bigint") atomic.set(key, runtime.u64(value));
    else if (isHeartbeat(key)) atomic.set(key, value, { expireIn: RESTORED_HEARTBEAT_EXPIRE_MS });
    else atomic.set(key, value);
    mutations++;
  }
  await flush();
  return written;
}

/** Whether the KV store holds any kvq key (an import into it would write over them). */
export async function holdsKvqData(kv: Kv): Promise<boolean> {
  for await (const _ of kv.list({ prefix: [ROOT] }, { limit: 1 })) return true;
  return false;
}
