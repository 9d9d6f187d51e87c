/**
 * Dashboard figures for this machine. Not a test: nothing here passes or fails.
 *
 *   deno run -A scripts/bench_dashboard.ts [--tasks 100000] [--seconds 20] [--clients 10]
 *
 * 1. Time to first paint of the overview with `--tasks` tasks in the store (bulk enqueued with
 *    `queue.enqueueMany` in chunks of 5,000; 2,000 of them run so the latency figures have
 *    data): the server's response time for `/`, and Chromium's first-contentful-paint when
 *    /usr/bin/chromium exists.
 * 2. CPU of a dashboard process (`kvq dashboard`, its own process so its CPU is its own) while
 *    `--clients` Server-Sent Events clients watch a busy cluster (4 workers, about 200 tasks/s
 *    enqueued), against the same with no client. CPU is read from /proc/PID/stat.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { Cluster } from "../src/cluster/cluster.ts";
import { runInline } from "../src/cluster/inline.ts";
import { openQueue } from "../src/queue/queue.ts";
import { runtime } from "../src/runtime/mod.ts";
import { Dashboard } from "../src/web/dashboard.ts";
import { CHROMIUM, CHROMIUM_ARGS } from "./_chromium.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    tasks: { type: "string", default: "100000" },
    seconds: { type: "string", default: "20" },
    clients: { type: "string", default: "10" },
  },
});
const TOTAL = Number(values.tasks);
const SECONDS = Number(values.seconds);
const CLIENTS = Number(values.clients);
const tasksFile = new URL("../examples/tasks.ts", import.meta.url).pathname;
const mainFile = new URL("../main.ts", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "kvq-bench-web-"));
const kv = join(dir, "kv.sqlite3");

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function firstPaint(): Promise<void> {
  const queue = await openQueue({ kv });
  let t = performance.now();
  for (let i = 0; i < TOTAL; i += 5000) {
    const n = Math.min(5000, TOTAL - i);
    await queue.enqueueMany(
      Array.from({ length: n }, (_, j) => ({ func: "add", args: [i + j, 1] })),
    );
  }
  console.log(`stored ${TOTAL} tasks in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  // Finish 2,000 so the overview's latency figures read real pages.
  const ac = new AbortController();
  let ran = 0;
  await runInline(queue.store, {
    tasks: new Map([["add", (a: number, b: number) => {
      if (++ran >= 2000) ac.abort();
      return a + b;
    }]]),
    signal: ac.signal,
  });
  console.log(`counts: ${JSON.stringify(await queue.counts())}`);
  queue.close();

  await using dashboard = new Dashboard({ kv });
  t = performance.now();
  await dashboard.start();
  const startMs = performance.now() - t;
  await dashboard.listen({ hostname: "127.0.0.1", port: 0 });
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < 7; i++) {
    t = performance.now();
    const res = await fetch(`${dashboard.url}/`);
    bytes = (await res.text()).length;
    times.push(performance.now() - t);
  }
  console.log(
    `overview with ${TOTAL} tasks: dashboard start ${startMs.toFixed(0)} ms; GET / ${
      median(times).toFixed(1)
    } ms median of ${times.length} (first ${times[0]!.toFixed(1)} ms), ${bytes} bytes`,
  );
  const tasksTimes: number[] = [];
  for (let i = 0; i < 5; i++) {
    t = performance.now();
    await (await fetch(`${dashboard.url}/tasks?state=queued`)).text();
    tasksTimes.push(performance.now() - t);
  }
  console.log(
    `GET /tasks?state=queued (50 of ${TOTAL}): ${median(tasksTimes).toFixed(1)} ms median`,
  );
  if (!existsSync(CHROMIUM)) {
    console.log(`first paint: skipped (${CHROMIUM} absent)`);
    return;
  }
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launchPersistentContext(join(dir, "profile"), {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS],
  });
  try {
    const paints: number[] = [];
    for (let i = 0; i < 5; i++) {
      const page = await browser.newPage();
      await page.goto(`${dashboard.url}/`, { waitUntil: "load" });
      const fcp = await page.evaluate(() =>
        new Promise<number>((resolve) => {
          const get = () =>
            performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? null;
          const now = get();
          if (now !== null) return resolve(now);
          new PerformanceObserver(() => {
            const v = get();
            if (v !== null) resolve(v);
          }).observe({ type: "paint", buffered: true });
        })
      );
      paints.push(fcp);
      await page.close();
    }
    console.log(
      `overview first-contentful-paint in Chromium: ${
        median(paints).toFixed(0)
      } ms median of ${paints.length} (${paints.map((p) => p.toFixed(0)).join(", ")})`,
    );
  } finally {
    await browser.close();
  }
}

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks (1/100 s)
}

async function cpuUnderWatch(): Promise<void> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const { cmd, args } = runtime.selfCommand(mainFile);
  const child = spawn(cmd, [...args, "dashboard", "--kv", kv, "--listen", `127.0.0.1:${port}`], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on("data", (d) => String(d).includes("dashboard on") && resolve());
    child.on("exit", (code) => reject(new Error(`dashboard exited ${code}`)));
  });
  const base = `http://127.0.0.1:${port}`;
  const queue = await openQueue({ kv });
  // Clear the backlog so the cluster is busy with fresh work, not 100k old tasks.
  await using cluster = new Cluster({ kv, tasks: [tasksFile], workers: 4, heartbeat: 2000 });
  await cluster.start();
  let feeding = true;
  const feeder = (async () => {
    while (feeding) {
      await queue.enqueueMany(
        Array.from({ length: 20 }, (_, i) => ({ func: "add", args: [i, 1] })),
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  const measure = async (label: string, clients: number) => {
    const stops: AbortController[] = [];
    let events = 0;
    const pages = ["/", "/tasks?state=running", "/clusters", "/queues", "/tasks?state=succeeded"];
    for (let i = 0; i < clients; i++) {
      const ac = new AbortController();
      stops.push(ac);
      const path = pages[i % pages.length]!;
      void fetch(`${base}/events?path=${encodeURIComponent(path)}`, { signal: ac.signal })
        .then(async (res) => {
          const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            events += value.split("\n\n").filter((b) => b.includes("data: ")).length;
          }
        }).catch(() => {});
    }
    await new Promise((resolve) => setTimeout(resolve, 2000)); // warm up
    const e0 = events;
    const c0 = cpuTicks(child.pid!);
    const t0 = performance.now();
    await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
    const cpu = (cpuTicks(child.pid!) - c0) / ((performance.now() - t0) / 1000); // % of a core
    const done0 = (await queue.counts()).succeeded;
    console.log(
      `${label}: dashboard CPU ${cpu.toFixed(1)}% of one core over ${SECONDS} s; ${
        ((events - e0) / SECONDS).toFixed(1)
      } events/s delivered (succeeded so far ${done0})`,
    );
    for (const ac of stops) ac.abort();
  };
  try {
    await measure("busy cluster, 0 viewers", 0);
    await measure(`busy cluster, ${CLIENTS} SSE viewers`, CLIENTS);
  } finally {
    feeding = false;
    await feeder;
    child.kill("SIGTERM");
    await new Promise((resolve) => child.on("exit", resolve));
    queue.close();
  }
}

try {
  console.log(`kvq dashboard bench on ${runtime.name} ${runtime.version}`);
  await firstPaint();
  await cpuUnderWatch();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
