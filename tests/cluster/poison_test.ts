/**
 * Quarantine: a task whose run keeps killing its host (real `kvq cluster` processes, killed by
 * SIGKILL from inside the task) is retried alone, and after `maxCrashes` such crashes ends
 * failed with a `PoisonTaskError` naming the clusters it took down, while the tasks that ran
 * beside it the first time run and the clusters go on with other work.
 */
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { openQueue } from "../../src/queue/queue.ts";
import { killAll, type Kvq, startCluster, tempDir } from "./_process.ts";

test("a task that kills its cluster twice ends failed as poison, and the clusters keep running other work", async () => {
  using dir = tempDir();
  const marker = join(dir.path, "ran.txt");
  await using queue = await openQueue({ kv: dir.kv });
  const poison = await queue.enqueue("killHost");
  const others = await queue.enqueueMany(
    Array.from({ length: 6 }, () => ({ func: "record", args: [marker, 5] })),
  );
  const args = ["--workers", "2", "--no-sentinel", "--heartbeat", "200", "--lease-timeout", "2000"];
  const clusters: Kvq[] = [];
  try {
    const dead: string[] = [];
    for (let i = 0; i < 2; i++) {
      const cluster = await startCluster(dir.kv, args);
      clusters.push(cluster);
      dead.push((await cluster.line(/^kvq: cluster \S+/)).split(" ")[2]!);
      const exit = await cluster.exited;
      assert.equal(exit.signal, "SIGKILL", `cluster ${i + 1} was killed by the task`);
    }
    const last = await startCluster(dir.kv, args);
    clusters.push(last);
    const ended = await queue.wait(poison.id, { wait: 30_000 });
    assert.equal(ended.state, "failed");
    assert.equal(ended.error?.name, "PoisonTaskError");
    assert.deepEqual(ended.crashedOn, dead);
    for (const id of dead) assert.match(ended.error!.message, new RegExp(id));
    assert.equal(ended.attempt - ended.crashes, 0, "its crashes used up no attempt");
    for (const t of others) {
      const r = await queue.wait(t.id, { wait: 30_000 });
      assert.equal(r.state, "succeeded", `${t.id} ran to the end`);
      assert.ok(r.crashes <= 1, "a task that ran beside the poison was not taken for it");
    }
    const ran = readFileSync(marker, "utf8").trim().split("\n").map((l) => l.split(" ")[0]);
    for (const t of others) assert.ok(ran.includes(t.id));
    const after = await queue.enqueue("add", 2, 3);
    assert.equal(await queue.result(after.id, { wait: 10_000 }), 5);
    assert.equal(last.child.exitCode, null, "the last cluster still runs");
    assert.equal(last.child.signalCode, null);
  } finally {
    killAll(clusters);
  }
});
