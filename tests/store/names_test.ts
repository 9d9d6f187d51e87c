/**
 * The name look-up off the enqueue's path: enqueue writes a time-ordered tail entry, a look-up
 * by name reads the tail until a cluster moves it into the look-up, and every way a task goes
 * leaves no entry behind.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Cluster } from "../../src/cluster/cluster.ts";
import { runInline } from "../../src/cluster/inline.ts";
import { scanDamaged } from "../../src/store/damaged.ts";
import { compactNames, tailIds } from "../../src/store/names.ts";
import type { Store } from "../../src/store/store.ts";
import { storeTasks } from "../fixtures/store_tasks.ts";
import { CLUSTER_TASKS } from "../cluster/_process.ts";
import { tempQueue } from "./_helpers.ts";

const tasks = storeTasks as never;

async function lookups(store: Store): Promise<string[]> {
  const out: string[] = [];
  for await (const e of store.kv.list({ prefix: store.keys.names })) {
    out.push(String(e.key.at(-1)));
  }
  return out.sort();
}

test("enqueue leaves the name look-up to the tail; a look-up by name reads it, before and after compaction", async () => {
  await using t = await tempQueue();
  const { queue } = t;
  const store = queue.store;
  const made = await queue.enqueueMany(
    Array.from({ length: 5 }, (_, i) => ({ func: "add", args: [i, 1] })),
  );
  const ids = made.map((m) => m.id).sort();
  assert.deepEqual(await lookups(store), [], "no look-up written at enqueue");
  assert.deepEqual(await tailIds(store), ids);
  for (const m of made) {
    assert.equal((await queue.fetch(m.name))?.id, m.id, "found by name from the tail");
    assert.deepEqual((await queue.search(m.name)).tasks.map((r) => r.id), [m.id]);
  }
  // One is deleted before compaction: neither entry is left.
  await queue.delete(made[0]!.id);
  assert.equal(await compactNames(store), 4);
  assert.deepEqual(await tailIds(store), []);
  assert.deepEqual(await lookups(store), ids.filter((id) => id !== made[0]!.id));
  for (const m of made.slice(1)) assert.equal((await queue.fetch(m.name))?.id, m.id);
  assert.equal(await queue.fetch(made[0]!.name), null);
  await queue.delete(made[1]!.id);
  assert.equal((await lookups(store)).includes(made[1]!.id), false);
});

test("a cached task's look-up expires with it, and compaction does not write one that would outlive it", async () => {
  await using t = await tempQueue();
  const { queue } = t;
  const cached = await queue.enqueue({ func: "add", args: [1, 2], cached: 60_000 });
  await runInline(queue.store, { tasks, burst: true });
  assert.deepEqual(await tailIds(queue.store), [], "finishing took it off the tail");
  assert.deepEqual(await lookups(queue.store), [cached.id], "its look-up, with its expiry");
  assert.equal(await compactNames(queue.store), 0);
  assert.equal((await queue.fetch(cached.name))?.state, "succeeded");
});

test("a damaged record in the tail keeps a look-up by its id's name, so the doctor's scan finds it", async () => {
  await using t = await tempQueue();
  const { queue } = t;
  const [a, b] = await queue.enqueueMany([{ func: "add", args: [1, 1] }, { func: "add" }]);
  await queue.store.kv.set(queue.store.keys.task(b!.id), new TextEncoder().encode("{nope"));
  assert.deepEqual(
    (await scanDamaged(queue.store)).found.map((d) => d.id),
    [b!.id],
    "from the tail",
  );
  await compactNames(queue.store);
  assert.deepEqual(await lookups(queue.store), [a!.id, b!.id].sort());
});

test("a cluster moves the tail into the look-up from its heartbeat", async () => {
  await using t = await tempQueue();
  const { queue } = t;
  await queue.enqueueMany(
    Array.from({ length: 50 }, () => ({ func: "stamp", args: ["/dev/null"] })),
  );
  const cluster = new Cluster({ kv: t.path, tasks: [CLUSTER_TASKS], workers: 1, heartbeat: 100 });
  await cluster.start();
  try {
    for (let i = 0; i < 100 && (await tailIds(queue.store)).length > 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(await tailIds(queue.store), []);
    assert.equal((await lookups(queue.store)).length, 50);
  } finally {
    await cluster.stop();
  }
});
