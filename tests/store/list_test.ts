import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { listTasks } from "../../src/store/list.ts";
import { compactNames } from "../../src/store/names.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { tempDir } from "../cli/_helpers.ts";

test("listTasks() gives no cursor once the index is read to the end, on every runtime", async () => {
  using dir = tempDir();
  await using queue = await openQueue({ kv: dir.kv });
  await queue.enqueueMany(Array.from({ length: 5 }, (_, i) => ({ func: "add", args: [i, 1] })));
  const all = await listTasks(queue.store, { limit: 10 });
  assert.equal(all.tasks.length, 5);
  assert.equal(all.cursor, null, "all shown: no next page");
  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page = await listTasks(queue.store, { limit: 2, ...(cursor ? { cursor } : {}) });
    seen.push(...page.tasks.map((t) => t.id));
    cursor = page.cursor;
    pages++;
  } while (cursor !== null && pages < 10);
  assert.equal(pages, 3);
  assert.equal(new Set(seen).size, 5);
  const queued = await listTasks(queue.store, { state: "queued", limit: 50 });
  assert.deepEqual([queued.tasks.length, queued.cursor], [5, null]);
});

test("listTasks() by func pages through bulk-enqueued tasks in the name tail and in the look-up alike, newest first, with compaction between pages", async () => {
  using dir = tempDir();
  await using queue = await openQueue({ kv: dir.kv });
  const store = queue.store;
  // No enqueue writes the func look-up: the tail stands for it until compaction.
  const single = [];
  for (let i = 0; i < 3; i++) single.push(await queue.enqueue({ func: "add", args: [i, 0] }));
  const bulk = await queue.enqueueMany(
    Array.from({ length: 40 }, (_, i) => ({ func: "add", args: [i, 1] })),
  );
  const later = await queue.enqueueMany(
    Array.from({ length: 7 }, (_, i) => ({ func: "add", args: [i, 2] })),
  );
  await queue.enqueueMany(Array.from({ length: 5 }, () => ({ func: "other" })));
  const lookedUp = await Array.fromAsync(store.kv.list({ prefix: store.keys.funcPrefix("add") }));
  assert.equal(lookedUp.length, 0, "enqueue writes no func look-up");
  const expected = [...single, ...bulk, ...later].map((t) => t.id).sort().reverse();

  const seen: string[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 20; page++) {
    const got: Awaited<ReturnType<typeof listTasks>> = await listTasks(store, {
      func: "add",
      limit: 6,
      ...(cursor ? { cursor } : {}),
    });
    seen.push(...got.tasks.map((t) => t.id));
    cursor = got.cursor;
    // Half way, a cluster moves the tail into the look-ups: the pages go on without a gap.
    if (page === 3) await compactNames(store, 10_000);
    if (cursor === null) break;
  }
  assert.deepEqual(seen, expected);
  // A state filter, and a foreign cursor.
  await queue.delete(bulk[0]!.id);
  const queued = await listTasks(store, { func: "add", state: "queued", limit: 100 });
  assert.equal(queued.tasks.length, expected.length - 1);
  await assert.rejects(
    listTasks(store, { func: "add", cursor: "AAAB" }),
    /list by func continues from the cursor its previous page gave/,
  );
});

test("searchTasks() by func finds bulk-enqueued tasks before and after compaction", async () => {
  using dir = tempDir();
  await using queue = await openQueue({ kv: dir.kv });
  const made = await queue.enqueueMany(
    Array.from({ length: 12 }, (_, i) => ({ func: "mul", args: [i, 2] })),
  );
  const ids = made.map((m) => m.id).sort().reverse();
  const before = await queue.search("mul", { limit: 5 });
  assert.deepEqual([before.via, before.fields], ["lookup", ["func"]]);
  assert.deepEqual(before.tasks.map((t) => t.id), ids.slice(0, 5));
  await compactNames(queue.store);
  const next = await queue.search("mul", { limit: 50, cursor: before.cursor! });
  assert.deepEqual(next.tasks.map((t) => t.id), ids.slice(5));
  const after = await queue.search("mul", { limit: 50 });
  assert.deepEqual(after.tasks.map((t) => t.id), ids);
});

test("searchTasks() by func pages through the tail to the end when deleted tasks thin a page", async () => {
  using dir = tempDir();
  await using queue = await openQueue({ kv: dir.kv });
  const made = await queue.enqueueMany(
    Array.from({ length: 30 }, (_, i) => ({ func: "mul", args: [i, 2] })),
  );
  const ids = made.map((m) => m.id).sort().reverse();
  // The newest five are deleted: the tail still names them until a cluster compacts it.
  for (const id of ids.slice(0, 5)) await queue.delete(id);
  const seen: string[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 10; page++) {
    const got = await queue.search("mul", { limit: 10, ...(cursor ? { cursor } : {}) });
    seen.push(...got.tasks.map((t) => t.id));
    if (got.cursor === null) break;
    cursor = got.cursor;
  }
  assert.deepEqual(seen, ids.slice(5));
});
