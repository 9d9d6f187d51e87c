import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import process from "node:process";
import { stopSignalState } from "../../src/cluster/stop_signals.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { killAll, type Kvq, linesReached, startCluster, tempDir } from "./_process.ts";

test("stopSignalState() takes a repeat within the window as the same request, a later one as force", () => {
  let now = 0;
  const seen: string[] = [];
  const state = stopSignalState({
    onStop: (s) => seen.push(`stop ${s}`),
    onForce: (s) => seen.push(`force ${s}`),
    sameWithinMs: 1000,
    now: () => now,
  });
  state.signal("SIGINT");
  now = 1; // the same Ctrl-C, passed on by a parent
  state.signal("SIGINT");
  now = 999;
  state.signal("SIGTERM");
  assert.deepEqual(seen, ["stop SIGINT"]);
  now = 1500;
  state.signal("SIGINT");
  now = 9000;
  state.signal("SIGINT");
  assert.deepEqual(seen, ["stop SIGINT", "force SIGINT"]);
});

test("stopSignalState() counts a stop request from a pipe as the first signal", () => {
  let now = 0;
  const seen: string[] = [];
  const state = stopSignalState({
    onStop: () => seen.push("stop"),
    onForce: () => seen.push("force"),
    now: () => now,
  });
  state.stop();
  now = 5; // the group's own signal, just after the sentinel's request
  state.signal("SIGINT");
  state.stop();
  assert.deepEqual(seen, ["stop"]);
});

/**
 * Starts a cluster as a process-group leader (under its sentinel on Deno), runs one task of
 * `ms`, and signals as `send` does while the task runs. Returns the exit, the task's end state
 * and how long the stop took.
 */
async function stopWhileRunning(send: (cluster: Kvq) => Promise<void>, ms = 1500) {
  using dir = tempDir();
  const log = join(dir.path, "started.log");
  await using queue = await openQueue({ kv: dir.kv });
  const started: Kvq[] = [];
  try {
    const cluster = await startCluster(dir.kv, ["--workers", "1", "--grace", "5000"], {
      group: true,
    });
    started.push(cluster);
    const { id } = await queue.enqueue({ func: "record", args: [log, 1] });
    await queue.result(id, { wait: 20_000 });
    // `record` writes its line when it starts, then runs for `ms`.
    const slow = await queue.enqueue({ func: "record", args: [log, ms] });
    await linesReached(log, 2, 20_000);
    assert.equal((await queue.fetch(slow.id))?.state, "running");
    const t0 = performance.now();
    await send(cluster);
    const exit = await cluster.exited;
    const took = performance.now() - t0;
    const record = await queue.fetch(slow.id);
    return { exit, took, state: record?.state, output: cluster.output() };
  } finally {
    killAll(started);
  }
}

function group(cluster: Kvq, signal: NodeJS.Signals): void {
  process.kill(-cluster.pid, signal);
}

test("kvq cluster: SIGINT to the whole process group (Ctrl-C) lets the running task finish and exits 0", async () => {
  const r = await stopWhileRunning((c) => Promise.resolve(group(c, "SIGINT")));
  assert.deepEqual(r.exit, { code: 0, signal: null }, r.output);
  assert.equal(r.state, "succeeded", r.output);
  assert.ok(r.took > 500, `stopped in ${r.took.toFixed(0)} ms, before the task could finish`);
});

test("kvq cluster: SIGTERM to the whole process group (systemd's control-group) stops as gracefully", async () => {
  const r = await stopWhileRunning((c) => Promise.resolve(group(c, "SIGTERM")));
  assert.deepEqual(r.exit, { code: 0, signal: null }, r.output);
  assert.equal(r.state, "succeeded", r.output);
});

test("kvq cluster: a signal passed on twice by a parent (deno task) is one graceful stop", async () => {
  const r = await stopWhileRunning(async (c) => {
    process.kill(c.pid, "SIGINT");
    await new Promise((resolve) => setTimeout(resolve, 5));
    process.kill(c.pid, "SIGINT");
  });
  assert.deepEqual(r.exit, { code: 0, signal: null }, r.output);
  assert.equal(r.state, "succeeded", r.output);
});

test("kvq cluster: a second signal after the first second exits at once with 130", async () => {
  const r = await stopWhileRunning(async (c) => {
    group(c, "SIGINT");
    await c.line(/stopping: finishing running tasks/);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    group(c, "SIGINT");
  }, 8000);
  assert.equal(r.exit.code, 130, r.output);
  assert.ok(r.took < 4000, `took ${r.took.toFixed(0)} ms`);
  assert.equal(r.state, "running", "the interrupted task waits for lease recovery");
});
