import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import type { ClusterStat } from "../../src/cluster/cluster.ts";
import { fit, renderMonitor } from "../../src/cli/commands/monitor.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { killAll, type Kvq, ROOT, startKvq } from "../cluster/_process.ts";
import { CLI_TASKS, kvq, tempDir } from "./_helpers.ts";

const NOW = Date.parse("2026-05-01T10:00:00Z");

function stat(over: Partial<ClusterStat> = {}): ClusterStat {
  return {
    id: "01a2-cluster",
    host: "edge-1",
    pid: 4242,
    runtime: "deno",
    version: "2.9.6",
    state: "running",
    startedAt: NOW - 3_725_000,
    beatAt: NOW - 1_000,
    queues: ["default"],
    workers: [
      {
        name: "kvq-w1.g3",
        slot: 1,
        generation: 3,
        state: "busy",
        tasks: [{
          id: "t1",
          name: "tango-alpha-nine-river",
          func: "resize",
          startedAt: NOW - 4_200,
        }],
        tasksRun: 12,
        cpu: 97.5,
        heap: 12 * 1024 * 1024,
        tid: 100,
      },
      {
        name: "kvq-w2.g1",
        slot: 2,
        generation: 1,
        state: "idle",
        tasks: [],
        tasksRun: 0,
        cpu: 0,
        heap: 0,
        tid: 101,
      },
    ],
    reincarnations: 2,
    processed: 40,
    succeeded: 38,
    failed: 2,
    rss: 80 * 1024 * 1024,
    cpu: 50,
    lowestFreeMemory: 1024 ** 3,
    stuck: [],
    ...over,
  } as ClusterStat; // fields the monitor does not show are left out
}

const COUNTS = { scheduled: 1, queued: 2, running: 1, succeeded: 38, failed: 2, cancelled: 0 };

