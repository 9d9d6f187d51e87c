import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import process from "node:process";
import { openQueue, type Queue } from "../../src/queue/queue.ts";
import type { TaskRecord } from "../../src/task/record.ts";
import {
  countsReach,
  killAll,
  type Kvq,
  linesReached,
  readRuns,
  startCluster,
  tempDir,
} from "./_process.ts";
import { report } from "../_report.ts";

/** Every record of `ids`, read 100 at a time. */
async function records(queue: Queue, ids: string[]): Promise<TaskRecord[]> {
  const out: TaskRecord[] = [];
  for (let i = 0; i < ids.length; i += 100) {
    const part = await Promise.all(ids.slice(i, i + 100).map((id) => queue.fetch(id)));
    for (const [j, r] of part.entries()) {
      assert.ok(r !== null, `task ${ids[i + j]} is gone`);
      out.push(r);
    }
  }
  return out;
}

function ok(exit: { code: number | null; signal: string | null }, output: string): void {
  assert.deepEqual(exit, { code: 0, signal: null }, output);
}

test("kvq cluster killed with SIGKILL mid-run: the next cluster requeues its leases and every task succeeds", async () => {
  using dir = tempDir();
  const log = join(dir.path, "runs.log");
  const queue = await openQueue({ kv: dir.kv });
  const started: Kvq[] = [];
  const workers = 4;
  const timing = ["--heartbeat", "500", "--lease-timeout", "2000"];
  try {
    const tasks = await queue.enqueueMany(
      Array.from({ length: 2000 }, () => ({ func: "record", args: [log, 3] })),
    );
    const ids = tasks.map((t) => t.id);
    const first = await startCluster(dir.kv, [
      "--workers",
      `${workers}`,
      "--no-sentinel",
      ...timing,
    ]);
    started.push(first);
    await linesReached(log, 500, 60_000);
    process.kill(first.pid, "SIGKILL");
    const killedAt = performance.now();
    assert.equal((await first.exited).signal, "SIGKILL");
    const atKill = await queue.counts();
    const linesAtKill = readRuns(log).size;
    assert.ok(atKill.succeeded < 2000, `all done before the kill: ${JSON.stringify(atKill)}`);
    // What the dead cluster held: the tasks its workers ran, the ones whose results were being
    // written, and the ones it prefetched (at most the prefetch default of 100).
    assert.ok(
      atKill.running <= 2 * workers + 100,
      `${atKill.running} leases held by ${workers} workers at the kill`,
    );

    const second = await startCluster(dir.kv, ["--workers", `${workers}`, "--burst", ...timing]);
    started.push(second);
    let recoveredAfter = 0;
    if (atKill.running > 0) {
      const line = await second.line(/requeued \d+ tasks? of dead cluster/);
      recoveredAfter = (performance.now() - killedAt) / 1000;
      assert.match(line, new RegExp(`requeued ${atKill.running} task`));
      assert.ok(recoveredAfter < 15, `leases requeued ${recoveredAfter} s after the kill`);
    }
    ok(await second.exited, second.output());
    const finishedAfter = (performance.now() - killedAt) / 1000;

    const counts = await queue.counts();
    assert.equal(counts.succeeded, 2000, JSON.stringify(counts));
    assert.equal(counts.queued + counts.running + counts.scheduled + counts.failed, 0);
    for (const r of await records(queue, ids)) assert.equal(r.state, "succeeded", r.id);
    const runs = readRuns(log);
    const missing = ids.filter((id) => !runs.has(id));
    assert.deepEqual(missing, []);
    const twice = [...runs].filter(([, attempts]) => attempts.length > 1);
    assert.ok(
      twice.length <= atKill.running,
      `${twice.length} tasks ran twice; ${atKill.running} were running at the kill`,
    );
    // Prefetched tasks that never started came back uncounted: they ran once, as attempt 1.
    // Only those the dead cluster had handed (or was about to hand) to a worker count an
    // attempt without running; that is at most one arming batch beyond its places.
    const countedUnrun = [...runs].filter(([, attempts]) =>
      attempts.length === 1 && attempts[0] !== 1
    );
    assert.ok(
      countedUnrun.length <= 2 * workers + 25,
      `${countedUnrun.length} tasks lost an attempt without running`,
    );
    // A task that ran again did so as a new attempt.
    for (const [id, attempts] of twice) assert.deepEqual(attempts, [1, 2], id);
    report(
      `SIGKILL after ${linesAtKill} runs with ${atKill.running} leases held; requeued ${
        recoveredAfter.toFixed(2)
      } s after the kill; ${twice.length} ran twice; all done ${
        finishedAfter.toFixed(1)
      } s after the kill`,
    );
  } finally {
    killAll(started);
    queue.close();
  }
});

