/**
 * The benchmark suite: the peers' workloads on this machine. Not a test: it prints figures.
 *
 *   deno task bench [--only W1,W2] [--runtime deno|bun] [--no-native-queue] [--short] [--runs N]
 *                   [--json] [--vs bullmq]
 *   bun scripts/bench.ts …
 *
 * Workloads (clusters run as child processes of the chosen runtime):
 * - W1 throughput: 10,000 no-op tasks bulk-enqueued, then processed by one cluster with 2 and
 *   with 8 workers, and with 2 workers at concurrency 25: enqueue tasks/s, processing tasks/s (first start to last result stored), KV
 *   commits and mutations per task.
 * - W2 latency: 200 tasks enqueued one at a time at ~20/s into an idle cluster, from another
 *   process and from the same process: enqueue→start and enqueue→result p50/p95/p99.
 * - W3 crash: 2,000 tasks of 5 ms; SIGKILL the cluster after 500 finished; restart it: lost,
 *   duplicates (tasks at attempt > 1: those that ran twice, and those whose attempt the crash
 *   counted without running them twice), seconds until work resumes; at concurrency 1 and 25 a
 *   worker.
 * - W4 idle: CPU seconds and KV commits of a 4-worker cluster idle for 60 s, after 45 s to
 *   settle (start-up's one-time heap reduction falls in those).
 * - W5 memory: cluster RSS with 1, 4 and 16 workers, idle and after 10,000 tasks.
 * - W6 CPU-bound: 64 tasks of ~50 ms of computation on 1 and 2 workers: the speed-up.
 * - W7 delayed: 20,000 tasks with delays spread over 30 s: lateness p50/p99 and CPU.
 * - W8 flow control: 5,000 no-ops on 2 workers with no limits, over 100 partitions, with
 *   `partitionConcurrency 1` over them, `rate 1000/1s` and `concurrency 2` (see `bench_flow.ts`).
 * - W9 search and history: look-ups and scans over 100,000 finished tasks, a cluster beside a
 *   scan, and 72 h of history read back (see `bench_search.ts`).
 * - Yardsticks: the raw KV queue (enqueue + listenQueue, messages/s) and raw sequential commits/s.
 *
 * `--vs bullmq` runs BullMQ (on Node, against a `redis-server` the script starts on loopback and
 * stops) on the same W1 and W2 workloads, each BullMQ run right after kvq's, and prints the
 * ratios. Without `redis-server` (Debian: `apt-get install redis-server`) it says so and skips
 * BullMQ.
 *
 * Each workload runs 3 times (`--runs`); the table shows the median and the spread (min–max).
 * `--short` shrinks every workload for CI. Results go to `bench/results/<date>-<runtime>.json`.
 *
 * KV commits are counted by the cluster itself (it prints them when it stops): versionstamps
 * can't count them, as the SQLite backend advances them by a random step per commit.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { Cluster } from "../src/cluster/cluster.ts";
import { openQueue, type Queue } from "../src/queue/queue.ts";
import { runtime } from "../src/runtime/mod.ts";
import type { TaskRecord } from "../src/task/record.ts";
import { runScript } from "./_runtimes.ts";
import { flowWorkload } from "./bench_flow.ts";
import { searchWorkload } from "./bench_search.ts";
import { bullmqMissing, bullmqWorkloads, type Redis, startRedis, vsLines } from "./_bullmq.ts";

const USAGE = `Usage: deno task bench [--only W1,W2,…] [--runtime deno|bun] [--no-native-queue]
                       [--short] [--runs N] [--json] [--vs bullmq]

Workloads W1 to W9 (see the comment at the top of scripts/bench.ts); 3 runs each, the median
and the spread printed; results in bench/results/. --vs bullmq runs BullMQ on a local
redis-server beside W1 and W2 and prints the ratios.`;

function readArgs() {
  try {
    return parseArgs({
      args: process.argv.slice(2),
      options: {
        only: { type: "string" },
        runtime: { type: "string" },
        short: { type: "boolean" },
        runs: { type: "string" },
        json: { type: "boolean" },
        "no-native-queue": { type: "boolean" },
        vs: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    console.error(`kvq bench: ${(error as Error).message}\n${USAGE}`);
    process.exit(2);
  }
}
const { values } = readArgs();
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
if (values.vs !== undefined && values.vs !== "bullmq") {
  console.error(`--vs takes bullmq: received ${JSON.stringify(values.vs)}`);
  process.exit(2);
}
const noNative = values["no-native-queue"] === true;
const short = values.short === true;
const runs = Number(values.runs ?? (short ? 1 : 3));
const clusterRuntime = (values.runtime ?? runtime.name) as "deno" | "bun";
if (clusterRuntime !== "deno" && clusterRuntime !== "bun") {
  console.error(`--runtime must be deno or bun: received ${JSON.stringify(values.runtime)}`);
  process.exit(2);
}
const only = values.only
  ? new Set(values.only.split(",").map((w) => w.trim().toUpperCase()))
  : null;
const root = new URL("../", import.meta.url).pathname;
const tasksFile = join(root, "examples/tasks.ts");
const benchTasksFile = join(root, "scripts/_bench_tasks.ts");
const mainFile = join(root, "main.ts");
const say = (text: string) => {
  if (!values.json) console.log(text);
};

type Figures = Record<string, number>;
const dirs: string[] = [];

function tempKv(): string {
  const dir = mkdtempSync(join(tmpdir(), "kvq-bench-"));
  dirs.push(dir);
  return join(dir, "kv.sqlite3");
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
}

function sorted(xs: number[]): number[] {
  return [...xs].sort((a, b) => a - b);
}

function procStat(pid: number): { cpuMs: number; rssMb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return {
    cpuMs: (Number(f[11]) + Number(f[12])) * 10,
    rssMb: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024,
  };
}

interface Child {
  pid: number;
  /** KV commits the cluster made, from the line it prints when it stops; NaN before. */
  commits(): number;
  /** The mutations of those commits, from the same line; NaN before. */
  mutations(): number;
  /** Messages between the cluster and its workers, from its stop line. */
  messages(): number;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

