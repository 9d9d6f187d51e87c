/**
 * Queue limits as stored and read: `setLimits` refuses bad values by name and stores nothing,
 * `kvq limit` sets, shows and clears them, and a claim takes no more than they allow.
 */
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { claimTasks } from "../../src/store/claim.ts";
import { LimitError, parseRate } from "../../src/store/flow.ts";
import { readGate } from "../../src/store/gate.ts";
import { kvq } from "../cli/_helpers.ts";
import { tempQueue } from "./_helpers.ts";

test("parseRate() reads N/DURATION and refuses anything else with the value", () => {
  assert.deepEqual(parseRate("100/1s"), { count: 100, ms: 1000 });
  assert.deepEqual(parseRate("5/1m"), { count: 5, ms: 60_000 });
  assert.deepEqual(parseRate("20/500ms"), { count: 20, ms: 500 });
  for (const bad of ["0/1s", "5/0s", "fast", "5/1d", "-1/1s", "1.5/1s"]) {
    assert.throws(
      () => parseRate(bad),
      (e: Error) => e instanceof LimitError && e.message.includes(bad),
    );
  }
});

test("setLimits() refuses bad limits by name and stores nothing; a claim takes what they allow", async () => {
  await using t = await tempQueue();
  for (
    const bad of [
      { concurrency: -1 },
      { concurrency: 0 },
      { concurrency: 1.5 },
      { rate: "fast" },
      { rate: { count: 0, ms: 1000 } },
      { burst: 3 },
    ]
  ) {
    await assert.rejects(t.queue.setLimits(bad as never), LimitError);
  }
  assert.equal(await t.queue.limits(), null, "nothing was stored");
  await t.queue.enqueueMany(Array.from({ length: 6 }, (_, i) => ({ func: "add", args: [i, 0] })));
  const limits = { concurrency: 3, rate: { count: 5, ms: 60_000 } };
  await t.queue.setLimits(limits);
  const gate = () => readGate(t.queue.store, limits);
  const first = await claimTasks(t.queue.store, {
    cluster: "c",
    workers: Array(6).fill("w"),
    gate,
  });
  assert.equal(first.length, 3, "concurrency 3");
  let gated: number | null | undefined;
  const none = await claimTasks(t.queue.store, {
    cluster: "c",
    workers: ["w"],
    gate,
    onGated: (at) => gated = at,
  });
  assert.deepEqual(none, []);
  assert.equal(gated, null, "full by concurrency: no time given");
  await t.queue.setLimits({ rate: { count: 5, ms: 60_000 } });
  const more = await claimTasks(t.queue.store, {
    cluster: "c",
    workers: Array(6).fill("w"),
    gate: () => readGate(t.queue.store, { rate: { count: 5, ms: 60_000 } }),
    onGated: (at) => gated = at,
  });
  assert.equal(more.length, 2, "the rate allows 5 a minute, 3 were started");
  await t.queue.clearLimits();
  assert.equal(await t.queue.limits(), null);
});

test("kvq limit: bad values exit 2 naming the flag and value, and store nothing", async () => {
  await using t = await tempQueue();
  await t.queue.enqueue("add", 1, 1);
  const kv = ["--kv", t.path];
  for (
    const [args, message] of [
      [["--rate", "0/1s"], /--rate: .*"0\/1s"/],
      [["--rate", "5/0s"], /--rate: .*"5\/0s"/],
      [["--rate", "fast"], /--rate: .*"fast"/],
      [["--concurrency", "-1"], /--concurrency .*"-1"/],
      [["--partition-concurrency", "0"], /--partition-concurrency .*"0"/],
      [["--partition-rate", "0/1s"], /--partition-rate: .*"0\/1s"/],
      [["--partition-rate", "5/0s"], /--partition-rate: .*"5\/0s"/],
      [["--partition-weight", "vip"], /--partition-weight: .*"vip"/],
      [["--partition-weight", "vip=0"], /--partition-weight: .*"vip".*0/],
    ] as const
  ) {
    const r = await kvq(["limit", "default", ...args, ...kv]);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, message);
  }
  const unknown = await kvq(["limit", "nosuch", "--rate", "5/1s", ...kv]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /no queue "nosuch"/);
  assert.equal(await t.queue.limits(), null);
  const set = await kvq([
    "limit",
    "default",
    "--concurrency",
    "2",
    "--rate",
    "5/1s",
    "--json",
    ...kv,
  ]);
  assert.equal(set.code, 0, set.err);
  assert.deepEqual(JSON.parse(set.out).limits, { concurrency: 2, rate: { count: 5, ms: 1000 } });
  const shown = await kvq(["limit", "default", ...kv]);
  assert.match(shown.out, /concurrency 2 · rate 5\/1000ms; 0 running, 1 waiting/);
  const info = await kvq(["info", ...kv]);
  assert.match(info.out, /limits {5}concurrency 2 · rate 5\/1000ms/);
  const cleared = await kvq(["limit", "default", "--clear", ...kv]);
  assert.match(cleared.out, /no limits/);
  await t.queue.enqueue({ func: "add", args: [1, 1], partition: "tenant-7" });
  const perPartition = await kvq([
    "limit",
    "default",
    "--partition-concurrency",
    "2",
    "--partition-rate",
    "5/1s",
    "--partition-weight",
    "vip=3",
    ...kv,
  ]);
  assert.equal(perPartition.code, 0, perPartition.err);
  assert.match(
    perPartition.out,
    /partition concurrency 2 · partition rate 5\/1000ms · weights vip=3/,
  );
  assert.match(perPartition.out, /tenant-7\s+0 running, 1 waiting/);
  assert.deepEqual(await t.queue.limits(), {
    partitionConcurrency: 2,
    partitionRate: { count: 5, ms: 1000 },
    partitionWeights: { vip: 3 },
  });
  const json = JSON.parse((await kvq(["limit", "default", "--json", ...kv])).out);
  assert.deepEqual(json.partitions, [{ partition: "tenant-7", running: 0, waiting: 1 }]);
  assert.equal((await kvq(["limit", "--help"])).code, 0);
});
