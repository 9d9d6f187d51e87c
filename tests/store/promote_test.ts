import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { nextDelayedAt, promoteDue } from "../../src/store/promote.ts";
import { tally, tempQueue } from "./_helpers.ts";

test("promoteDue() moves due tasks to the ready index, more than one commit may check", async () => {
  let now = 1_800_000_000_000;
  await using t = await tempQueue({ clock: () => now });
  await t.queue.enqueueMany(
    Array.from({ length: 120 }, (_, i) => ({ func: "add", args: [i, 0], delay: 1_000 + i })),
  );
  assert.equal(await nextDelayedAt(t.queue.store), now + 1_000);
  assert.equal(await promoteDue(t.queue.store), 0);
  now += 1_059;
  let promoted = 0;
  for (let n; (n = await promoteDue(t.queue.store)) > 0;) promoted += n;
  assert.equal(promoted, 60);
  assert.equal(await nextDelayedAt(t.queue.store), now + 1);
  const counts = await t.queue.counts();
  assert.deepEqual(counts, await tally(t.queue));
  assert.equal(counts.queued, 60);
  assert.equal(counts.scheduled, 60);
});
