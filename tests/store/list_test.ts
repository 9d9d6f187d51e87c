import { test } from "node:test";
import assert from "node:assert/strict";
import { listTasks } from "../../src/store/list.ts";
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
