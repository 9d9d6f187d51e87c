/**
 * Running without the native queue, as on remote KV: a clear start-up error for an unreachable
 * server, clusters woken by the file watch and their own timers only, and a KV whose writes fail
 * for a while (injected at the adapter boundary, the one place a fake is allowed).
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { Cluster } from "../../src/cluster/cluster.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { openFailingHandle } from "../fixtures/failing_kv.ts";

const isDeno = "Deno" in globalThis;
const main = new URL("../../main.ts", import.meta.url).pathname;
const tasks = new URL("../../examples/tasks.ts", import.meta.url).pathname;

function kvqArgs(args: string[]): [string, string[]] {
  return isDeno
    ? [process.execPath, ["run", "-A", main, ...args]]
    : [process.execPath, [main, ...args]];
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "kvq-remote-"));
}

test("openKvAt() fails at start-up with the URL when nothing listens on a remote KV port", () => {
  const [cmd, args] = kvqArgs(["tasks", "--kv", "http://127.0.0.1:9"]);
  const run = spawnSync(cmd, args, {
    env: { ...process.env, DENO_KV_ACCESS_TOKEN: "test-token" },
    encoding: "utf8",
    timeout: 30_000,
  });
  assert.equal(run.status, 1, run.stderr);
  assert.match(run.stderr, /Cannot open the KV store at http:\/\/127\.0\.0\.1:9/);
  assert.match(run.stderr, /check the URL, that the server is running, and DENO_KV_ACCESS_TOKEN/);
});

test("Cluster with --no-native-queue runs tasks enqueued by another process, delayed ones on time", async () => {
  const dir = tempDir();
  const kv = join(dir, "kv.sqlite3");
  const [cmd, args] = kvqArgs([
    "cluster",
    "--kv",
    kv,
    "--tasks",
    tasks,
    "--workers",
    "2",
    "--no-native-queue",
    "--no-sentinel",
  ]);
  const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
  try {
    await new Promise<void>((resolve, reject) => {
      let err = "";
      child.stderr!.on("data", (d: Uint8Array) => {
        err += String(d);
        if (err.includes("no native queue")) resolve();
      });
      child.on("exit", (code) => reject(new Error(`cluster exited with ${code}: ${err}`)));
    });
    await using queue = await openQueue({ kv, noNativeQueue: true });
    const now = await queue.enqueue("add", 2, 3);
    assert.equal(await queue.result(now.id, { wait: 10_000 }), 5);
    const lateness: number[] = [];
    for (let i = 0; i < 5; i++) {
      const eta = Date.now() + 300;
      const delayed = await queue.enqueue({ func: "add", args: [i, 1], eta });
      const record = await queue.wait(delayed.id, { wait: 10_000 });
      assert.equal(record.state, "succeeded");
      lateness.push(record.startedAt! - eta);
    }
    lateness.sort((a, b) => a - b);
    assert.ok(lateness[0]! >= 0, `no task starts before its time: ${lateness}`);
    assert.ok(lateness[2]! <= 100, `median lateness within 100 ms across processes: ${lateness}`);
  } finally {
    const exited = new Promise((resolve) => child.on("exit", resolve));
    process.kill(child.pid!, "SIGTERM");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
});

test("Cluster keeps results while KV writes fail and stores them all when KV comes back", async () => {
  const dir = tempDir();
  const path = join(dir, "kv.sqlite3");
  const { real, handle, failing } = await openFailingHandle(path);
  const errors: string[] = [];
  const cluster = new Cluster({
    kv: handle,
    tasks: [tasks],
    workers: 2,
    heartbeat: 200,
    onError: (e, context) => errors.push(`${context}: ${e.message}`),
  });
  try {
    await cluster.start();
    const queue = await openQueue({ kv: real });
    const n = 40;
    // Fail every write as soon as the first task starts: its result must wait in memory.
    cluster.once("task:start").then(() => failing.on = true);
    const enqueued = await queue.enqueueMany(
      Array.from({ length: n }, (_, i) => ({ func: "sleep", args: [20 + i % 3] })),
    );
    await new Promise<void>((resolve) => {
      const check = () => {
        if (failing.refused >= 3) resolve();
        else setTimeout(check, 20);
      };
      check();
    });
    const during = await queue.counts();
    assert.equal(during.succeeded, 0, "nothing is marked succeeded while writes fail");
    failing.on = false;
    for (const t of enqueued) {
      const record = await queue.wait(t.id, { wait: 30_000 });
      assert.equal(record.state, "succeeded", `${t.id} ended ${record.state}`);
    }
    assert.equal((await queue.counts()).succeeded, n);
    assert.ok(errors.some((e) => e.includes("injected")), "the failures were reported");
  } finally {
    failing.on = false;
    await cluster.stop();
    real.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
