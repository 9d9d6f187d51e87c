/**
 * Doorbells across runtimes: a Deno process enqueues its doorbells as strings in V8's format
 * version 16, which `@deno/kv`'s own decoder on Bun refused ("decode error: Unsupported version
 * 16"), ending a Bun cluster's doorbell listener. kvq's Bun adapter reads them.
 */
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeV8String } from "../../src/runtime/v8_string.ts";
import { runtime } from "../../src/runtime/mod.ts";
import { runtimeExec } from "../../scripts/_runtimes.ts";

const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));

test("decodeV8String() reads one- and two-byte strings of V8 formats 13 to 16, and nothing else", () => {
  // As Deno 2.9 wrote "kvq:default" into a KV queue.
  const deno = new Uint8Array([255, 16, 34, 11, ...ascii("kvq:default")]);
  assert.equal(decodeV8String(deno), "kvq:default");
  assert.equal(decodeV8String(new Uint8Array([255, 13, 34, 2, 0xe9, 0x41])), "éA");
  // Two-byte, after a padding byte, as V8 aligns it.
  const utf16 = [...new Uint8Array(new Uint16Array([0x4e2d, 0x41]).buffer)];
  assert.equal(decodeV8String(new Uint8Array([255, 15, 0, 99, 4, ...utf16])), "中A");
  for (
    const bad of [
      [255, 12, 34, 1, 65], // an older format
      [255, 17, 34, 1, 65], // a newer one
      [255, 15, 34, 5, 65], // cut short
      [255, 15, 34, 1, 65, 66], // trailing bytes
      [255, 15, 73, 2], // an integer
      [255, 15, 99, 3, 1, 2, 3], // odd UTF-16
      [1, 2, 3, 4],
      [],
    ]
  ) assert.equal(decodeV8String(new Uint8Array(bad)), null, JSON.stringify(bad));
});

test("a Bun process hears a doorbell a Deno process enqueued, and keeps listening", {
  skip: runtime.name === "bun" ? false : "the doorbell crosses from Deno to Bun",
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "kvq-doorbell-"));
  const path = join(dir, "kv.sqlite3");
  try {
    const deno = runtimeExec("deno");
    const wrote = spawnSync(deno.cmd, [
      ...deno.prefix,
      "eval",
      "--unstable-kv",
      `const kv = await Deno.openKv(${JSON.stringify(path)});
       await kv.enqueue("kvq:default"); await kv.enqueue("kvq:mail"); kv.close();`,
    ], { encoding: "utf8" });
    assert.equal(wrote.status, 0, wrote.stderr);
    const kv = await runtime.openKv(path);
    try {
      const heard: unknown[] = [];
      let failed: unknown = null;
      const listening = kv.listenQueue((message: unknown) => {
        heard.push(message);
      }).catch((error: unknown) => failed = error);
      for (let i = 0; i < 100 && heard.length < 2 && failed === null; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.equal(failed, null, `the listener ended: ${failed}`);
      assert.deepEqual(heard.sort(), ["kvq:default", "kvq:mail"]);
      kv.close();
      await listening;
    } finally {
      try {
        kv.close();
      } catch {
        // closed above
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