test("renderMonitor() shows clusters, workers with generation, task and elapsed; fits the width", () => {
  const snapshot = {
    kv: "/var/lib/kvq/kv.sqlite3",
    readAt: NOW,
    clusters: [{ stat: stat(), seenIn: ["default"], silent: false, skewMs: null }],
    counts: new Map([["default", COUNTS]]),
  };
  const wide = renderMonitor(snapshot, { width: 200, now: NOW }).join("\n");
  assert.match(wide, /queue default: scheduled 1 {2}queued 2 {2}running 1 {2}succeeded 38/);
  assert.match(wide, /edge-1 {2}running {2}cpu 50% {2}rss \S+ MB {2}up 1 h 2 min {2}01a2-cluster/);
  assert.match(wide, /^ {2}\d+ attempts? run \(\d+ failed\) {2}reincarnations 2/m);
  assert.doesNotMatch(wide, /q to quit/, "a frame that is not live says nothing of quitting");
  assert.match(renderMonitor(snapshot, { width: 200, now: NOW, live: true })[0]!, /\(q to quit\)/);
  // At 80 columns the cluster line keeps its CPU and RSS.
  const eighty = renderMonitor(snapshot, { width: 80, now: NOW }).join("\n");
  assert.match(eighty, /cpu 50% {2}rss \S+ MB/);
  assert.match(wide, /kvq-w1\.g3 +busy +97\.5% +12 MB +12 {2}resize tango-alpha-nine-river 4\.2 s/);
  assert.match(wide, /kvq-w2\.g1 +idle +0% +– +0 {2}-/);
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(wide, /\x1b/);

  const narrow = renderMonitor(snapshot, { width: 40, now: NOW });
  assert.ok(narrow.every((l) => l.length <= 40), narrow.join("\n"));
  assert.ok(narrow.some((l) => l.startsWith("  kvq-w1.g3") && l.endsWith("…")));

  const silent = renderMonitor(
    {
      ...snapshot,
      clusters: [{
        stat: stat({ beatAt: NOW - 25_000 }),
        seenIn: ["default"],
        silent: true,
        skewMs: null,
      }],
    },
    { width: 200, now: NOW, color: true },
  ).join("\n");
  assert.match(silent, /silent 25 s/);
  // deno-lint-ignore no-control-regex
  assert.match(silent, /\x1b\[33m/);
  assert.equal(fit("abcdef", 4), "abc…");
  assert.equal(fit("abc", 4), "abc");
});

const tmux = spawnSync("tmux", ["-V"]).status === 0;
const isDeno = "Deno" in globalThis;

/** The shell command that runs `kvq ARGS` on the runtime running the tests. */
function kvqShell(args: string[]): string {
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const base = isDeno
    ? [Deno.execPath(), "run", "-A", join(ROOT, "main.ts")]
    : [process.execPath, join(ROOT, "main.ts")];
  return [...base, ...args].map(q).join(" ");
}

/** Resolves with the pane text once `pattern` shows in it; rejects after `ms`. */
async function paneShows(socket: string, pattern: RegExp, ms: number): Promise<string> {
  const until = Date.now() + ms;
  let text = "";
  while (Date.now() < until) {
    text = spawnSync("tmux", ["-L", socket, "capture-pane", "-p", "-t", "mon"], {
      encoding: "utf8",
    }).stdout;
    if (pattern.test(text)) return text;
    // The pane has no event to await: look again after a screen refresh's time.
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`The pane never showed ${pattern} in ${ms} ms:\n${text}`);
}

test(
  "kvq monitor in a terminal shows a running cluster's workers and quits on q",
  { skip: tmux ? false : "tmux is not installed (apt-get install -y tmux)" },
  async () => {
    using dir = tempDir();
    const socket = `kvq-test-${process.pid}`;
    const children: Kvq[] = [];
    try {
      const cluster = startKvq([
        "cluster",
        ...[
          "--kv",
          dir.kv,
          "--tasks",
          CLI_TASKS,
          "--workers",
          "2",
          "--heartbeat",
          "500",
          "--grace",
          "0",
        ],
      ]);
      children.push(cluster);
      await cluster.line(/^kvq: cluster \S+ .*workers?, queues/);
      await using queue = await openQueue({ kv: dir.kv });
      const { name } = await queue.enqueue("sleep", 60_000);

      const shell = `${kvqShell(["monitor", "--kv", dir.kv])}; echo MONITOR-EXITED $?; sleep 60`;
      const started = spawnSync("tmux", [
        ...["-L", socket, "new-session", "-d", "-s", "mon", "-x", "100", "-y", "30"],
        shell,
      ]);
      assert.equal(started.status, 0, String(started.stderr));
      const screen = await paneShows(socket, new RegExp(`sleep ${name}`), 30_000);
      assert.match(screen, /^kvq monitor {2}/m);
      assert.match(screen, /kvq-w1\.g1 +busy|kvq-w2\.g1 +busy/);
      assert.match(screen, /kvq-w1\.g1/);
      assert.match(screen, /kvq-w2\.g1/);
      assert.match(screen, /queue default: .*running 1/);
      const lines = screen.split("\n");
      assert.ok(lines.every((l) => l.length <= 100));
      // The cluster's CPU and RSS fit in 100 columns; quitting is explained on a terminal.
      assert.match(screen, /running {2}cpu \d+(\.\d+)?% {2}rss /);
      assert.match(screen, /\(q to quit\)/);

      spawnSync("tmux", ["-L", socket, "send-keys", "-t", "mon", "q"]);
      await paneShows(socket, /MONITOR-EXITED 0/, 15_000);
    } finally {
      spawnSync("tmux", ["-L", socket, "kill-server"]);
      for (const c of children) await Promise.race([c.stop(), c.exited]);
      killAll(children);
    }
  },
);

test("kvq info and memory see a running cluster's workers and memory", async () => {
  using dir = tempDir();
  const cluster = startKvq([
    "cluster",
    ...["--kv", dir.kv, "--tasks", CLI_TASKS, "--workers", "2", "--heartbeat", "200"],
  ]);
  try {
    const started = await cluster.line(/^kvq: cluster \S+ .*workers?, queues/);
    const id = /cluster (\S+)/.exec(started)![1]!;
    const r = await kvq(["enqueue", "add", "--args", "[1, 2]", "--kv", dir.kv, "--wait", "20000"]);
    assert.equal(r.code, 0, r.err);
    const info = JSON.parse((await kvq(["info", "--kv", dir.kv, "--json"])).out);
    const q = info.queues.find((x: { name: string }) => x.name === "default");
    assert.equal(q.clusters, 1);
    assert.equal(q.workers, 2);
    assert.equal(q.reincarnations, 0);
    assert.equal(q.counts.succeeded, 1);
    assert.equal(info.clusters[0].id, id);
    assert.ok(info.clusters[0].rss > 0);

    const mem = JSON.parse((await kvq(["memory", "--kv", dir.kv, "--json"])).out);
    assert.equal(mem.clusters[0].id, id);
    assert.ok(mem.clusters[0].rss > 0 && mem.clusters[0].lowestFreeMemory > 0);
    assert.deepEqual(
      mem.clusters[0].workers.map((w: { name: string }) => w.name).sort(),
      ["kvq-w1.g1", "kvq-w2.g1"],
    );
    const text = await kvq(["memory", "--kv", dir.kv]);
    assert.match(text.out, /rss \d/);
    assert.match(text.out, /kvq-w1\.g1 +heap/);
  } finally {
    await Promise.race([cluster.stop(), cluster.exited]);
    killAll([cluster]);
  }
});

test("kvq cluster with a task module that does not parse exits 2 at once, not restarted", async () => {
  using dir = tempDir();
  const bad = join(dir.path, "bad.ts");
  writeFileSync(bad, "export function broken( {\n");
  const cluster = startKvq(["cluster", "--kv", dir.kv, "--tasks", bad, "--workers", "1"]);
  try {
    const exit = await cluster.exited;
    assert.equal(exit.code, 2, cluster.output());
    assert.match(cluster.output(), /Cannot load task module .*bad\.ts/);
    assert.doesNotMatch(cluster.output(), /restarting/);
  } finally {
    killAll([cluster]);
  }
});
