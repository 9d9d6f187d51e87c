import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openQueue } from "../../src/queue/queue.ts";
import { KvOpenError, resolveKvLocation } from "../../src/store/kv.ts";
import { commitStats } from "../../src/store/commit.ts";
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

test("openKvAt() refuses another program's SQLite database and leaves it untouched", async () => {
  await using dir = tempDir();
  const path = join(dir.path, "app.db");
  const { DatabaseSync } = await import("node:sqlite");
  const db = new DatabaseSync(path);
  db.exec(
    "create table users (id integer primary key, name text); insert into users (name) values ('ada')",
  );
  db.close();
  const before = readFileSync(path);
  await assert.rejects(
    openQueue({ kv: path }),
    (e: Error) =>
      e instanceof KvOpenError &&
      /SQLite database of another program \(its tables: users\)/.test(e.message),
  );
  assert.deepEqual(readFileSync(path), before, "not a byte changed");
  assert.deepEqual(readdirSync(dir.path).sort(), ["app.db"], "no -wal or -shm beside it");
});

test("a counter overwritten by another program is named when a commit meets it", async () => {
  await using dir = tempDir();
  const kv = join(dir.path, "kv.sqlite3");
  await using queue = await openQueue({ kv });
  await queue.enqueue("add", 1, 2);
  const key = ["kvq", "default", "stat", "state", "queued"];
  await queue.store.kv.set(key, new TextEncoder().encode("not a counter"));
  await assert.rejects(
    queue.enqueue("add", 3, 4),
    /A kvq counter in KV holds a value that is not a counter: \["kvq","default","stat","state","queued"\]/,
  );
});

test("the KV handle counts commits and their mutations", async () => {
  await using dir = tempDir();
  await using queue = await openQueue({ kv: join(dir.path, "kv.sqlite3") });
  const kv = queue.store.kv;
  const before = { ...commitStats };
  await kv.atomic()
    .check({ key: ["kvq", "t", "a"], versionstamp: null })
    .set(["kvq", "t", "a"], new Uint8Array([1]))
    .delete(["kvq", "t", "b"])
    .sum(["kvq", "t", "n"], 1n)
    .commit();
  await kv.set(["kvq", "t", "c"], new Uint8Array([2]));
  assert.equal(commitStats.commits - before.commits, 2);
  assert.equal(commitStats.mutations - before.mutations, 4, "a check is not a mutation");
  // One enqueue: a handful of mutations in one commit.
  const mid = { ...commitStats };
  await queue.enqueue("add", 1, 2);
  assert.equal(commitStats.commits - mid.commits, 1);
  assert.ok(commitStats.mutations - mid.mutations >= 4, `${commitStats.mutations - mid.mutations}`);
});
