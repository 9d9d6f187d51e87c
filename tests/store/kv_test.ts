import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openQueue } from "../../src/queue/queue.ts";
import { KvOpenError, resolveKvLocation } from "../../src/store/kv.ts";
import { tempDir } from "./_helpers.ts";

test("openKvAt() refuses a folder with a KvOpenError naming the path", async () => {
  await using dir = tempDir();
  const folder = join(dir.path, "a-folder");
  mkdirSync(folder);
  await assert.rejects(openQueue({ kv: folder }), (error: Error) => {
    assert.ok(error instanceof KvOpenError);
    assert.ok(error.message.includes(folder), error.message);
    assert.match(error.message, /folder/);
    return true;
  });
});

test("openKvAt() refuses a file that is not SQLite and leaves it untouched", async () => {
  await using dir = tempDir();
  const path = join(dir.path, "notes.txt");
  const content = new TextEncoder().encode("my precious notes\n".repeat(500));
  writeFileSync(path, content);
  await assert.rejects(openQueue({ kv: path }), (error: Error) => {
    assert.ok(error instanceof KvOpenError);
    assert.ok(error.message.includes(path), error.message);
    assert.match(error.message, /not a KV database/);
    return true;
  });
  assert.deepEqual(new Uint8Array(readFileSync(path)), content);
  assert.deepEqual(readdirSync(dir.path), ["notes.txt"], "no -wal or -shm file was created");
});

test("openKvAt() refuses a path under a file with a KvOpenError naming it", async () => {
  await using dir = tempDir();
  const file = join(dir.path, "file");
  writeFileSync(file, "x");
  const path = join(file, "kv.sqlite3");
  await assert.rejects(openQueue({ kv: path }), (error: Error) => {
    assert.ok(error instanceof KvOpenError);
    assert.ok(error.message.includes(path), error.message);
    return true;
  });
});

test("resolveKvLocation() tells files, memory and URLs apart", () => {
  assert.deepEqual(resolveKvLocation(":memory:"), {
    location: ":memory:",
    remote: false,
    path: null,
  });
  assert.equal(resolveKvLocation("https://kv.example/x").remote, true);
  assert.equal(resolveKvLocation("/tmp/kv.sqlite3").path, "/tmp/kv.sqlite3");
});
