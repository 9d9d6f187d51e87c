/**
 * The fast `@deno/kv` wire codec (`src/runtime/bun_codec.ts`) writes each request byte for byte
 * as the package's own protobuf runtime does, and reads the native binding's answers to the same
 * objects, for every kind of check, mutation, enqueue and read kvq makes.
 */
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type KvKey, KvU64, makeLimitedV8Serializer, openKv } from "@deno/kv";
import {
  decodeAtomicWriteOutput,
  decodeSnapshotReadOutput,
  encodeAtomicWrite,
  encodeSnapshotRead,
} from "../../src/runtime/bun_codec.ts";
import { speedUpNapiKv } from "../../src/runtime/bun_fast_kv.ts";

const bytes = (...b: number[]) => new Uint8Array(b);

test("encodeAtomicWrite() writes protobuf by hand: a check and a set", () => {
  const out = encodeAtomicWrite({
    checks: [{ key: bytes(2, 0x61, 0) }],
    mutations: [{
      key: bytes(2, 0x62, 0),
      value: { data: bytes(7), encoding: "VE_BYTES" },
      mutationType: "M_SET",
      expireAtMs: "300",
      sumMin: new Uint8Array(),
      sumMax: new Uint8Array(),
      sumClamp: false,
    }],
    enqueues: [],
  });
  assert.deepEqual([...out], [
    // checks: field 1, 5 bytes: key (field 1, 3 bytes)
    0x0a,
    5,
    0x0a,
    3,
    2,
    0x61,
    0,
    // mutations: field 2, 23 bytes
    0x12,
    23,
    0x0a,
    3,
    2,
    0x62,
    0, // key
    0x12,
    5,
    0x0a,
    1,
    7,
    0x10,
    3, // value: data [7], encoding VE_BYTES (3)
    0x18,
    1, // M_SET
    0x20,
    0xac,
    0x02, // expireAtMs 300
    0x2a,
    0,
    0x32,
    0, // sumMin, sumMax
    0x38,
    0, // sumClamp
  ]);
});

test("the decoders skip unknown fields and read packed failed checks", () => {
  const write = decodeAtomicWriteOutput(bytes(0x08, 2, 0x1a, 1, 9, 0x22, 2, 0, 3));
  assert.deepEqual(write, {
    status: "AW_CHECK_FAILURE",
    versionstamp: new Uint8Array(),
    failedChecks: [0, 3],
  });
  const read = decodeSnapshotReadOutput(bytes(0x0a, 0, 0x40, 1, 0x50, 5));
  assert.deepEqual(read, {
    ranges: [{ values: [] }],
    readDisabled: false,
    readIsStronglyConsistent: false,
    status: "SR_SUCCESS",
  });
  assert.throws(() => decodeAtomicWriteOutput(bytes(0x12, 5, 1)), /ends inside a field/);
});

const isDeno = "Deno" in globalThis;