/** Starts `kvq cluster` on the chosen runtime; resolves once it serves. */
async function startCluster(kv: string, args: string[]): Promise<Child> {
  const cli = [
    "cluster",
    ...["--kv", kv, "--tasks", tasksFile, "--no-sentinel"],
    ...(noNative ? ["--no-native-queue"] : []),
    ...args,
  ];
  const { cmd, args: argv } = runScript(clusterRuntime, mainFile, cli);
  const child = spawn(cmd, argv, { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  child.stderr!.on("data", (d: Uint8Array) => err += String(d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  if (!args.includes("--burst")) {
    await new Promise<void>((resolve, reject) => {
      child.stderr!.on("data", () => {
        if (/workers?, queues/.test(err)) resolve();
      });
      exited.then((code) => reject(new Error(`cluster exited with ${code}: ${err}`)));
    });
  }
  return {
    pid: child.pid!,
    commits: () => Number(/([\d,]+) KV commits?\b/.exec(err)?.[1]?.replaceAll(",", "") ?? NaN),
    mutations: () => Number(/([\d,]+) KV mutations?\b/.exec(err)?.[1]?.replaceAll(",", "") ?? NaN),
    messages: () =>
      Number(/([\d,]+) worker messages?\b/.exec(err)?.[1]?.replaceAll(",", "") ?? NaN),
    exited,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      try {
        process.kill(child.pid!, signal);
      } catch {
        // already gone
      }
      return await exited;
    },
  };
}

/** Every record of a state, in pages. */
async function allTasks(queue: Queue, state: TaskRecord["state"]): Promise<TaskRecord[]> {
  const out: TaskRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await queue.tasks({ state, limit: 1000, ...(cursor ? { cursor } : {}) });
    out.push(...page.tasks);
    cursor = page.cursor ?? undefined;
  } while (cursor);
  return out;
}

/** Resolves once `condition` holds, re-checked on every change of the queue. */
function whenChanged(queue: Queue, condition: () => Promise<boolean>): Promise<void> {
  return new Promise((resolve) => {
    let busy = false;
    const check = async () => {
      if (busy) return;
      busy = true;
      try {
        if (await condition()) {
          off();
          clearInterval(safety);
          resolve();
        }
      } finally {
        busy = false;
      }
    };
    const off = queue.store.changes.subscribe(check);
    // Another process's commits wake this through the file watch; a slow check covers a miss.
    const safety = setInterval(check, 1000);
    void check();
  });
}

async function enqueueNoops(queue: Queue, n: number, func = "noop", args: unknown[] = []) {
  for (let i = 0; i < n; i += 5000) {
    await queue.enqueueMany(Array.from({ length: Math.min(5000, n - i) }, () => ({ func, args })));
  }
}

// ── workloads ──────────────────────────────────────────────────────────────────────────────

const W: Record<string, { title: string; run(): Promise<Figures> }> = {
  Y: {
    title: "yardsticks",
    async run() {
      const kv = await runtime.openKv(tempKv());
      const n = short ? 1000 : 5000;
      let t0 = performance.now();
      for (let i = 0; i < n; i++) await kv.atomic().set(["raw", i], new Uint8Array(200)).commit();
      const commits = n / ((performance.now() - t0) / 1000);
      const m = short ? 500 : 2000;
      let got = 0;
      let done!: () => void;
      const all = new Promise<void>((resolve) => done = resolve);
      const listening = kv.listenQueue(() => {
        if (++got === m) done();
      });
      t0 = performance.now();
      for (let i = 0; i < m; i++) await kv.enqueue("m");
      const enqueued = m / ((performance.now() - t0) / 1000);
      await all;
      const queueRate = m / ((performance.now() - t0) / 1000);
      kv.close();
      await listening.catch(() => {});
      return {
        "raw sequential commits/s": commits,
        "raw queue enqueue/s": enqueued,
        "raw queue enqueue+listen msgs/s": queueRate,
      };
    },
  },
  W1: {
    title: "throughput",
    async run() {
      const out: Figures = {};
      for (const [workers, concurrency] of [[2, 1], [8, 1], [2, 25]] as const) {
        const what = `${workers} workers${concurrency > 1 ? `, concurrency ${concurrency}` : ""}`;
        const kv = tempKv();
        const n = short ? 2000 : 10000;
        await using queue = await openQueue({ kv });
        const t0 = performance.now();
        await enqueueNoops(queue, n);
        out["enqueue tasks/s"] ??= n / ((performance.now() - t0) / 1000);
        const cluster = await startCluster(kv, [
          ...["--workers", String(workers), "--concurrency", String(concurrency), "--burst"],
        ]);
        await cluster.exited;
        const done = await allTasks(queue, "succeeded");
        const first = Math.min(...done.map((r) => r.startedAt ?? Infinity));
        const last = Math.max(...done.map((r) => r.stoppedAt ?? 0));
        out[`processing tasks/s, ${what}`] = done.length / ((last - first) / 1000);
        out[`KV commits per task, ${what}`] = cluster.commits() / n;
        out[`KV mutations per task, ${what}`] = cluster.mutations() / n;
        out[`worker messages per task, ${what}`] = cluster.messages() / n;
      }
      return out;
    },
  },
  W2: {
    title: "latency",
    async run() {
      const n = short ? 40 : 200;
      const measure = async (queue: Queue, starts?: Map<string, number>) => {
        const toStart: number[] = [];
        const toResult: number[] = [];
        for (let i = 0; i < n; i++) {
          const wall = Date.now();
          const t0 = performance.now();
          const { id } = await queue.enqueue("noop");
          const record = await queue.wait(id, { wait: 10_000 });
          toResult.push(performance.now() - t0);
          toStart.push(starts ? (starts.get(id) ?? NaN) - t0 : (record.startedAt ?? NaN) - wall);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        return { toStart: sorted(toStart), toResult: sorted(toResult) };
      };
      const out: Figures = {};
      const put = (where: string, m: { toStart: number[]; toResult: number[] }) => {
        for (const p of [0.5, 0.95, 0.99]) {
          out[`enqueue→start p${p * 100} ms, ${where}`] = pct(m.toStart, p);
        }
        for (const p of [0.5, 0.99]) {
          out[`enqueue→result p${p * 100} ms, ${where}`] = pct(m.toResult, p);
        }
      };
      {
        const kv = tempKv();
        await using queue = await openQueue({ kv });
        const cluster = await startCluster(kv, ["--workers", "2"]);
        try {
          put("other process", await measure(queue));
        } finally {
          await cluster.stop();
        }
      }
      if (clusterRuntime === runtime.name) {
        const kv = tempKv();
        await using queue = await openQueue({ kv, noNativeQueue: noNative });
        const cluster = new Cluster({
          kv,
          tasks: [tasksFile],
          workers: 2,
          noNativeQueue: noNative,
        });
        const starts = new Map<string, number>();
        cluster.on("task:start", ({ record }) => starts.set(record.id, performance.now()));
        await cluster.start();
        try {
          put("same process", await measure(queue, starts));
        } finally {
          await cluster.stop();
        }
      }
      return out;
    },
  },
  W3: {
    title: "crash",
    async run() {
      const out: Figures = {};
      // At the default concurrency, and at 25 a worker (the case where a kill re-ran the most).
      for (const concurrency of [1, 25]) {
        const where = concurrency === 1 ? "" : `, concurrency ${concurrency}`;
        const kv = tempKv();
        await using queue = await openQueue({ kv });
        const n = short ? 600 : 2000;
        const killAt = short ? 150 : 500;
        // Each run logs `id attempt` as it starts (see `_bench_tasks.ts`).
        const log = `${kv}.runs`;
        await enqueueNoops(queue, n, "logRun", [log, 5]);
        const args = [
          ...["--workers", "2", "--concurrency", String(concurrency)],
          ...["--tasks", benchTasksFile],
        ];
        const first = await startCluster(kv, [
          ...args,
          "--heartbeat",
          "500",
          "--lease-timeout",
          "3000",
        ]);
        await whenChanged(queue, async () => (await queue.counts()).succeeded >= killAt);
        await first.stop("SIGKILL");
        const atKill = await queue.counts();
        const restartAt = Date.now();
        const second = await startCluster(kv, [...args, "--burst"]);
        let resumedAt = 0;
        await whenChanged(queue, async () => {
          const c = await queue.counts();
          if (!resumedAt && c.succeeded > atKill.succeeded) resumedAt = Date.now();
          return c.succeeded + c.failed >= n;
        });
        await second.exited;
        const done = await allTasks(queue, "succeeded");
        out[`lost${where}`] = n - done.length;
        out[`duplicates (attempt > 1)${where}`] = done.filter((r) => r.attempt > 1).length;
        // Of those, the tasks that really ran twice (their start logged twice), and those whose
        // attempt the crash counted without running them (armed ahead of a place, see
        // `cluster/held.ts`).
        const runs = new Map<string, number>();
        for (const line of readFileSync(log, "utf8").split("\n")) {
          const id = line.split(" ")[0];
          if (id) runs.set(id, (runs.get(id) ?? 0) + 1);
        }
        out[`ran twice${where}`] = [...runs.values()].filter((k) => k > 1).length;
        out[`attempt counted, never ran twice${where}`] = done.filter((r) =>
          r.attempt > 1 && (runs.get(r.id) ?? 0) < 2
        ).length;
        out[`running at the kill${where}`] = atKill.running;
        out[`seconds until work resumes${where}`] = (resumedAt - restartAt) / 1000;
      }
      return out;
    },
  },
  W4: {
    title: "idle",
    async run() {
      const seconds = short ? 10 : 60;
      const kv = tempKv();
      const t0 = performance.now();
      const cluster = await startCluster(kv, ["--workers", "4"]);
      let cpu: number;
      try {
        // Let start-up settle first: about 30 s after start, V8 shrinks every new isolate's
        // heap once (measured: ~0.2 CPU-s over the main thread and the workers, one time);
        // after that the workers use no CPU at all.
        await new Promise((resolve) => setTimeout(resolve, short ? 5000 : 45_000));
        const cpu0 = procStat(cluster.pid).cpuMs;
        await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
        cpu = (procStat(cluster.pid).cpuMs - cpu0) / 1000;
      } finally {
        await cluster.stop();
      }
      return {
        "CPU-s per idle minute": cpu * 60 / seconds,
        // Over the cluster's whole life, start and stop included: an upper bound.
        "KV commits/s (whole life)": cluster.commits() / ((performance.now() - t0) / 1000),
      };
    },
  },
  W5: {
    title: "memory",
    async run() {
      const out: Figures = {};
      const n = short ? 2000 : 10000;
      for (const workers of [1, 4, 16]) {
        const kv = tempKv();
        await using queue = await openQueue({ kv });
        const cluster = await startCluster(kv, ["--workers", String(workers)]);
        try {
          await new Promise((resolve) => setTimeout(resolve, 1500));
          out[`RSS MB idle, ${workers} workers`] = procStat(cluster.pid).rssMb;
          await enqueueNoops(queue, n);
          await whenChanged(queue, async () => (await queue.counts()).succeeded >= n);
          await new Promise((resolve) => setTimeout(resolve, 1500));
          out[`RSS MB after ${n} tasks, ${workers} workers`] = procStat(cluster.pid).rssMb;
        } finally {
          await cluster.stop();
        }
      }
      out["RSS MB per extra worker (4→16, idle)"] = (out["RSS MB idle, 16 workers"]! -
        out["RSS MB idle, 4 workers"]!) / 12;
      return out;
    },
  },
  W6: {
    title: "CPU-bound",
    async run() {
      const out: Figures = {};
      const n = short ? 16 : 64;
      for (const workers of [1, 2]) {
        const kv = tempKv();
        await using queue = await openQueue({ kv });
        await enqueueNoops(queue, n, "burn", [50]);
        const cluster = await startCluster(kv, ["--workers", String(workers), "--burst"]);
        await cluster.exited;
        const done = await allTasks(queue, "succeeded");
        const first = Math.min(...done.map((r) => r.startedAt ?? Infinity));
        const last = Math.max(...done.map((r) => r.stoppedAt ?? 0));
        out[`seconds on ${workers} worker(s)`] = (last - first) / 1000;
      }
      out["speed-up on 2 workers"] = out["seconds on 1 worker(s)"]! /
        out["seconds on 2 worker(s)"]!;
      return out;
    },
  },
  W7: {
    title: "delayed",
    async run() {
      const kv = tempKv();
      await using queue = await openQueue({ kv });
      const n = short ? 2000 : 20000;
      const spread = short ? 5000 : 30000;
      const cluster = await startCluster(kv, ["--workers", "2"]);
      try {
        const cpu0 = procStat(cluster.pid).cpuMs;
        const base = Date.now() + 1000;
        for (let i = 0; i < n; i += 5000) {
          await queue.enqueueMany(
            Array.from({ length: Math.min(5000, n - i) }, (_, j) => ({
              func: "noop",
              eta: base + Math.floor(((i + j) / n) * spread),
            })),
          );
        }
        await whenChanged(queue, async () => (await queue.counts()).succeeded >= n);
        const cpu = (procStat(cluster.pid).cpuMs - cpu0) / 1000;
        const late = sorted(
          (await allTasks(queue, "succeeded")).map((r) => (r.startedAt ?? 0) - r.runAt),
        );
        return {
          "lateness p50 ms": pct(late, 0.5),
          "lateness p99 ms": pct(late, 0.99),
          "cluster CPU seconds": cpu,
        };
      } finally {
        await cluster.stop();
      }
    },
  },
  W8: {
    title: "flow control",
    run: () => flowWorkload({ short, tempKv, startCluster, allTasks }),
  },
  W9: {
    title: "search and metrics history",
    run: () => searchWorkload({ short, tempKv, startCluster, allTasks }),
  },
};

// ── the run ────────────────────────────────────────────────────────────────────────────────

const machine = {
  cores: cpus().length,
  cpu: cpus()[0]?.model ?? "?",
  memoryGb: Math.round(totalmem() / 2 ** 30),
  load: loadavg().map((l) => Math.round(l * 100) / 100),
  driver: `${runtime.name} ${runtime.version}`,
  clusters: clusterRuntime,
  nativeQueue: !noNative,
  short,
  runs,
};
say(
  `kvq bench: ${machine.cores} cores (${machine.cpu}), load ${
    machine.load.join(" ")
  }, driver ${machine.driver}, clusters on ${clusterRuntime}${short ? ", short mode" : ""}${
    noNative ? ", no native queue" : ""
  }, ${runs} run(s) per workload\n`,
);
type Summary = Record<string, Record<string, { median: number; min: number; max: number }>>;
const results: Summary = {};
const peer: Summary = {};
let redis: Redis | null = null;
if (values.vs === "bullmq") {
  const missing = bullmqMissing();
  if (missing) say(`BullMQ skipped: ${missing}\n`);
  else redis = await startRedis();
}

function summarise(into: Summary, id: string, samples: Figures[]): void {
  into[id] = {};
  for (const name of Object.keys(samples[0]!)) {
    const xs = sorted(samples.map((s) => s[name]!));
    const r = { median: pct(xs, 0.5), min: xs[0]!, max: xs[xs.length - 1]! };
    into[id]![name] = r;
    const fmt = (x: number) => (Math.abs(x) >= 100 ? Math.round(x).toString() : x.toFixed(2));
    say(
      `  ${name.padEnd(48)} ${fmt(r.median).padStart(10)}${
        runs > 1 ? `  (${fmt(r.min)}–${fmt(r.max)})` : ""
      }`,
    );
  }
}

try {
  const bullmq = redis ? bullmqWorkloads(redis, short) : {};
  for (const [id, w] of Object.entries(W)) {
    if (only && !only.has(id)) continue;
    const samples: Figures[] = [];
    const theirs: Figures[] = [];
    // BullMQ right after each of kvq's runs, so both see the machine in the same state.
    for (let i = 0; i < runs; i++) {
      samples.push(await w.run());
      if (bullmq[id]) theirs.push(await bullmq[id]());
    }
    say(`${id} ${w.title}`);
    summarise(results, id, samples);
    if (theirs.length > 0) {
      say(`${id} ${w.title}, BullMQ (Node, redis-server)`);
      summarise(peer, id, theirs);
    }
  }
  if (Object.keys(peer).length > 0) {
    say(`\nkvq against BullMQ (above 1×: kvq is ahead)`);
    for (const line of vsLines(results, peer)) say(line);
  }
  const y = results.Y;
  const w1 = results.W1;
  if (y && w1) {
    const ratio = w1["processing tasks/s, 2 workers"]!.median /
      y["raw sequential commits/s"]!.median;
    say(`\nW1 processing (2 workers) / raw sequential commits: ${ratio.toFixed(2)}×`);
  }
} finally {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await redis?.stop();
}
const report = {
  date: new Date().toISOString(),
  machine,
  results,
  ...(Object.keys(peer).length > 0 ? { bullmq: peer } : {}),
};
mkdirSync(join(root, "bench/results"), { recursive: true });
const file = join(
  root,
  "bench/results",
  `${report.date.slice(0, 10)}-${clusterRuntime}${noNative ? "-no-native-queue" : ""}.json`,
);
writeFileSync(file, JSON.stringify(report, null, 2) + "\n");
if (values.json) console.log(JSON.stringify(report));
else say(`\nwrote ${file}`);
