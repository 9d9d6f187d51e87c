import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { runInline } from "../../src/cluster/inline.ts";
import { purgeFinished } from "../../src/store/purge.ts";
import { tally, tempQueue } from "./_helpers.ts";

test("purgeFinished() deletes a state's finished tasks before a cutoff, past one page, and keeps the counters true", async () => {
  let now = 1_000_000;
  await using t = await tempQueue({ clock: () => now });
  const { queue } = t;
  const add = (a: number, b: number) => a + b;
  // 250 tasks that stop at time 1,000,000 and 150 that stop an hour later.
  await queue.enqueueMany(Array.from({ length: 250 }, (_, i) => ({ func: "add", args: [i, 1] })));
  await runInline(queue.store, { tasks: new Map([["add", add]]), burst: true });
  now += 3_600_000;
  await queue.enqueueMany(Array.from({ length: 150 }, (_, i) => ({ func: "add", args: [i, 2] })));
  await runInline(queue.store, { tasks: new Map([["add", add]]), burst: true });
  assert.equal((await queue.counts()).succeeded, 400);

  const cutoff = now - 60_000;
  const dry = await purgeFinished(queue.store, "succeeded", { before: cutoff, dryRun: true });
  assert.deepEqual(dry, { deleted: 250, stale: 0, more: false });
  assert.equal((await queue.counts()).succeeded, 400, "a dry run deletes nothing");

  const done = await purgeFinished(queue.store, "succeeded", { before: cutoff, page: 40 });
  assert.deepEqual(done, { deleted: 250, stale: 0, more: false });
  const counts = await queue.counts();
  assert.equal(counts.succeeded, 150, "the newer ones are kept");
  assert.deepEqual(await tally(queue), counts, "the counters match the records");

  // A budget stops it early and says more remain.
  const partial = await purgeFinished(queue.store, "succeeded", { budgetMs: 0 });
  assert.deepEqual(partial, { deleted: 0, stale: 0, more: true });
  assert.deepEqual(await purgeFinished(queue.store, "succeeded"), {
    deleted: 150,
    stale: 0,
    more: false,
  });
  await assert.rejects(purgeFinished(queue.store, "queued"), /Only finished tasks/);
});
