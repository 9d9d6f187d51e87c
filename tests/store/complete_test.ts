import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { claimTasks } from "../../src/store/claim.ts";
import { completeTasks } from "../../src/store/complete.ts";
import { promoteDue } from "../../src/store/promote.ts";
import { recoverCluster } from "../../src/store/recover.ts";
import { tempQueue } from "./_helpers.ts";

test("completeTasks() keeps the winner's result chunks when a late duplicate result arrives", async () => {
  await using t = await tempQueue();
  const { queue } = t;
  const store = queue.store;
  const { id } = await queue.enqueue({ func: "big", args: [], maxAttempts: 3 });
  const [first] = await claimTasks(store, { cluster: "a", workers: ["w1"] });
  // Cluster a is presumed dead: the run counts as a crash and is retried, and b claims it.
  await recoverCluster(store, "a", { reason: "gone" });
  await promoteDue(store);
  // It was running when a crashed: b runs it alone (quarantine).
  const [second] = await claimTasks(store, { cluster: "b", workers: ["w2"], alone: true });
  assert.equal(second!.record.id, id);
  const winner = JSON.stringify("b".repeat(70_000));
  const [won] = await completeTasks(store, [{
    kind: "success",
    claimed: second!,
    resultJson: winner,
  }]);
  assert.equal(won!.record?.state, "succeeded");
  assert.ok(won!.record!.resultChunks > 0 && won!.record!.resultBlob !== null);
  // a comes back late with its own, different result: refused, and the chunks stay b's.
  const late = JSON.stringify("a".repeat(70_000));
  const [lost] = await completeTasks(store, [{
    kind: "success",
    claimed: first!,
    resultJson: late,
  }]);
  assert.equal(lost!.record, null);
  assert.equal(await queue.result(id), "b".repeat(70_000));
  const blobs = new Set<unknown>();
  for await (const e of store.kv.list({ prefix: store.keys.blobs(id, "result") })) {
    blobs.add(e.key[e.key.length - 2]);
  }
  assert.deepEqual([...blobs], [won!.record!.resultBlob], "the loser's chunks were dropped");
  await queue.delete(id);
  let left = 0;
  for await (const _ of store.kv.list({ prefix: store.keys.blobs(id, "result") })) left++;
  assert.equal(left, 0);
});
