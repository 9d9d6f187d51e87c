/**
 * The name look-up off the enqueue's path: enqueue writes a time-ordered tail entry, a look-up
 * by name reads the tail until a cluster moves it into the look-up, and every way a task goes
 * leaves no entry behind.
 */
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { Cluster } from "../../src/cluster/cluster.ts";
import { runInline } from "../../src/cluster/inline.ts";
import { scanDamaged } from "../../src/store/damaged.ts";
import { compactNames, funcTailIds, idsNamed, TAIL_BATCH, tailIds } from "../../src/store/names.ts";
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
  // One is deleted before compaction: neither entry is left (compaction drops its id).
  await queue.delete(made[0]!.id);
  assert.equal(await compactNames(store), 5);
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
  // The func look-ups too, the damaged one's from the func the tail gives.
  const funcs = await Array.fromAsync(
    queue.store.kv.list({ prefix: queue.store.keys.funcPrefix("add") }),
    (e) => String(e.key.at(-1)),
  );
  assert.deepEqual(funcs, [a!.id, b!.id].sort());
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

test("a bulk enqueue writes one tail entry per commit (at most TAIL_BATCH tasks), and deleting its first task loses no one's look-up", async () => {
  await using t = await tempQueue();
  const { queue } = t;
  const store = queue.store;
  const n = TAIL_BATCH + 50;
  const made = await queue.enqueueMany(
    Array.from({ length: n }, (_, i) => ({ func: "add", args: [i, 1] })),
  );
  const tail: Deno.KvKey[] = [];
  const sizes: number[] = [];
  for await (const e of store.kv.list({ prefix: store.keys.nameTailPrefix })) {
    tail.push(e.key);
    sizes.push(JSON.parse(new TextDecoder().decode(e.value as Uint8Array)).length);
  }
  const sorted = made.map((m) => m.id).sort();
  const first = sorted[0]!;
  // One entry per commit of at most 400 tasks (the enqueue's commits may hold fewer).
  assert.ok(tail.length >= 2 && tail.length <= 4, `${tail.length} tail entries for ${n} tasks`);
  assert.ok(sizes.every((k) => k <= TAIL_BATCH), `entries of ${sizes}`);
  assert.equal(sizes.reduce((a, b) => a + b), n);
  // Keyed by the newest task of its batch.
  assert.deepEqual(tail[0], store.keys.nameTailBatch(sorted[sizes[0]! - 1]!));
  assert.deepEqual(await tailIds(store), made.map((m) => m.id).sort());
  for (const m of [made[0]!, made[TAIL_BATCH]!, made[n - 1]!]) {
    assert.equal((await queue.fetch(m.name))?.id, m.id, "found by name from a batch entry");
  }
  // Deleting the first task of a batch (or any) leaves the entry to compaction.
  await queue.delete(first);
  assert.equal((await tailIds(store)).length, n);
  assert.equal(await compactNames(store, 1), sizes[0], "a batch moves whole");
  assert.equal(await compactNames(store, n), n - sizes[0]!);
  assert.deepEqual(await tailIds(store), []);
  const written = await lookups(store);
  assert.equal(written.length, n - 1);
  assert.equal(written.includes(first), false);
  for (const m of made.filter((m) => m.id !== first)) {
    assert.equal((await queue.fetch(m.name))?.id, m.id, "found by name from the look-up");
  }
});

test("a single enqueue writes one tail entry of its own, which stands for its func look-up and which deleting the task removes", async () => {
  await using t = await tempQueue();
  const { queue } = t;
  const store = queue.store;
  const one = await queue.enqueue({ func: "add", args: [1, 2] });
  const tail = await Array.fromAsync(store.kv.list({ prefix: store.keys.nameTailPrefix }));
  assert.deepEqual(tail.map((e) => e.key), [store.keys.nameTailOne(one.id)]);
  assert.deepEqual(
    await Array.fromAsync(store.kv.list({ prefix: store.keys.funcPrefix("add") })),
    [],
    "no func look-up yet",
  );
  assert.deepEqual(await funcTailIds(store, "add"), [one.id]);
  assert.deepEqual(await idsNamed(store, one.name), [one.id]);
  await queue.delete(one.id);
  assert.deepEqual(await tailIds(store), []);
  const left = await Array.fromAsync(store.kv.list({ prefix: store.keys.prefix }));
  assert.deepEqual(
    left.filter((e) => !["stat", "signal", "claim_seq"].includes(e.key[2] as string)),
    [],
  );
  // Compaction moves a single task's entry into both look-ups, as it moves a batch.
  const two = await queue.enqueue({ func: "add", args: [3, 4] });
  assert.equal(await compactNames(store), 1);
  assert.deepEqual(await tailIds(store), []);
  const looked = await Array.fromAsync(store.kv.list({ prefix: store.keys.funcPrefix("add") }));
  assert.deepEqual(looked.map((e) => e.key.at(-1)), [two.id]);
  assert.deepEqual(await idsNamed(store, two.name), [two.id]);
});