test("kvq cluster x3 on one KV file: each of 3,000 tasks runs exactly once", async () => {
  using dir = tempDir();
  const log = join(dir.path, "runs.log");
  const queue = await openQueue({ kv: dir.kv });
  const started: Kvq[] = [];
  try {
    const clusters = await Promise.all(
      [1, 2, 3].map(() => startCluster(dir.kv, ["--workers", "2", "--no-sentinel"])),
    );
    started.push(...clusters);
    const t0 = performance.now();
    const tasks = await queue.enqueueMany(
      Array.from({ length: 3000 }, () => ({ func: "record", args: [log, 0] })),
    );
    await countsReach(queue, (c) => c.succeeded === 3000, 120_000);
    const seconds = (performance.now() - t0) / 1000;
    const exits = await Promise.all(clusters.map((c) => c.stop("SIGTERM")));
    for (const [i, exit] of exits.entries()) ok(exit, clusters[i]!.output());

    const runs = readRuns(log);
    const wrong = tasks.filter((t) => runs.get(t.id)?.length !== 1);
    assert.deepEqual(wrong.map((t) => [t.id, runs.get(t.id)]), []);
    assert.equal(runs.size, 3000);
    const byWorker = new Map<string, number>();
    for (const r of await records(queue, tasks.map((t) => t.id))) {
      assert.equal(r.state, "succeeded");
      assert.equal(r.attempt, 1);
      byWorker.set(r.cluster!, (byWorker.get(r.cluster!) ?? 0) + 1);
    }
    report(
      `3 clusters ran 3,000 tasks in ${seconds.toFixed(1)} s; per cluster: ${
        [...byWorker.values()].join(", ")
      }`,
    );
  } finally {
    killAll(started);
    queue.close();
  }
});

// Default grace: running tasks finish (`slowRecord` logs as it ends, so each id is logged once).
// `--grace 0`: running tasks are released (`record` logs as it starts, so a released one is
// logged twice, both times as attempt 1).
for (const grace of [null, 0]) {
  const how = grace === null
    ? "lets running tasks finish"
    : "with --grace 0 releases running tasks";
  const [func, ms] = grace === null ? ["slowRecord", 20] : ["record", 100];
  test(`kvq cluster on SIGTERM under load ${how}, exits 0, and a burst cluster runs the rest`, async () => {
    using dir = tempDir();
    const log = join(dir.path, "runs.log");
    const queue = await openQueue({ kv: dir.kv });
    const started: Kvq[] = [];
    try {
      const tasks = await queue.enqueueMany(
        Array.from({ length: 200 }, () => ({ func, args: [log, ms] })),
      );
      const ids = tasks.map((t) => t.id);
      const first = await startCluster(dir.kv, [
        "--workers",
        "4",
        ...(grace === null ? [] : ["--grace", `${grace}`]),
      ]);
      started.push(first);
      await linesReached(log, 40, 60_000);
      const exit = await first.stop("SIGTERM");
      ok(exit, first.output());
      assert.match(first.output(), /stopping: finishing running tasks/);
      const between = await queue.counts();
      assert.equal(between.running, 0, `leases left: ${JSON.stringify(between)}`);
      assert.ok(between.queued > 0, `nothing left for the second cluster`);
      assert.equal(between.queued + between.succeeded, 200, JSON.stringify(between));
      const runsBetween = readRuns(log);
      // Started by the first cluster but not finished by it: released.
      const released = [...runsBetween.keys()].length - between.succeeded;
      if (grace === null) assert.equal(released, 0);
      else assert.ok(released > 0, "no running task was released");

      const second = await startCluster(dir.kv, ["--workers", "4", "--burst"]);
      started.push(second);
      ok(await second.exited, second.output());

      const counts = await queue.counts();
      assert.equal(counts.succeeded, 200, JSON.stringify(counts));
      // The stop line counts what the benchmarks read: commits, mutations, worker messages.
      assert.match(
        await second.line(/stopped:/),
        /\d+ KV commits \(\d[\d,]* KV mutations\), \d[\d,]* worker messages$/,
      );
      const runs = readRuns(log);
      assert.deepEqual(ids.filter((id) => !runs.has(id)), []);
      for (const r of await records(queue, ids)) {
        assert.equal(r.state, "succeeded");
        // A released attempt is given back, so every task succeeded at its first counted one.
        assert.equal(r.attempt, 1, `${r.id} ended at attempt ${r.attempt}`);
      }
      const twice = [...runs].filter(([, a]) => a.length > 1);
      assert.equal(twice.length, released);
      for (const [id, attempts] of twice) assert.deepEqual(attempts, [1, 1], id);
      report(
        `SIGTERM after ${runsBetween.size} started: ${between.succeeded} done, ${released} released, ${between.queued} left queued`,
      );
    } finally {
      killAll(started);
      queue.close();
    }
  });
}