test("on a real @deno/kv file, every request is the package's bytes and every answer its objects", {
  skip: isDeno ? "on Deno, @deno/kv opens Deno's own KV: the NAPI binding is Bun's" : false,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "kvq-codec-"));
  try {
    const kv = await openKv(join(dir, "kv.sqlite3"), makeLimitedV8Serializer());
    const raw = kv as unknown as {
      napi: Record<string, (id: number, b: Uint8Array, d: boolean) => Promise<Uint8Array>>;
      atomicWrite: (req: unknown) => Promise<unknown>;
      snapshotRead: (req: unknown) => Promise<unknown>;
    };
    // Record what the package sends and answers, then compare with this codec's.
    const seen = { writes: 0, reads: 0 };
    const napi = raw.napi;
    const sent: Uint8Array[] = [];
    const answered: Uint8Array[] = [];
    // The package's NAPI object is shared by every KV it opens: wrap it on a copy.
    raw.napi = { ...napi };
    const own = raw.napi;
    for (const name of ["atomicWrite", "snapshotRead"]) {
      const original = napi[name]!;
      own[name] = async (id, b, d) => {
        sent.push(b);
        const answer = await original(id, b, d);
        answered.push(answer);
        return answer;
      };
    }
    const check = (encode: (req: never) => Uint8Array, decode: (b: Uint8Array) => unknown) => {
      const original = encode === encodeAtomicWrite ? raw.atomicWrite : raw.snapshotRead;
      return async (req: unknown) => {
        const result = await original.call(raw, req);
        const mine = encode(req as never);
        assert.deepEqual([...mine], [...sent.at(-1)!], "request bytes");
        assert.deepEqual(decode(answered.at(-1)!), result, "answer");
        if (encode === encodeAtomicWrite) seen.writes++;
        else seen.reads++;
        return result;
      };
    };
    raw.atomicWrite = check(encodeAtomicWrite, decodeAtomicWriteOutput);
    raw.snapshotRead = check(encodeSnapshotRead, decodeSnapshotReadOutput);

    const big = new Uint8Array(60_000).fill(5);
    const r1 = await kv.atomic()
      .check({ key: ["a"], versionstamp: null })
      .set(["a"], new Uint8Array([1, 2, 3]))
      .set(["kvq", "default", "task", "0194a3b2-1c3d-7e4f-8a9b-0c1d2e3f4a5b"], big)
      .set(["t", 1, 2n, true, -5.5], "text", { expireIn: 60_000 })
      .sum(["n"], 7n)
      .max(["m"], 2n ** 63n)
      .min(["m2"], 1n)
      .delete(["gone"])
      .enqueue("ding", { delay: 1500, keysIfUndelivered: [["lost", 1]] })
      .commit();
    assert.equal(r1.ok, true);
    const a = await kv.get(["a"]);
    const failed = await kv.atomic().check({ key: ["a"], versionstamp: null }).set(["b"], "one")
      .commit();
    assert.equal(failed.ok, false);
    await kv.atomic().check({ key: ["a"], versionstamp: a.versionstamp }).delete(["a"]).commit();
    await kv.getMany([["t", 1, 2n, true, -5.5], ["n"], ["nothing"], ["m"]]);
    for (let i = 0; i < 30; i++) await kv.set(["list", i], new Uint8Array([i]));
    const listed = [];
    for await (const e of kv.list({ prefix: ["list"] }, { batchSize: 7 })) listed.push(e);
    assert.equal(listed.length, 30);
    const back = [];
    for await (
      const e of kv.list({ start: ["list", 3], end: ["list", 20] }, { reverse: true, limit: 5 })
    ) {
      back.push(e.key[1]);
    }
    assert.deepEqual(back, [19, 18, 17, 16, 15]);
    assert.ok(seen.writes >= 33 && seen.reads >= 6, JSON.stringify(seen));

    // Put in place, the codec serves the same file.
    const second = await openKv(join(dir, "kv.sqlite3"), makeLimitedV8Serializer());
    assert.equal(speedUpNapiKv(second), true);
    const got = await second.get<Uint8Array>([
      "kvq",
      "default",
      "task",
      "0194a3b2-1c3d-7e4f-8a9b-0c1d2e3f4a5b",
    ]);
    assert.deepEqual(new Uint8Array(got.value!), big);
    assert.equal(((await second.get<KvU64>(["n"])).value as KvU64).value, 7n);
    const ok = await second.atomic().check({ key: ["n"], versionstamp: null }).set(["x"], "one")
      .commit();
    assert.equal(ok.ok, false);
    second.close();
    kv.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** What a script of reads and writes sent to the native binding, and what each step gave. */
async function run(fast: boolean, dir: string): Promise<{ sent: number[][]; results: unknown[] }> {
  const kv = await openKv(join(dir, `${fast}.sqlite3`), makeLimitedV8Serializer());
  const raw = kv as unknown as {
    napi: Record<string, (id: number, b: Uint8Array, d: boolean) => Promise<Uint8Array>>;
  };
  const napi = raw.napi;
  const sent: number[][] = [];
  raw.napi = { ...napi };
  for (const name of ["atomicWrite", "snapshotRead"]) {
    const original = napi[name]!;
    raw.napi[name] = (id, b, d) => {
      sent.push([...b]);
      return original(id, b, d);
    };
  }
  if (fast) assert.equal(speedUpNapiKv(kv), true);
  const results: unknown[] = [];
  // Versionstamps differ from file to file: keep whether there is one.
  const plain = (e: { key: unknown; value: unknown; versionstamp: string | null }) => ({
    key: e.key,
    value: e.value instanceof KvU64
      ? `u64 ${e.value.value}`
      : e.value instanceof Uint8Array
      ? `bytes ${[...e.value]}`
      : e.value,
    stamped: e.versionstamp !== null && /^[0-9a-f]{20}$/.test(e.versionstamp),
  });
  const keys: KvKey[] = [
    ["kvq", "default", "task", "0194a3b2-1c3d-7e4f-8a9b-0c1d2e3f4a5b"],
    ["t", 1, -2.5, 0, 2n, -300n, 2n ** 70n, -(2n ** 70n), 0n, true, false],
    ["ü", "a\0b", new Uint8Array([0, 1, 0xff])],
    ["n"],
  ];
  const r = await kv.atomic()
    .check({ key: ["a"], versionstamp: null })
    .set(keys[0]!, new Uint8Array([1, 0, 2]))
    .set(keys[1]!, "text", { expireIn: 60_000 })
    .set(keys[2]!, null)
    .sum(keys[3]!, 7n)
    .max(["m"], 2n ** 63n)
    .min(["m2"], 1n)
    .delete(["gone"])
    .enqueue("ding", { delay: 1500, keysIfUndelivered: [["lost", 1]] })
    .enqueue("dong")
    .commit();
  results.push(r.ok);
  for (const key of keys) results.push(plain(await kv.get(key)));
  results.push((await kv.getMany([...keys, ["nothing"], ["m"], keys[0]!])).map(plain));
  // Lists: by prefix in small batches (with a key equal to the prefix, not listed), backwards
  // with a limit, between two keys, and on from a cursor.
  await kv.set(["list"], "the prefix itself");
  for (let i = 0; i < 30; i++) await kv.set(["list", i, `ü${i}`], new Uint8Array([i]));
  const listed = async (it: ReturnType<typeof kv.list>) => {
    const out = [];
    for await (const e of it) out.push(plain(e));
    return out;
  };
  results.push(await listed(kv.list({ prefix: ["list"] }, { batchSize: 7 })));
  results.push(await listed(kv.list({ prefix: ["list"] }, { reverse: true, limit: 5 })));
  results.push(await listed(kv.list({ start: ["list", 3], end: ["list", 20] }, { batchSize: 4 })));
  results.push(
    await listed(kv.list({ prefix: ["list"], start: ["list", 25] }, { reverse: true })),
  );
  const first = kv.list({ prefix: ["list"] }, { limit: 12 });
  assert.throws(() => first.cursor, /before first iteration/);
  await listed(first);
  results.push(first.cursor);
  results.push(await listed(kv.list({ prefix: ["list"] }, { cursor: first.cursor, limit: 4 })));
  results.push(
    await listed(kv.list({ prefix: ["list"] }, { cursor: first.cursor, reverse: true })),
  );
  results.push(await listed(kv.list({ prefix: ["none"] })));
  const a = await kv.get(keys[3]!);
  results.push((await kv.atomic().check({ key: keys[3]!, versionstamp: null }).commit()).ok);
  const checked = await kv.atomic().check(a).set(["b"], "one").commit();
  results.push(checked.ok);
  results.push((await kv.atomic().check(a).delete(["b"]).commit()).ok);
  kv.close();
  // The check with a versionstamp from this file is the one request that differs by file.
  sent.splice(-2, 2);
  return { sent, results };
}

test("with the fast codec, the same calls send the same bytes and give the same results", {
  skip: isDeno ? "on Deno, @deno/kv opens Deno's own KV: the NAPI binding is Bun's" : false,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "kvq-codec-"));
  const now = Date.now;
  // Fixed for both runs (deadlines and expiry times are in the requests), and ahead of the clock.
  const fixed = now() + 3_600_000;
  Date.now = () => fixed;
  try {
    const slow = await run(false, dir);
    const fast = await run(true, dir);
    assert.deepEqual(fast.results, slow.results);
    assert.deepEqual(fast.results.slice(0, 2), [true, {
      key: ["kvq", "default", "task", "0194a3b2-1c3d-7e4f-8a9b-0c1d2e3f4a5b"],
      value: "bytes 1,0,2",
      stamped: true,
    }]);
    // The prefix list: 30 entries, not the prefix's own key; the backward one: 5.
    assert.equal((fast.results[6] as unknown[]).length, 30);
    assert.equal((fast.results[7] as unknown[]).length, 5);
    assert.equal(fast.sent.length, slow.sent.length);
    fast.sent.forEach((bytes, i) => assert.deepEqual(bytes, slow.sent[i], `request ${i}`));
  } finally {
    Date.now = now;
    rmSync(dir, { recursive: true, force: true });
  }
});

test("speedUpNapiKv() leaves anything that is not a NAPI-based KV alone", () => {
  assert.equal(speedUpNapiKv(null), false);
  assert.equal(speedUpNapiKv({ atomicWrite() {}, snapshotRead() {} }), false);
});
