import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import fc from "fast-check";
import { runtime } from "../../src/runtime/mod.ts";
import { decodeKvKey, encodeKvKey, rawRows, VALUE_ENCODING } from "../../src/store/raw_rows.ts";
import { exportLines } from "../../src/store/export.ts";
import { copyStore } from "../../src/store/read_copy.ts";
import { tempDir } from "../cli/_helpers.ts";

const keyPart = fc.oneof(
  fc.string({ unit: "binary" }),
  fc.uint8Array({ maxLength: 12 }),
  // -0 is stored as 0 by `@deno/kv` on Bun (Deno keeps it): it is checked apart, below.
  fc.double().filter((x) => !Object.is(x, -0)),
  fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }),
  fc.boolean(),
);

test("the key codec gives the bytes KV stores, and reads them back, for every part type", async () => {
  using dir = tempDir();
  const keys: Deno.KvKey[] = fc.sample(fc.array(keyPart, { minLength: 1, maxLength: 4 }), {
    numRuns: 300,
    seed: 7,
  }).map((parts) => ["kvq", ...parts]);
  keys.push(["kvq", NaN], ["kvq", 2n ** 64n], ["kvq", -(2n ** 64n)], ["kvq", "a\0b"]);
  {
    const kv = await runtime.openKv(dir.kv);
    for (const key of keys) await kv.set(key, new Uint8Array([1]));
    await kv.set(["kvq", "counter"], runtime.u64(7n));
    kv.close();
  }
  using copy = copyStore(dir.kv);
  const rows = [];
  for await (const row of rawRows(copy.path, ["kvq"], null)) rows.push(row);
  const { DatabaseSync } = await import("node:sqlite");
  const db = new DatabaseSync(copy.path, { readOnly: true });
  const stored = new Set(
    (db.prepare("select hex(k) as h from kv").all() as { h: string }[]).map((r) => r.h),
  );
  db.close();
  const hex = (b: Uint8Array) => Buffer.from(b).toString("hex").toUpperCase();
  for (const key of keys) {
    assert.ok(stored.has(hex(encodeKvKey(key))), `encodes ${String(key)} as KV does`);
    assert.deepEqual(decodeKvKey(encodeKvKey(key)), key);
  }
  const distinct = new Set(keys.map((k) => hex(encodeKvKey(k)))).size;
  assert.equal(rows.length, distinct + 1, "every row under the prefix, once");
  assert.deepEqual(
    rows.find((r) => r.key[1] === "counter"),
    { key: ["kvq", "counter"], value: new Uint8Array([7, 0, 0, 0, 0, 0, 0, 0]), encoding: 2 },
  );
  assert.ok(Object.is(decodeKvKey(encodeKvKey([-0]))[0], -0));
  assert.notDeepEqual(encodeKvKey([-0]), encodeKvKey([0]));
  assert.throws(() => decodeKvKey(new Uint8Array([0x02, 0x61])), /Not a KV key \(cut short/);
  assert.throws(() => decodeKvKey(new Uint8Array([0x99])), /unknown part type 0x99/);
});

test("an export goes past a value another program wrote under the kvq prefix, keeping it raw", async () => {
  using dir = tempDir();
  const kv = await runtime.openKv(dir.kv);
  try {
    await kv.set(["kvq", "a"], new Uint8Array([1]));
    await kv.set(["kvq", "b"], "a string, as another program would write");
    await kv.set(["kvq", "c"], runtime.u64(3n));
    // Without the file, the export stops at it, naming the key.
    await assert.rejects(async () => {
      for await (const _ of exportLines(kv)) { /* read on */ }
    }, /The value at \["kvq","b"\] is string/);
    const raw: Deno.KvKey[] = [];
    const lines: string[] = [];
    let released = false;
    const options = {
      file: dir.kv,
      release: () => {
        kv.close();
        released = true;
      },
      onRaw: (k: Deno.KvKey) => raw.push(k),
    };
    for await (const l of exportLines(kv, options)) lines.push(l);
    assert.ok(released, "the handle was closed before the file was copied");
    assert.deepEqual(raw, [["kvq", "b"]]);
    assert.equal(lines.length, 4);
    assert.equal(lines[1], '{"key":["kvq","a"],"value":"AQ=="}');
    assert.match(lines[2]!, /^\{"key":\["kvq","b"\],"raw":"[^"]+","encoding":1\}$/);
    assert.equal(lines[3], '{"key":["kvq","c"],"u64":"3"}');
    assert.equal(VALUE_ENCODING.v8, 1);
  } finally {
    try {
      kv.close();
    } catch {
      // closed by the export
    }
  }
});