test("a damaged batch entry of the tail gives no task, and compaction drops it", async () => {
  await using t = await tempQueue();
  const { queue } = t;
  const made = await queue.enqueueMany([{ func: "add", args: [1, 1] }, { func: "add" }]);
  const [key] = await Array.fromAsync(
    queue.store.kv.list({ prefix: queue.store.keys.nameTailPrefix }),
    (e) => e.key,
  );
  await queue.store.kv.set(key!, new TextEncoder().encode("[nope"));
  assert.deepEqual(await tailIds(queue.store), []);
  assert.equal(await compactNames(queue.store), 0);
  assert.deepEqual(
    await Array.fromAsync(queue.store.kv.list({ prefix: queue.store.keys.nameTailPrefix })),
    [],
  );
  // The tasks themselves are untouched, and found by id.
  for (const m of made) assert.equal((await queue.fetch(m.id))?.state, "queued");
});

test("funcTailIds() gives a func's newest ids exactly, newest first, when batches of two enqueuers overlap", async () => {
  await using t = await tempQueue();
  const { store } = t.queue;
  // Two processes enqueueing at once: their batches' ids interleave. Each batch entry is keyed
  // by its newest id.
  const id = (n: number) => `id-${String(n).padStart(3, "0")}`;
  const batch = (ns: number[], func: (n: number) => string) =>
    new TextEncoder().encode(JSON.stringify(ns.map((n) => [id(n), `name-${n}`, func(n)])));
  const f = (n: number) => (n % 3 === 0 ? "other" : "f");
  const a = [1, 3, 5, 7, 9, 11, 13, 15, 17, 19];
  const b = [2, 4, 6, 8, 10, 12, 14, 16, 18, 20];
  const c = [21, 22, 23];
  await store.kv.set(store.keys.nameTailBatch(id(19)), batch(a, f));
  await store.kv.set(store.keys.nameTailBatch(id(20)), batch(b, f));
  await store.kv.set(store.keys.nameTailBatch(id(23)), batch(c, () => "other"));
  // A per-task entry (a single enqueue): its func look-up is written already.
  await store.kv.set(store.keys.nameTail(id(24)), new TextEncoder().encode("name-24"));
  const all = [...a, ...b].filter((n) => f(n) === "f").sort((x, y) => y - x).map(id);
  assert.deepEqual(await funcTailIds(store, "f"), all);
  assert.deepEqual(await funcTailIds(store, "f", { limit: 5 }), all.slice(0, 5));
  assert.deepEqual(
    await funcTailIds(store, "f", { limit: 4, before: all[4]! }),
    all.slice(5, 9),
  );
  assert.deepEqual(await funcTailIds(store, "f", { before: id(2) }), [id(1)]);
  assert.deepEqual(await funcTailIds(store, "none"), []);
});

test("compactNames() moves the entries of 500 single enqueues in commits within KV's mutation limit", async () => {
  await using t = await tempQueue();
  const { queue } = t;
  const store = queue.store;
  const ids: string[] = [];
  for (let i = 0; i < 500; i++) ids.push((await queue.enqueue({ func: "add", args: [i, 0] })).id);
  // Each entry moves into two look-ups: 400 of them with their deletes are past 1,000.
  assert.equal(await compactNames(store, 10_000), 500);
  assert.deepEqual(await tailIds(store), []);
  const looked = await Array.fromAsync(store.kv.list({ prefix: store.keys.funcPrefix("add") }));
  assert.deepEqual(looked.map((e) => e.key.at(-1)), ids);
});
