/**
 * Judging a cluster dead: only from what a heartbeat read showed, per queue, so neither the
 * observer's own pause nor its other queues make a live cluster look dead or a dead one alive.
 */
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { Cluster } from "../../src/cluster/cluster.ts";
import { Liveness } from "../../src/cluster/liveness.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { claimTasks } from "../../src/store/claim.ts";
import { writeHeartbeat } from "../../src/store/heartbeats.ts";
import { CLUSTER_TASKS, tempDir } from "./_process.ts";

const beat = (versionstamp: string) =>
  new Map([["other", { versionstamp, info: { id: "other", host: "elsewhere", pid: 1 } }]]);

test("Liveness judges death as of its latest read: its own pause is not the others' silence", () => {
  let now = 0;
  const liveness = new Liveness("me", 3000, () => now);
  liveness.observe(beat("a"));
  now = 1000;
  liveness.observe(beat("b"));
  // The observer is paused for 10 s (SIGSTOP) after that read: nothing new was read.
  now = 11_000;
  assert.equal(liveness.isDead("other"), false, "no read has shown it standing still");
  // A read begun after the pause shows it beat meanwhile: alive.
  liveness.observe(beat("c"), 11_000);
  assert.equal(liveness.isDead("other"), false);
  // Reads that show the same beat for the lease timeout: dead.
  now = 14_500;
  liveness.observe(beat("c"), 14_500);
  assert.equal(liveness.isDead("other"), true);
  assert.equal(liveness.isDead("me"), false, "never itself");
});

test("Liveness counts a beat as new from when the read that showed it ended, not began", () => {
  // A read begins, the observer is paused (SIGSTOP) for 4.5 s before KV answers, and the
  // answer shows a beat written during the pause. The next read, 0.6 s later, shows the same
  // beat (the owner beats every second): it stood still for 0.6 s, not 5.1 s.
  let now = 0;
  const liveness = new Liveness("me", 3000, () => now);
  liveness.observe(beat("a"), 0);
  const readAt = 1000;
  now = 5500;
  liveness.observe(beat("b"), readAt);
  now = 6100;
  liveness.observe(beat("b"), 6100);
  assert.equal(liveness.isDead("other"), false, "seen beating 0.6 s ago");
  // Never seen at all: its silence counts from the end of the latest read too.
  assert.equal(liveness.isDead("unknown"), false);
  now = 9200;
  liveness.observe(beat("b"), 9200);
  assert.equal(liveness.isDead("other"), true, "3.7 s still since the read that showed it");
});

test("Liveness does not take a peer's silence while the observer was paused for its death: the peer may have been blocked by it", () => {
  // Heartbeats every 500 ms, lease 3 s. The observer is stopped (SIGSTOP) for 4.5 s while it
  // holds the KV file's write lock, so the peer can't beat either: the first read after the
  // pause shows the beat from before it. (A chaos run on 2026-12-08 saw three tasks of a live
  // cluster requeued and run twice so.)
  let now = 0;
  const liveness = new Liveness("me", 3000, () => now, 500);
  for (let i = 0; i <= 4; i++) {
    now = i * 500;
    liveness.observe(beat(`b${i}`), now);
  }
  now = 2000 + 4500;
  liveness.observe(beat("b4"), now);
  assert.equal(liveness.isDead("other"), false, "4.5 s still, but watched for 1 s of it");
  // Once the lock is free the peer beats again.
  now += 500;
  liveness.observe(beat("b5"), now);
  assert.equal(liveness.isDead("other"), false);
  // A peer that really died is found after the lease of watched time.
  for (let t = 500; t <= 3000; t += 500) {
    now += 500;
    liveness.observe(beat("b5"), now);
    assert.equal(liveness.isDead("other"), t >= 3000, `${t} ms watched`);
  }
});

test("a cluster serving two queues recovers the lease of a dead cluster of another host in the second", async () => {
  using dir = tempDir();
  await using queue = await openQueue({ kv: dir.kv, name: "b" });
  const { id } = await queue.enqueue("add", 1, 2);
  // A cluster on another host claimed it, beat once, and died.
  const [claimed] = await claimTasks(queue.store, { cluster: "ghost", workers: ["ghost-w1"] });
  assert.equal(claimed?.record.id, id);
  await writeHeartbeat(queue.store, {
    id: "ghost",
    host: "another-host",
    pid: 4242,
    runtime: "deno",
    version: "0",
    state: "running",
    startedAt: Date.now(),
    beatAt: Date.now(),
    queues: ["b"],
    weights: [1],
    paused: [],
    workers: [],
    reincarnations: 0,
    processed: 0,
    succeeded: 0,
    failed: 0,
    rss: 0,
    cpu: 0,
    lowestFreeMemory: 0,
    stuck: [],
  }, 60_000);
  const cluster = new Cluster({
    kv: dir.kv,
    tasks: [CLUSTER_TASKS],
    queues: ["a", "b"],
    workers: 1,
    heartbeat: 100,
    leaseTimeout: 500,
  });
  const recovered = cluster.once("cluster:recovered", (e) => e.cluster === "ghost");
  await cluster.start();
  try {
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error("the ghost's lease was never recovered")), 15_000)
    );
    await Promise.race([recovered, timeout]);
    assert.equal(await queue.result(id, { wait: 10_000 }), 3);
  } finally {
    await cluster.stop();
  }
});
