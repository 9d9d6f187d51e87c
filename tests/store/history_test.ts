/**
 * The per-minute history: claims count started attempts and outcomes count ended, succeeded,
 * failed and retried ones in the commits they make anyway; it is read in bins, pruned past its
 * retention, and printed by `kvq info --history`, which refuses a bad span by name.
 */
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { runInline } from "../../src/cluster/inline.ts";
import { BucketCache, bucketOf, pruneStats, readHistory } from "../../src/store/stats.ts";
import { storeTasks } from "../fixtures/store_tasks.ts";
import { kvq } from "../cli/_helpers.ts";
import { tempQueue } from "./_helpers.ts";

const tasks = storeTasks as never;

test("history counts started, succeeded, failed and retried attempts per minute, in bins", async () => {
  let now = Date.UTC(2026, 11, 1, 12, 0, 30);
  await using t = await tempQueue({ clock: () => now });
  await t.queue.enqueueMany(Array.from({ length: 3 }, (_, i) => ({ func: "add", args: [i, 1] })));
  await runInline(t.queue.store, { tasks, burst: true });
  now += 5 * 60_000;
  await t.queue.enqueue({ func: "boom", maxAttempts: 2, backoff: { type: "fixed", delay: 0 } });
  await runInline(t.queue.store, { tasks, burst: true });
  const minutes = await readHistory(t.queue.store, 10 * 60_000, 60_000, now);
  assert.equal(minutes.length, 10);
  const first = minutes.find((b) => b.at === Date.UTC(2026, 11, 1, 12, 0))!;
  const later = minutes.at(-1)!;
  assert.deepEqual(
    [first.started, first.ended, first.succeeded, first.failed, first.retried],
    [3, 3, 3, 0, 0],
  );
  assert.deepEqual(
    [later.started, later.ended, later.succeeded, later.failed, later.retried],
    [2, 2, 0, 2, 1],
    "two attempts failed, the first of them retried",
  );
  // The same minutes in bins of 5: the sums move into the bins that hold them.
  const bins = await readHistory(t.queue.store, 10 * 60_000, 5 * 60_000, now);
  assert.deepEqual(bins.map((b) => [b.started, b.ended]), [[3, 3], [2, 2]]);
  // Past its retention a minute is pruned; a longer retention keeps it.
  now += 2 * 3_600_000;
  assert.equal(await pruneStats(t.queue.store, now, 3 * 3_600_000), 0);
  assert.ok(await pruneStats(t.queue.store, now, 3_600_000) > 0);
  assert.equal(
    (await readHistory(t.queue.store, 4 * 3_600_000, 3_600_000, now)).reduce(
      (n, b) => n + b.ended,
      0,
    ),
    0,
  );
});

test("kvq info --history prints a sparkline and a table, and refuses a bad span by name", async () => {
  await using t = await tempQueue();
  await t.queue.enqueueMany(Array.from({ length: 4 }, (_, i) => ({ func: "add", args: [i, 1] })));
  await runInline(t.queue.store, { tasks, burst: true });
  const kv = ["--kv", t.path];
  const out = await kvq(["info", "--history", "24h", ...kv]);
  assert.equal(out.code, 0, out.err);
  assert.match(out.out, /queue default: the last .*, 4 attempts ended/);
  assert.match(out.out, /ended +\|[ ▁▂▃▄▅▆▇█]+\|/);
  assert.match(out.out, /from +started +succeeded +failed +retried +mean run +mean wait/);
  const json = JSON.parse((await kvq(["info", "--history", "1h", "--json", ...kv])).out);
  assert.equal(json.binMs, 60_000);
  assert.equal(
    json.queues[0].bins.reduce((n: number, b: { started: number }) => n + b.started, 0),
    4,
  );
  for (const bad of ["5x", "0m", "40d"]) {
    const r = await kvq(["info", "--history", bad, ...kv]);
    assert.equal(r.code, 2, bad);
    assert.match(r.err, new RegExp(`--history.*"${bad}"`));
  }
  const cluster = await kvq([
    "cluster",
    "--tasks",
    "examples/tasks.ts",
    "--history-keep",
    "10m",
    ...kv,
  ]);
  assert.equal(cluster.code, 2);
  assert.match(cluster.err, /--history-keep must be at least 1h: received 10m/);
});

test("a BucketCache reads settled minutes once and the recent ones every time, and matches an uncached read", async () => {
  let now = Date.UTC(2026, 11, 1, 12, 0, 30);
  await using t = await tempQueue({ clock: () => now });
  const store = t.queue.store;
  const lists: number[] = [];
  const kv = store.kv as unknown as { list: (...a: unknown[]) => AsyncIterable<unknown> };
  const list = kv.list.bind(kv);
  kv.list = (...a: unknown[]) => {
    lists.push(1);
    return list(...a);
  };
  const run = async () => {
    await t.queue.enqueue({ func: "add", args: [1, 1] });
    await runInline(store, { tasks, burst: true });
  };
  for (let i = 0; i < 30; i++) {
    await run();
    now += 60_000;
  }
  const cache = new BucketCache();
  const span = 60 * 60_000;
  const same = async () => {
    const cached = await readHistory(store, span, 60_000, now, cache);
    assert.deepEqual(cached, await readHistory(store, span, 60_000, now));
    return cached;
  };
  const first = await same();
  assert.equal(first.reduce((n, b) => n + b.ended, 0), 30);
  // Five minutes on: the new attempts show; the cache read again only its unsettled minutes.
  for (let i = 0; i < 5; i++) {
    await run();
    now += 60_000;
  }
  lists.length = 0;
  const cached = await readHistory(store, span, 60_000, now, cache);
  assert.equal(cached.reduce((n, b) => n + b.ended, 0), 35);
  assert.equal(lists.length, 1, "one list, of the recent minutes");
  // A late write to a minute settled long ago is seen at the next full refresh.
  const old = Date.UTC(2026, 11, 1, 12, 5);
  await store.kv.atomic().sum(store.keys.stat("minute", bucketOf(old), "ended"), 7n).commit();
  assert.equal(
    (await readHistory(store, span, 60_000, now, cache)).reduce((n, b) => n + b.ended, 0),
    35,
  );
  now += BucketCache.REFRESH_MS;
  await same();
  const all = await readHistory(store, 2 * span, 60_000, now, cache);
  assert.equal(all.reduce((n, b) => n + b.ended, 0), 42);
});
