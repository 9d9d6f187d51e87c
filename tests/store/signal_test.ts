/**
 * The queue's signal key: remote KV's watchers wake on it, so every change others must see bumps
 * it there; a local file's processes wake on signal files, so there it is never written (a
 * mutation less per enqueue).
 */
import { join } from "node:path";
import assert from "node:assert/strict";
import { test } from "../_deadline.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { commitStats } from "../../src/store/commit.ts";
import { KvHandle } from "../../src/store/store.ts";
import { tempDir } from "./_helpers.ts";

test("on a local KV file, enqueue, pause and resume write no signal key, and one enqueue is 4 mutations", async () => {
  await using dir = tempDir();
  await using queue = await openQueue({ kv: join(dir.path, "kv.sqlite3") });
  const before = { ...commitStats };
  await queue.enqueue("add", 1, 2);
  // The record, its ready entry, its name-tail entry and the queued counter.
  assert.equal(commitStats.mutations - before.mutations, 4);
  await queue.enqueueMany([{ func: "add", args: [1, 2] }, { func: "add", args: [3, 4] }]);
  await queue.pause();
  await queue.resume();
  assert.equal((await queue.store.kv.get(queue.store.keys.signal)).versionstamp, null);
});

test("on remote KV, enqueue, pause and resume each bump the signal key its watchers wake on", async () => {
  await using dir = tempDir();
  // The same KV file, opened as a remote location would be: only the location differs.
  const local = await KvHandle.open({ kv: join(dir.path, "kv.sqlite3") });
  const remote = new KvHandle(local.kv, {
    location: "http://127.0.0.1:4512/",
    remote: true,
    path: null,
  }, { owned: false });
  await using queue = await openQueue({ kv: remote });
  try {
    const key = queue.store.keys.signal;
    const signal = async () => (await queue.store.kv.get<Deno.KvU64>(key)).value?.value ?? 0n;
    await queue.enqueue("add", 1, 2);
    assert.equal(await signal(), 1n);
    await queue.enqueueMany([{ func: "add", args: [1, 2] }, { func: "add", args: [3, 4] }]);
    assert.equal(await signal(), 2n);
    await queue.pause();
    await queue.resume();
    assert.equal(await signal(), 4n);
  } finally {
    local.close();
  }
});
