/**
 * A faster `@deno/kv` on Bun, for a local KV file. The package builds every request through a
 * general protobuf runtime, packs keys an array per part and encodes a list cursor for every
 * entry listed; a Bun cluster's main thread spent most of its time there (W1: 8.6 CPU-s for
 * 20,000 no-ops, against 2.6 on Deno). This replaces, on the opened KV object only, the methods
 * every read and write goes through (`commit`, `get_`, `getMany_`, `listStream` and the two wire
 * calls) with kvq's codec (`bun_codec.ts`) and key codec (`kv_key_pack.ts`). The requests are
 * the package's bytes (see the test); the package's checks of the arguments, `watch` and the
 * queue are unchanged.
 *
 * @module
 */
import { KvU64 } from "@deno/kv";
import {
  type AtomicWriteMessage,
  type AtomicWriteOutputMessage,
  decodeAtomicWriteOutput,
  decodeSnapshotReadOutput,
  encodeAtomicWrite,
  encodeSnapshotRead,
  type MutationMessage,
  type SnapshotReadMessage,
  type SnapshotReadOutputMessage,
} from "./bun_codec.ts";
import { sameBytes } from "./bytes.ts";
import { packKey, unpackKey } from "./kv_key_pack.ts";

/** A mutation as the package's atomic builder collects it. */
interface BuiltMutation {
  type: string;
  key: unknown[];
  value?: unknown;
  expireIn?: number;
}

interface Entry {
  key: unknown[];
  value: unknown;
  versionstamp: string | null;
}

/** The parts of `@deno/kv`'s NAPI-based KV this module replaces or uses. */
interface NapiKv {
  napi: {
    atomicWrite(dbId: number, bytes: Uint8Array, debug: boolean): Promise<Uint8Array>;
    snapshotRead(dbId: number, bytes: Uint8Array, debug: boolean): Promise<Uint8Array>;
  };
  dbId: number;
  debug: boolean;
  encodeV8(value: unknown): Uint8Array;
  decodeV8(bytes: Uint8Array): unknown;
  atomicWrite(req: AtomicWriteMessage): Promise<AtomicWriteOutputMessage>;
  snapshotRead(req: SnapshotReadMessage, consistency?: string): Promise<SnapshotReadOutputMessage>;
  commit(
    checks: { key: unknown[]; versionstamp: string | null }[],
    mutations: BuiltMutation[],
    enqueues: { value: unknown; opts?: { delay?: number; keysIfUndelivered?: unknown[][] } }[],
  ): Promise<{ ok: false } | { ok: true; versionstamp: string }>;
  get_(key: unknown[]): Promise<Entry>;
  getMany_(keys: unknown[][]): Promise<Entry[]>;
  listStream(
    outCursor: { cursor?: string },
    selector: ListSelector,
    options?: ListOptions,
  ): AsyncGenerator<Entry>;
}

/** A list selector, as the package has checked it. */
type ListSelector = { prefix?: unknown[]; start?: unknown[]; end?: unknown[] };

/** List options, as the package has checked them. */
interface ListOptions {
  batchSize?: number;
  consistency?: string;
  cursor?: string;
  limit?: number;
  reverse?: boolean;
}

function isNapiKv(kv: unknown): kv is NapiKv {
  const k = kv as Partial<NapiKv> | null;
  return typeof k?.napi?.atomicWrite === "function" &&
    typeof k.napi.snapshotRead === "function" && typeof k.dbId === "number" &&
    typeof k.atomicWrite === "function" && typeof k.snapshotRead === "function" &&
    typeof k.commit === "function" && typeof k.get_ === "function" &&
    typeof k.getMany_ === "function" && typeof k.listStream === "function" &&
    typeof k.encodeV8 === "function" &&
    typeof k.decodeV8 === "function";
}

const MUTATION_TYPES: Record<string, string> = {
  delete: "M_DELETE",
  max: "M_MAX",
  min: "M_MIN",
  set: "M_SET",
  sum: "M_SUM",
};
const EMPTY = new Uint8Array();
const END = new Uint8Array([0xff]);
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function hex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += HEX[bytes[i]!];
  return out;
}

