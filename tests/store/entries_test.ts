/**
 * The entries a task owns in each state are written by one module: the ways a waiting task ends
 * (cancel, replaced by a unique enqueue, delete, purge) leave the same entries and counters.
 */
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { openQueue } from "../../src/queue/queue.ts";
import { copyStore } from "../../src/store/read_copy.ts";
import { encodeKvKey } from "../../src/store/raw_rows.ts";
import { purge } from "../../src/web/actions.ts";
import { tempDir } from "./_helpers.ts";

/** The expiry time KV keeps for each key of `keys`, read from a copy of the file. */
async function expiries(file: string, keys: Deno.KvKey[]): Promise<(number | null)[]> {
  using copy = copyStore(file);
  const { DatabaseSync } = await import("node:sqlite");
  const db = new DatabaseSync(copy.path, { readOnly: true });
  try {
    const get = db.prepare("select expiration_ms from kv where k = ?");
    return keys.map((key) => {
      const row = get.get(encodeKvKey(key)) as { expiration_ms: number } | undefined;
      return row === undefined ? null : row.expiration_ms;
    });
  } finally {
    db.close();
  }
}

for (const how of ["cancel", "replace"] as const) {
  test(`a cached waiting task ended by ${how}: kept with its expiry, and not counted as cancelled`, async () => {
    await using dir = tempDir();
    const kv = join(dir.path, "kv.sqlite3");
    let keys: Deno.KvKey[];
    {
      await using queue = await openQueue({ kv });
      const holder = await queue.enqueue({
        func: "add",
        args: [1, 2],
        delay: 60_000,
        cached: 600_000,
        unique: { key: "u", mode: "replace" },
      });
      if (how === "cancel") await queue.cancel(holder.id);
      else {
        await queue.enqueue({ func: "add", args: [3, 4], unique: { key: "u", mode: "replace" } });
      }
      const ended = await queue.fetch(holder.id);
      assert.equal(ended?.state, "cancelled");
      const counts = await queue.counts();
      assert.equal(counts.cancelled, 0, "a cached task is not counted once finished");
      assert.equal(counts.scheduled, 0);
      assert.equal(counts.queued, how === "replace" ? 1 : 0);
      const k = queue.store.keys;
      keys = [k.task(holder.id), k.done("cancelled", ended!.stoppedAt!, holder.id)];
    }
    for (const [i, at] of (await expiries(kv, keys)).entries()) {
      assert.ok(at !== null && at > Date.now() + 500_000, `key ${i} expires with the cache: ${at}`);
    }
  });
}

test("purging a finished cached task leaves the state counters as they were", async () => {
  await using dir = tempDir();
  await using queue = await openQueue({ kv: join(dir.path, "kv.sqlite3") });
  const plain = await queue.enqueue({ func: "add", args: [1, 2], delay: 60_000 });
  const cached = await queue.enqueue({ func: "add", args: [1, 2], delay: 60_000, cached: 60_000 });
  await queue.cancel(plain.id);
  await queue.cancel(cached.id);
  assert.equal((await queue.counts()).cancelled, 1);
  const result = await purge(queue.store, "cancelled");
  assert.match(result.message, /Purged 2 cancelled tasks/);
  const counts = await queue.counts();
  assert.equal(counts.cancelled, 0, "not -1: the cached one was never counted");
  assert.equal(await queue.fetch(cached.id), null);
});
