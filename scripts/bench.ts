/**
 * The benchmark: prints figures for this machine. Not a test: nothing here passes or fails.
 *
 *   deno task bench [--short] [--json]
 *   bun scripts/bench.ts [--short] [--json]
 *
 * Figures: raw KV sequential commits/s (the yardstick); bulk and one-at-a-time enqueue; no-op
 * tasks/s end-to-end through a cluster of 2 workers; enqueue→start and enqueue→result latency
 * from the same process and from another process; idle CPU and KV commits of a 4-worker cluster;
 * its RSS.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { Cluster } from "../src/cluster/cluster.ts";
import { openQueue } from "../src/queue/queue.ts";
import { runtime } from "../src/runtime/mod.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { short: { type: "boolean" }, json: { type: "boolean" } },
});
const short = values.short === true;
const tasksFile = new URL("../examples/tasks.ts", import.meta.url).pathname;
const mainFile = new URL("../main.ts", import.meta.url).pathname;
const figures: Record<string, number | string> = {};
const dirs: string[] = [];

function tempKv(): string {
  const dir = mkdtempSync(join(tmpdir(), "kvq-bench-"));
  dirs.push(dir);
  return join(dir, "kv.sqlite3");
}

function record(name: string, value: number, unit: string): void {
  figures[name] = Math.round(value * 100) / 100;
  if (!values.json) console.log(`${name.padEnd(44)} ${String(figures[name]).padStart(10)} ${unit}`);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
}

function cliCommand(args: string[]) {
  return runtime.name === "deno"
    ? { cmd: process.execPath, args: ["run", "-A", mainFile, ...args] }
    : { cmd: process.execPath, args: [mainFile, ...args] };
}

function procCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

function procRssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0) / 1024;
}

async function rawCommits(): Promise<void> {
  const kv = await runtime.openKv(tempKv());
  const n = short ? 1000 : 5000;
  const value = new Uint8Array(200);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await kv.atomic().set(["raw", i], value).commit();
  record("raw KV sequential commits", n / ((performance.now() - t0) / 1000), "commits/s");
  kv.close();
}

async function enqueueRates(): Promise<void> {
  await using queue = await openQueue({ kv: tempKv() });
  const n = short ? 500 : 2000;
  let t0 = performance.now();
  for (let i = 0; i < n; i++) await queue.enqueue("noop");
  record("enqueue, one at a time", n / ((performance.now() - t0) / 1000), "tasks/s");
  const bulk = short ? 5000 : 20000;
  t0 = performance.now();
  await queue.enqueueMany(Array.from({ length: bulk }, () => ({ func: "noop" })));
  record("enqueue, bulk", bulk / ((performance.now() - t0) / 1000), "tasks/s");
}

async function throughput(): Promise<void> {
  const kv = tempKv();
  const n = short ? 2000 : 10000;
  {
    await using queue = await openQueue({ kv });
    await queue.enqueueMany(Array.from({ length: n }, () => ({ func: "noop" })));
  }
  const cluster = new Cluster({ kv, tasks: [tasksFile], workers: 2, burst: true });
  let first = 0;
  let last = 0;
  cluster.on("task:start", () => first ||= performance.now());
  cluster.on("task:finish", () => last = performance.now());
  await cluster.start();
  await cluster.stopped;
  record(`cluster no-op, 2 workers, ${n} tasks`, n / ((last - first) / 1000), "tasks/s");
}

async function latencySameProcess(): Promise<void> {
  const kv = tempKv();
  await using queue = await openQueue({ kv });
  const cluster = new Cluster({ kv, tasks: [tasksFile], workers: 2 });
  await cluster.start();
  const starts = new Map<string, number>();
  cluster.on("task:start", ({ record }) => starts.set(record.id, performance.now()));
  const toStart: number[] = [];
  const toResult: number[] = [];
  const n = short ? 40 : 200;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const { id } = await queue.enqueue("noop");
    await queue.wait(id, { wait: 5000 });
    toResult.push(performance.now() - t0);
    toStart.push((starts.get(id) ?? NaN) - t0);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await cluster.stop();
  report("same process", toStart, toResult);
}

function report(where: string, toStart: number[], toResult: number[]): void {
  toStart.sort((a, b) => a - b);
  toResult.sort((a, b) => a - b);
  record(`enqueue→start p50, ${where}`, percentile(toStart, 0.5), "ms");
  record(`enqueue→start p99, ${where}`, percentile(toStart, 0.99), "ms");
  record(`enqueue→result p50, ${where}`, percentile(toResult, 0.5), "ms");
  record(`enqueue→result p99, ${where}`, percentile(toResult, 0.99), "ms");
}

async function withClusterProcess<T>(
  kv: string,
  workers: number,
  fn: (pid: number) => Promise<T>,
): Promise<T> {
  const { cmd, args } = cliCommand([
    "cluster",
    "--kv",
    kv,
    "--tasks",
    tasksFile,
    "--workers",
    String(workers),
    "--no-sentinel",
  ]);
  const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on("data", (d: Uint8Array) => {
      if (String(d).includes("workers, queues")) resolve();
    });
    child.on("exit", (code) => reject(new Error(`cluster exited early with ${code}`)));
  });
  try {
    return await fn(child.pid!);
  } finally {
    child.kill("SIGTERM");
    await new Promise((resolve) => child.on("exit", resolve));
  }
}

async function latencyCrossProcess(): Promise<void> {
  const kv = tempKv();
  await using queue = await openQueue({ kv });
  await withClusterProcess(kv, 2, async () => {
    const toStart: number[] = [];
    const toResult: number[] = [];
    const n = short ? 40 : 200;
    for (let i = 0; i < n; i++) {
      const t0 = Date.now();
      const p0 = performance.now();
      const { id } = await queue.enqueue("noop");
      const done = await queue.wait(id, { wait: 5000 });
      toResult.push(performance.now() - p0);
      toStart.push((done.startedAt ?? NaN) - t0);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    report("another process", toStart, toResult);
  });
}

async function idle(): Promise<void> {
  const kv = tempKv();
  const seconds = short ? 10 : 60;
  const probe = await runtime.openKv(kv);
  await withClusterProcess(kv, 4, async (pid) => {
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const before = procCpuMs(pid);
    const v0 =
      (await probe.atomic().set(["probe"], new Uint8Array()).commit()) as Deno.KvCommitResult;
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    const v1 =
      (await probe.atomic().set(["probe"], new Uint8Array()).commit()) as Deno.KvCommitResult;
    const cpu = (procCpuMs(pid) - before) / 1000;
    const commits =
      Number(BigInt(`0x${v1.versionstamp}`) - BigInt(`0x${v0.versionstamp}`)) / 65536 - 1;
    record(
      `idle cluster CPU per minute (4 workers, ${seconds} s)`,
      cpu * 60 / seconds,
      "CPU-s/min",
    );
    record("idle cluster KV commits per second", commits / seconds, "commits/s");
    record("cluster RSS with 4 workers", procRssMb(pid), "MB");
  });
  probe.close();
}

if (!values.json) {
  console.log(
    `kvq bench on ${runtime.name} ${runtime.version}: ${cpus().length} cores (${
      cpus()[0]?.model ?? "?"
    }), load ${loadavg().map((l) => l.toFixed(2)).join(" ")}${short ? ", short mode" : ""}\n`,
  );
}
try {
  await rawCommits();
  await enqueueRates();
  await throughput();
  await latencySameProcess();
  await latencyCrossProcess();
  await idle();
} finally {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
if (values.json) {
  console.log(JSON.stringify({ runtime: runtime.name, version: runtime.version, figures }));
}