function unhex(text: string): Uint8Array {
  if (!/^(?:[0-9a-f]{2})*$/i.test(text)) throw new TypeError(`Invalid versionstamp: ${text}`);
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * Puts kvq's codec and key packer in place of the package's on a KV opened by `@deno/kv`'s
 * NAPI binding (a local file or `:memory:`). Returns whether it did: a remote KV, or a
 * package whose internals differ, is left as it is.
 */
export function speedUpNapiKv(kv: unknown): boolean {
  if (!isNapiKv(kv)) return false;
  const { napi, dbId } = kv;
  const debug = kv.debug === true;
  const value = (bytes: Uint8Array, encoding: string): unknown => {
    if (encoding === "VE_BYTES") return bytes;
    if (encoding === "VE_V8") return kv.decodeV8(bytes);
    if (encoding === "VE_LE64" && bytes.length === 8) {
      return new KvU64(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
    }
    throw new Error(`Unsupported encoding: ${encoding} [${[...bytes].join(", ")}]`);
  };
  const pack = (v: unknown): { data: Uint8Array; encoding: string } => {
    if (v instanceof KvU64) {
      const data = new Uint8Array(8);
      new DataView(data.buffer).setBigUint64(0, v.value, true);
      return { data, encoding: "VE_LE64" };
    }
    if (v instanceof Uint8Array) return { data: v, encoding: "VE_BYTES" };
    return { data: kv.encodeV8(v), encoding: "VE_V8" };
  };
  const mutation = (m: BuiltMutation): MutationMessage => ({
    key: packKey(m.key),
    mutationType: MUTATION_TYPES[m.type] ?? "M_UNSPECIFIED",
    ...(m.type === "delete" ? {} : { value: pack(m.value) }),
    expireAtMs: m.type === "set" && typeof m.expireIn === "number"
      ? String(Date.now() + m.expireIn)
      : "0",
    sumMin: EMPTY,
    sumMax: EMPTY,
    sumClamp: false,
  });

  kv.atomicWrite = async (req) =>
    decodeAtomicWriteOutput(await napi.atomicWrite(dbId, encodeAtomicWrite(req), debug));
  kv.snapshotRead = async (req) =>
    decodeSnapshotReadOutput(await napi.snapshotRead(dbId, encodeSnapshotRead(req), debug));
  kv.commit = async (checks, mutations, enqueues) => {
    const write: AtomicWriteMessage = {
      checks: checks.map((c) =>
        c.versionstamp === null || c.versionstamp === undefined
          ? { key: packKey(c.key) }
          : { key: packKey(c.key), versionstamp: unhex(c.versionstamp) }
      ),
      mutations: mutations.map(mutation),
      enqueues: enqueues.map(({ value: v, opts }) => ({
        // As the package does: its retry schedule, whatever the caller asked.
        backoffSchedule: [100, 200, 400, 800],
        deadlineMs: `${Date.now() + (opts?.delay ?? 0)}`,
        keysIfUndelivered: (opts?.keysIfUndelivered ?? []).map(packKey),
        payload: kv.encodeV8(v),
      })),
    };
    const { status, versionstamp } = await kv.atomicWrite(write);
    if (status === "AW_CHECK_FAILURE") return { ok: false };
    if (status !== "AW_SUCCESS") throw new Error(`commit failed with status: ${status}`);
    return { ok: true, versionstamp: hex(versionstamp) };
  };
  kv.getMany_ = async (keys) => {
    const packed = keys.map(packKey);
    const res = await kv.snapshotRead({
      ranges: packed.map((start) => ({ start, end: END, limit: 1, reverse: false })),
    });
    const out: Entry[] = keys.map((key) => ({ key, value: null, versionstamp: null }));
    // One range a key, in order: its first entry is the key's when it exists.
    res.ranges.forEach((range, i) => {
      const entry = range.values[0];
      if (entry !== undefined && packed[i] !== undefined && sameBytes(entry.key, packed[i]!)) {
        out[i] = {
          key: keys[i]!,
          value: value(entry.value, entry.encoding),
          versionstamp: hex(entry.versionstamp),
        };
      }
    });
    return out;
  };
  kv.get_ = async (key) => (await kv.getMany_([key]))[0]!;
  kv.listStream = (outCursor, selector, options) =>
    listStream(kv, value, outCursor, selector, options);
  return true;
}

/** A list cursor as the package writes it: base64 of `{"lastYieldedKeyBytes": hex}`. */
function packCursor(key: Uint8Array): string {
  return btoa(JSON.stringify({ lastYieldedKeyBytes: hex(key) }));
}

function unpackCursor(cursor: string): Uint8Array {
  try {
    const { lastYieldedKeyBytes } = JSON.parse(atob(cursor));
    if (typeof lastYieldedKeyBytes === "string") return unhex(lastYieldedKeyBytes);
  } catch {
    // below
  }
  throw new Error("Invalid cursor");
}

/**
 * The package's `listStream`, with kvq's key codec, and its cursor made only when asked for
 * (the package encodes one for every entry listed).
 */
async function* listStream(
  kv: NapiKv,
  value: (bytes: Uint8Array, encoding: string) => unknown,
  outCursor: { cursor?: string },
  selector: ListSelector,
  { batchSize, cursor: given, limit, reverse = false }: ListOptions = {},
): AsyncGenerator<Entry> {
  let yielded = 0;
  if (typeof limit === "number" && yielded >= limit) return;
  let last = typeof given === "string" ? unpackCursor(given) : undefined;
  // As the package: no cursor before the first entry listed.
  let listed: Uint8Array | undefined;
  Object.defineProperty(outCursor, "cursor", {
    configurable: true,
    get: () => listed === undefined ? undefined : packCursor(listed),
  });
  const prefix = selector.prefix !== undefined ? packKey(selector.prefix) : undefined;
  for (;;) {
    let start: Uint8Array;
    let end: Uint8Array;
    if (prefix !== undefined) {
      start = selector.start !== undefined ? packKey(selector.start) : prefix;
      if (selector.end !== undefined) end = packKey(selector.end);
      else {
        end = new Uint8Array(prefix.length + 1);
        end.set(prefix);
        end[prefix.length] = 0xff;
      }
    } else {
      start = packKey(selector.start!);
      end = packKey(selector.end!);
    }
    if (reverse) end = last ?? end;
    else start = last ?? start;
    const batchLimit = Math.min(batchSize ?? 100, 500, limit ?? Number.MAX_SAFE_INTEGER) +
      (last ? 1 : 0);
    const res = await kv.snapshotRead({ ranges: [{ start, end, limit: batchLimit, reverse }] });
    let entries = 0;
    for (const range of res.ranges) {
      for (const entry of range.values) {
        // The cursor's own key, or a key equal to the prefix, is not listed.
        if (
          entries++ === 0 &&
          (last !== undefined && sameBytes(last, entry.key) ||
            prefix !== undefined && sameBytes(prefix, entry.key))
        ) continue;
        const key = unpackKey(entry.key) as unknown[];
        const v = value(entry.value, entry.encoding);
        last = listed = entry.key;
        yield { key, value: v, versionstamp: hex(entry.versionstamp) };
        yielded++;
        if (typeof limit === "number" && yielded >= limit) return;
      }
    }
    if (entries < batchLimit) return;
  }
}
