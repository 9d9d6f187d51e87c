/**
 * BullMQ as a yardstick for `deno task bench --vs bullmq`: starts Debian's `redis-server` on a
 * free loopback port and runs `_bullmq_runner.mjs` under Node for BullMQ's side of W1 and W2.
 *
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const runner = new URL("./_bullmq_runner.mjs", import.meta.url).pathname;
const root = new URL("../", import.meta.url).pathname;

/** A redis-server this process started. */
export interface Redis {
  readonly port: number;
  stop(): Promise<void>;
}

/**
 * Why BullMQ can't run here, or null when it can: `redis-server` and `node` on the PATH, and
 * `bullmq` installed (a dev dependency: `deno install` puts it in node_modules).
 */
export function bullmqMissing(): string | null {
  const has = (cmd: string) => spawnSync(cmd, ["--version"], { stdio: "ignore" }).status === 0;
  if (!has("redis-server")) {
    return "redis-server is not installed: install it (`apt-get install redis-server`) to " +
      "measure BullMQ";
  }
  if (!has("node")) return "node is not on the PATH: BullMQ runs under Node";
  const probe = spawnSync("node", ["-e", "import('bullmq')"], { cwd: root, stdio: "ignore" });
  if (probe.status !== 0) return "bullmq is not installed: run `deno install` first";
  return null;
}

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts redis-server with its defaults (RDB snapshots, no AOF) on loopback, its files in a
 * temp folder; resolves once it accepts connections.
 */
export async function startRedis(): Promise<Redis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "kvq-bench-redis-"));
  const child = spawn("redis-server", [
    ...["--port", String(port), "--bind", "127.0.0.1", "--dir", dir],
    ...["--save", "3600 1 300 100 60 10000", "--appendonly", "no"],
  ], { stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let out = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 10_000);
    child.stdout!.on("data", (d: Uint8Array) => {
      out += String(d);
      if (out.includes("Ready to accept connections")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}: ${out}`));
    });
  });
  return {
    port,
    async stop() {
      child.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs the runner to its end and parses the JSON line it prints. */
async function run<T>(args: string[]): Promise<T> {
  const child = spawn("node", [runner, ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Uint8Array) => out += String(d));
  child.stderr!.on("data", (d: Uint8Array) => err += String(d));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`BullMQ runner ${args[0]} exited with ${code}: ${err}`);
  return JSON.parse(out.trim().split("\n").pop()!) as T;
}

/** W1 on BullMQ: bulk add, then one Worker at `concurrency`. */
export async function bullmqW1(
  redis: Redis,
  tasks: number,
  concurrency: number,
): Promise<{ "enqueue tasks/s": number; "processing tasks/s": number }> {
  return await run(["w1", String(redis.port), String(tasks), String(concurrency)]);
}

/**
 * W2 on BullMQ: a Worker (concurrency `concurrency`) in one process, jobs added one at a time
 * from another. Returns the sorted enqueue→start and enqueue→result times in ms.
 */
export async function bullmqW2(
  redis: Redis,
  tasks: number,
  concurrency: number,
): Promise<{ toStart: number[]; toResult: number[] }> {
  const queue = `w2-${Date.now()}`;
  const worker = spawn("node", [
    runner,
    "w2-worker",
    String(redis.port),
    queue,
    String(concurrency),
  ], {
    cwd: root,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
  try {
    await new Promise<void>((resolve, reject) => {
      worker.stdout!.on("data", (d: Uint8Array) => {
        if (String(d).includes("ready")) resolve();
      });
      worker.once("exit", (code) => reject(new Error(`BullMQ worker exited with ${code}`)));
    });
    return await run(["w2", String(redis.port), queue, String(tasks)]);
  } finally {
    worker.kill("SIGTERM");
    await exited;
  }
}

type Figures = Record<string, number>;

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
}

/**
 * BullMQ's runs of the workloads it shares with kvq, with the same sizes, named as kvq's
 * figures where they compare.
 */
export function bullmqWorkloads(
  redis: Redis,
  short: boolean,
): Record<string, () => Promise<Figures>> {
  return {
    async W1() {
      const n = short ? 2000 : 10000;
      const c2 = await bullmqW1(redis, n, 2);
      const c50 = await bullmqW1(redis, n, 50);
      return {
        "enqueue tasks/s": c2["enqueue tasks/s"],
        "processing tasks/s, concurrency 2": c2["processing tasks/s"],
        "processing tasks/s, concurrency 50": c50["processing tasks/s"],
      };
    },
    async W2() {
      const m = await bullmqW2(redis, short ? 40 : 200, 2);
      const out: Figures = {};
      for (const p of [0.5, 0.95, 0.99]) {
        out[`enqueue→start p${p * 100} ms, other process`] = pct(m.toStart, p);
      }
      for (const p of [0.5, 0.99]) {
        out[`enqueue→result p${p * 100} ms, other process`] = pct(m.toResult, p);
      }
      return out;
    },
  };
}

/** What is compared: title, kvq's figure, BullMQ's figure, and whether higher is better. */
const COMPARED: [string, string, string, string, boolean][] = [
  [
    "W1 processing: kvq 2 workers / BullMQ concurrency 2",
    "W1",
    "processing tasks/s, 2 workers",
    "processing tasks/s, concurrency 2",
    true,
  ],
  [
    "W1 processing: kvq 2 workers × 25 / BullMQ concurrency 50",
    "W1",
    "processing tasks/s, 2 workers, concurrency 25",
    "processing tasks/s, concurrency 50",
    true,
  ],
  ["W1 bulk enqueue: enqueueMany / addBulk", "W1", "enqueue tasks/s", "enqueue tasks/s", true],
  [
    "W2 enqueue→start p50, other process",
    "W2",
    "enqueue→start p50 ms, other process",
    "enqueue→start p50 ms, other process",
    false,
  ],
  [
    "W2 enqueue→start p99, other process",
    "W2",
    "enqueue→start p99 ms, other process",
    "enqueue→start p99 ms, other process",
    false,
  ],
  [
    "W2 enqueue→result p50, other process",
    "W2",
    "enqueue→result p50 ms, other process",
    "enqueue→result p50 ms, other process",
    false,
  ],
];

/**
 * The comparison table: per pair, kvq's median, BullMQ's median, and how far kvq is ahead
 * (kvq / BullMQ for rates, BullMQ / kvq for times: above 1 means kvq is ahead).
 */
export function vsLines(
  kvq: Record<string, Record<string, { median: number }>>,
  bullmq: Record<string, Record<string, { median: number }>>,
): string[] {
  const lines: string[] = [];
  const fmt = (x: number) => (Math.abs(x) >= 100 ? Math.round(x).toString() : x.toFixed(2));
  for (const [title, w, mine, theirs, higher] of COMPARED) {
    const a = kvq[w]?.[mine]?.median;
    const b = bullmq[w]?.[theirs]?.median;
    if (a === undefined || b === undefined) continue;
    const ratio = higher ? a / b : b / a;
    lines.push(
      `  ${title.padEnd(58)} kvq ${fmt(a).padStart(8)}  BullMQ ${fmt(b).padStart(8)}  ${
        ratio.toFixed(2)
      }×`,
    );
  }
  return lines;
}
