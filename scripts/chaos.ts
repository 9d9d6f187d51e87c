/**
 * The chaos run: three `kvq cluster` processes on one KV file while two producers stream tasks
 * in, a random cluster is SIGKILLed (and restarted) every few seconds, one cluster is
 * SIGSTOPped past its lease timeout and then continued, and a `*\/1 * * * * *` cron schedule
 * fires every second. At the end it checks that
 *
 * - every task reached a final state, and none was lost: every enqueued id is in the task log
 *   and `succeeded` (or has no record left: the clusters' retention prunes all but the 250
 *   newest successes, and it prunes nothing else);
 * - every duplicate execution (an id logged more than once) is explained: the run before it was
 *   on a cluster that was then killed (logged before the kill) or stopped past its lease (logged
 *   before it was continued, plus 1 s), and the re-run is a later attempt;
 * - each schedule slot fired exactly once: no intended time has two tasks, none is missing
 *   between the first and the last;
 * - every producer exited 0, no cluster exited unless killed, and every cluster exited 0 on the
 *   final SIGTERM.
 *
 * It prints tasks, kills, stops, lost (must be 0), duplicates and how many were explained, the
 * recovery time after a kill, the elapsed time and `chaos: OK`, or `chaos: FAILED (reasons)`
 * and exits 1. Usage mistakes exit 2.
 *
 * **Recovery time after a kill**: from the kill until every task the killed cluster held has
 * started again. A task was held when its latest log line before the kill is from the killed
 * cluster and it is logged again later by another process (so a task that the killed cluster
 * had already finished and stored does not count). Kills whose cluster held no such task are
 * left out and counted apart. The same measure is printed for the stop (from the SIGSTOP).
 *
 * Every task logs `id attempt clusterPid epochMs` as it starts (`tests/fixtures/chaos_tasks.ts`,
 * one `appendFileSync` per line, which `O_APPEND` keeps whole across processes).
 *
 * Usage:
 *
 * ```sh
 * deno task chaos --short                  # 1,500 tasks, about 30 s (the test runs this)
 * deno task chaos                          # 20,000 tasks, chaos for up to 120 s: the long run
 * deno task chaos --tasks 5000 --runtime mixed   # Deno and Bun clusters on the same file
 * bun scripts/chaos.ts --short --runtime bun
 * ```
 *
 * Options: `--tasks N` (default 20,000; `--short` 1,500), `--seconds S` (how long the chaos may
 * last, default 120; `--short` 25; the drain after it gets `max(30, S/2)` more seconds),
 * `--runtime deno|bun|mixed` (the clusters' runtime; default the one running the script; mixed
 * runs Deno, Bun, Deno clusters and one producer on each), `--no-native-queue` (clusters and
 * producers wake by file watch and timers only), `--task-ms MS` (what each task waits; default
 * sized so the work lasts about 40% of S), `--seed N` (the kill plan), `--keep` (keep the temp
 * folder with the KV file and the logs; it is always kept on failure), `--no-kill` and
 * `--no-stop` (leave out the kills or the stop, to narrow a failure down).
 *
 * The long run (`deno task chaos`, also with `--runtime bun` and `--runtime mixed`) takes a few
 * minutes on a 2-core box; run it before a release and after touching claims, leases, recovery,
 * completion or schedule firing.
 *
 * @module
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { openQueue, type Queue } from "../src/queue/queue.ts";
import { Schedules } from "../src/schedule/api.ts";
import type { StateCounts } from "../src/store/counters.ts";
import {
  checkTicks,
  explainDuplicates,
  type Kill,
  parseLog,
  quantile,
  recoveryTimes,
  type Stop,
} from "./_chaos_check.ts";
import type { ProducerOptions } from "./_chaos_producer.ts";
import {
  CURRENT_RUNTIME,
  type Exit,
  type Proc,
  type Runtime,
  signal,
  sleep,
  start,
} from "./_chaos_process.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const PRODUCER = fileURLToPath(new URL("./_chaos_producer.ts", import.meta.url));
const TASKS = fileURLToPath(new URL("../tests/fixtures/chaos_tasks.ts", import.meta.url));

/** The clusters' timing, as the brief of the chaos run fixes it. */
const HEARTBEAT_MS = 500;
const LEASE_TIMEOUT_MS = 3000;
/** How long the stopped cluster stays stopped: past its lease timeout. */
const STOP_MS = LEASE_TIMEOUT_MS + 1500;
const CLUSTERS = 3;
const WORKERS = 2;
const PRODUCERS = 2;
/** Attempts per task: kills must not use them all up. */
const MAX_ATTEMPTS = 10;
/** Crashes a task may see before quarantine fails it: more than a run's kills. */
const MAX_CRASHES = 1000;
const SCHEDULE = "chaos-tick";

interface Options {
  tasks: number;
  seconds: number;
  runtime: Runtime | "mixed";
  nativeQueue: boolean;
  taskMs: number;
  seed: number;
  keep: boolean;
  short: boolean;
  kill: boolean;
  stop: boolean;
}

const USAGE =
  "Usage: chaos [--short] [--tasks N] [--seconds S] [--runtime deno|bun|mixed] [--no-native-queue] [--task-ms MS] [--seed N] [--keep] [--no-kill] [--no-stop]";

class UsageError extends Error {}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      short: { type: "boolean" },
      tasks: { type: "string" },
      seconds: { type: "string" },
      runtime: { type: "string" },
      "no-native-queue": { type: "boolean" },
      "task-ms": { type: "string" },
      seed: { type: "string" },
      keep: { type: "boolean" },
      "no-kill": { type: "boolean" },
      "no-stop": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const short = values.short === true;
  const int = (name: string, raw: string | undefined, fallback: number, min: number) => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < min) {
      throw new UsageError(`--${name} must be a whole number of at least ${min}: received ${raw}`);
    }
    return n;
  };
  const tasks = int("tasks", values.tasks, short ? 1500 : 20_000, PRODUCERS);
  const seconds = int("seconds", values.seconds, short ? 25 : 120, 5);
  const runtime = values.runtime ?? CURRENT_RUNTIME;
  if (runtime !== "deno" && runtime !== "bun" && runtime !== "mixed") {
    throw new UsageError(`--runtime must be deno, bun or mixed: received ${runtime}`);
  }
  // The work (tasks × ms over the workers) should last about 40% of the chaos budget.
  const sized = Math.round(CLUSTERS * WORKERS * seconds * 1000 * 0.4 / tasks) - 3;
  return {
    tasks,
    seconds,
    runtime,
    nativeQueue: values["no-native-queue"] !== true,
    taskMs: int("task-ms", values["task-ms"], Math.max(0, Math.min(200, sized)), 0),
    seed: int("seed", values.seed, Math.floor(Math.random() * 2 ** 31), 0),
    keep: values.keep === true,
    short,
    kill: values["no-kill"] !== true,
    stop: values["no-stop"] !== true,
  };
}

/** A small seeded generator (mulberry32), so a kill plan can be replayed with `--seed`. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** One of the three places a cluster runs in; a killed cluster is replaced in its slot. */
interface Slot {
  index: number;
  runtime: Runtime;
  proc: Proc;
  /** SIGSTOPped right now. */
  stopped: boolean;
  /** Being killed and replaced right now. */
  replacing: boolean;
}

/**
 * Whether every id the producers stored is in the task log. Succeeded tasks may be pruned by
 * the clusters' retention (the 250 newest successes are kept), so the counts alone can't tell
 * when all tasks ran.
 */
function allLogged(idsFiles: string[], log: string, expected: number): boolean {
  const ids = new Set<string>();
  for (const file of idsFiles) {
    try {
      for (const id of readFileSync(file, "utf8").split("\n")) if (id) ids.add(id);
    } catch {
      return false;
    }
  }
  if (ids.size < expected) return false;
  let text = "";
  try {
    text = readFileSync(log, "utf8");
  } catch {
    return false;
  }
  for (const line of text.split("\n")) ids.delete(line.slice(0, line.indexOf(" ")));
  return ids.size === 0;
}

function openCount(c: StateCounts): number {
  return c.scheduled + c.queued + c.running;
}

/**
 * Resolves with the counts once `done(counts)` holds, re-read on each change the queue's change
 * feed reports and at least every second; resolves with null after `ms` or when `abort` fires.
 */
function countsReach(
  queue: Queue,
  done: (counts: StateCounts) => boolean,
  ms: number,
  abort?: AbortSignal,
): Promise<StateCounts | null> {
  return new Promise((resolve) => {
    let reading = false;
    let again = false;
    let settled = false;
    const finish = (counts: StateCounts | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearInterval(tick);
      off();
      abort?.removeEventListener("abort", onAbort);
      resolve(counts);
    };
    const check = async () => {
      if (reading) {
        again = true;
        return;
      }
      reading = true;
      try {
        do {
          again = false;
          const counts = await queue.counts();
          if (done(counts)) return finish(counts);
        } while (again && !settled);
      } catch (error) {
        console.error(`chaos: reading counts failed: ${(error as Error).message}`);
      } finally {
        reading = false;
      }
    };
    const onAbort = () => finish(null);
    const off = queue.store.changes.subscribe(() => void check());
    const tick = setInterval(() => void check(), 1000);
    const timer = setTimeout(() => finish(null), ms);
    abort?.addEventListener("abort", onAbort, { once: true });
    void check();
  });
}

async function run(options: Options): Promise<boolean> {
  const t0 = Date.now();
  const elapsed = () => ((Date.now() - t0) / 1000).toFixed(1);
  const say = (text: string) => console.log(`[${elapsed().padStart(5)} s] ${text}`);
  const rand = random(options.seed);
  const dir = mkdtempSync(join(tmpdir(), "kvq-chaos-"));
  const kv = join(dir, "kv.sqlite3");
  const log = join(dir, "tasks.log");
  const failures: string[] = [];
  const runtimes: Runtime[] = options.runtime === "mixed"
    ? ["deno", "bun", "deno"]
    : Array(CLUSTERS).fill(options.runtime);
  const producerRuntimes: Runtime[] = options.runtime === "mixed"
    ? ["deno", "bun"]
    : Array(PRODUCERS).fill(options.runtime);
  console.log(
    `chaos: ${options.tasks} tasks of ${options.taskMs} ms, chaos for up to ${options.seconds} s, clusters ${
      runtimes.join(",")
    } x ${WORKERS} workers, native queue ${
      options.nativeQueue ? "on" : "off"
    }, seed ${options.seed}, folder ${dir}`,
  );

  const everyProc: Proc[] = [];
  const clusterPids = new Set<number>();
  const kills: (Kill & { slot: number })[] = [];
  const stops: Stop[] = [];
  const unexpectedExits: string[] = [];
  let ending = false;
  const slots: Slot[] = [];

  const clusterArgs = [
    "cluster",
    "--kv",
    kv,
    "--tasks",
    TASKS,
    "--no-sentinel",
    "--heartbeat",
    `${HEARTBEAT_MS}`,
    "--lease-timeout",
    `${LEASE_TIMEOUT_MS}`,
    "--workers",
    `${WORKERS}`,
    "--max-attempts",
    `${MAX_ATTEMPTS}`,
    // The kills here come from outside, at random: a task that happened to run during two of
    // them (once beside others, once alone) would end as poison, which is quarantine doing its
    // job (tests/cluster/poison_test.ts), not a loss. This run checks that nothing is lost.
    "--max-crashes",
    `${MAX_CRASHES}`,
    ...(options.nativeQueue ? [] : ["--no-native-queue"]),
  ];
  const launch = (slot: Slot | { index: number; runtime: Runtime }): Proc => {
    const proc = start(slot.runtime, MAIN, clusterArgs);
    everyProc.push(proc);
    clusterPids.add(proc.pid);
    void proc.exited.then((exit) => {
      const current = slots[slot.index];
      if (ending || !current || current.proc !== proc || current.replacing) return;
      // Exited by itself: that is a failure; replace it so the run goes on.
      unexpectedExits.push(
        `cluster pid ${proc.pid} (${proc.runtime}) exited by itself (${
          exit.code ?? exit.signal
        }): ${proc.output().slice(-2000)}`,
      );
      say(`cluster ${slot.index} pid ${proc.pid} exited by itself (${exit.code ?? exit.signal})`);
      // Replace it, but give up on a slot whose clusters keep dying (e.g. a corrupt KV file).
      if (unexpectedExits.length <= 5) {
        setTimeout(() => {
          if (!ending && current.proc === proc) current.proc = launch(current);
        }, 250);
      }
    });
    return proc;
  };

  let queue: Queue | null = null;
  try {
    queue = await openQueue({ kv, noNativeQueue: !options.nativeQueue });
    const q = queue;
    for (let i = 0; i < CLUSTERS; i++) {
      const spec = { index: i, runtime: runtimes[i]! };
      slots.push({ ...spec, proc: launch(spec), stopped: false, replacing: false });
    }
    await Promise.all(
      slots.map((s) => s.proc.line(/^kvq: cluster \S+ .*workers?, queues/, 60_000)),
    );
    say(`clusters ${slots.map((s) => `${s.proc.pid} (${s.runtime})`).join(", ")} are up`);

    const schedules = new Schedules(q.store);
    await schedules.add(SCHEDULE, "chaosTick", [log], {
      type: "cron",
      cron: "*/1 * * * * *",
      intendedDateArg: true,
      catchUp: true,
      priority: -1,
      maxAttempts: MAX_ATTEMPTS,
    });
    say(`schedule ${SCHEDULE} added: */1 * * * * *, intended date as the last argument`);

    const produceSeconds = options.short ? 3 : Math.min(10, options.seconds / 4);
    const producers = producerRuntimes.map((runtime, i) => {
      const count = Math.floor(options.tasks / PRODUCERS) +
        (i < options.tasks % PRODUCERS ? 1 : 0);
      const spec: ProducerOptions = {
        kv,
        idsFile: join(dir, `ids-${i}.txt`),
        log,
        count,
        seconds: produceSeconds,
        taskMs: options.taskMs,
        maxAttempts: MAX_ATTEMPTS,
        noNativeQueue: !options.nativeQueue,
      };
      const proc = start(runtime, PRODUCER, [JSON.stringify(spec)]);
      everyProc.push(proc);
      return { proc, spec };
    });
    const idsFiles = producers.map((p) => p.spec.idsFile);
    const chaosStart = Date.now();
    const producersDone = Promise.all(producers.map((p) => p.proc.exited));
    say(`producers ${producers.map((p) => p.proc.pid).join(", ")} stream ${options.tasks} tasks`);

    const chaosEnd = new AbortController();
    const ended = chaosEnd.signal;
    let stopDone = false;

    const killer = (async () => {
      const base = options.short ? 2000 : 3000;
      while (options.kill && !ended.aborted) {
        await sleep(base * (0.7 + 0.6 * rand()), ended);
        if (ended.aborted) break;
        const candidates = slots.filter((s) => !s.stopped && !s.replacing);
        if (candidates.length === 0) continue;
        const slot = candidates[Math.floor(rand() * candidates.length)]!;
        const victim = slot.proc;
        slot.replacing = true;
        signal(victim.pid, "SIGKILL");
        const at = Date.now();
        kills.push({ pid: victim.pid, at, slot: slot.index });
        await victim.exited;
        slot.proc = launch(slot);
        slot.replacing = false;
        say(
          `kill ${kills.length}: cluster ${slot.index} pid ${victim.pid} (${slot.runtime}) → restarted as ${slot.proc.pid}`,
        );
      }
    })();

    const stopper = (async () => {
      if (!options.stop) return void (stopDone = true);
      await sleep(options.short ? 2500 : 6000, ended);
      if (ended.aborted) return;
      const candidates = slots.filter((s) => !s.replacing);
      const slot = candidates[Math.floor(rand() * candidates.length)]!;
      const victim = slot.proc;
      slot.stopped = true;
      signal(victim.pid, "SIGSTOP");
      const stoppedAt = Date.now();
      say(`stop: cluster ${slot.index} pid ${victim.pid} SIGSTOP for ${STOP_MS} ms`);
      await sleep(STOP_MS); // not abortable: it must be continued
      signal(victim.pid, "SIGCONT");
      const resumedAt = Date.now();
      slot.stopped = false;
      stops.push({ pid: victim.pid, stoppedAt, resumedAt });
      stopDone = true;
      say(`stop: cluster ${slot.index} pid ${victim.pid} SIGCONT`);
    })();

    const progress = setInterval(() => {
      void q.counts().then((c) =>
        say(
          `succeeded ${c.succeeded}, running ${c.running}, queued ${c.queued}, scheduled ${c.scheduled}, failed ${c.failed}; kills ${kills.length}`,
        )
      ).catch(() => {});
    }, 5000);

    // The chaos lasts until every task is done (after a kill and the stop), or its budget ends.
    let producersExited = false;
    void producersDone.then(() => {
      producersExited = true;
    });
    const chaosBudget = options.seconds * 1000 - (Date.now() - chaosStart);
    const finished = await countsReach(
      q,
      (c) =>
        producersExited && stopDone && (kills.length > 0 || !options.kill) && openCount(c) === 0 &&
        allLogged(idsFiles, log, options.tasks),
      chaosBudget,
    );
    chaosEnd.abort();
    await Promise.all([killer, stopper]);
    say(
      finished
        ? `all tasks finished; chaos over`
        : `chaos budget of ${options.seconds} s used up; draining`,
    );

    // No more slots: remove the schedule, then wait for every task to finish.
    await schedules.delete(SCHEDULE);
    const drainMs = Math.max(30, options.seconds / 2) * 1000;
    await producersDone;
    const drained = await countsReach(
      q,
      (c) => openCount(c) === 0 && allLogged(idsFiles, log, options.tasks),
      drainMs,
    );
    clearInterval(progress);
    if (drained === null) {
      failures.push(
        `not finished ${drainMs / 1000} s after the chaos: ${JSON.stringify(await q.counts())}`,
      );
    }
    const doneAt = Date.now();

    // Stop the clusters: each must exit 0 on SIGTERM.
    ending = true;
    const exits = await Promise.all(slots.map(async (slot) => {
      // A cluster restarted just before the end may still be loading, before it handles
      // signals: let it come up first, so the exit code says how it stops, not how it starts.
      await slot.proc.line(/^kvq: cluster \S+ .*workers?, queues/, 30_000).catch(() => {});
      signal(slot.proc.pid, "SIGTERM");
      const exit = await Promise.race([
        slot.proc.exited,
        sleep(20_000).then((): Exit => ({ code: null, signal: "TIMEOUT" })),
      ]);
      return { slot, exit };
    }));
    for (const { slot, exit } of exits) {
      if (exit.code !== 0) {
        failures.push(
          `cluster ${slot.index} pid ${slot.proc.pid} exited ${
            exit.code ?? exit.signal
          } on SIGTERM: ${slot.proc.output().slice(-2000)}`,
        );
      }
    }

    // The checks.
    for (const { proc } of producers) {
      const exit = await proc.exited;
      if (exit.code !== 0) {
        failures.push(
          `producer pid ${proc.pid} exited ${exit.code ?? exit.signal}: ${
            proc.output().slice(-2000)
          }`,
        );
      }
    }
    const enqueued: string[] = [];
    for (const { spec } of producers) {
      let text = "";
      try {
        text = readFileSync(spec.idsFile, "utf8");
      } catch {
        // no task stored
      }
      enqueued.push(...text.split("\n").filter(Boolean));
    }
    if (enqueued.length !== options.tasks) {
      failures.push(`${enqueued.length} tasks enqueued, not ${options.tasks}`);
    }
    if (new Set(enqueued).size !== enqueued.length) failures.push(`an id was enqueued twice`);

    const states = new Map<string, string>();
    let cursor: string | null = null;
    do {
      const page = await q.tasks({ limit: 1000, ...(cursor ? { cursor } : {}) });
      for (const t of page.tasks) states.set(t.id, t.state);
      cursor = page.cursor;
    } while (cursor !== null);
    const open = [...states].filter(([, s]) =>
      s !== "succeeded" && s !== "failed" && s !== "cancelled"
    );
    if (open.length > 0) {
      failures.push(
        `${open.length} task(s) not final: ${
          open.slice(0, 5).map(([id, s]) => `${id} ${s}`).join(", ")
        }`,
      );
    }
    const failed = [...states].filter(([, s]) => s === "failed" || s === "cancelled");

    const { lines, bad } = parseLog(readFileSync(log, "utf8"));
    if (bad.length > 0) {
      failures.push(`${bad.length} log line(s) malformed: ${bad.slice(0, 3).join(" | ")}`);
    }
    const logged = new Set(lines.map((l) => l.id));
    const notLogged = enqueued.filter((id) => !logged.has(id));
    // A task with no record left was pruned by retention, which only removes successes.
    const pruned = enqueued.filter((id) => !states.has(id)).length;
    const notSucceeded = enqueued.filter((id) => states.has(id) && states.get(id) !== "succeeded");
    const lost = new Set([...notLogged, ...notSucceeded]);
    if (lost.size > 0) {
      failures.push(
        `${lost.size} task(s) lost: ${notLogged.length} never logged, ${notSucceeded.length} not succeeded (${
          [...lost].slice(0, 5).map((id) => `${id} ${states.get(id) ?? "missing"}`).join(", ")
        })`,
      );
    }
    const strangers = lines.filter((l) => !clusterPids.has(l.pid));
    if (strangers.length > 0) {
      failures.push(`${strangers.length} log line(s) from pids that are no cluster of this run`);
    }
    const tickLines = lines.filter((l) => l.intended !== null);
    const taskIds = new Set(enqueued);
    const tickIds = new Set(tickLines.map((l) => l.id));
    const unknown = lines.filter((l) => !taskIds.has(l.id) && !tickIds.has(l.id));
    if (unknown.length > 0) failures.push(`${unknown.length} log line(s) of unknown tasks`);
    const tickNotDone = [...tickIds].filter((id) =>
      states.has(id) && states.get(id) !== "succeeded"
    );
    if (tickNotDone.length > 0) {
      failures.push(`${tickNotDone.length} schedule task(s) not succeeded`);
    }

    const dups = explainDuplicates(lines, kills, stops);
    if (dups.explained < dups.duplicates) {
      failures.push(
        `${dups.duplicates - dups.explained} duplicate(s) unexplained: ${
          dups.unexplained.slice(0, 5).join("; ")
        }`,
      );
    }
    const ticks = checkTicks(tickLines);
    if (ticks.firedTwice.length > 0) {
      failures.push(`schedule slot(s) fired twice: ${ticks.firedTwice.slice(0, 5).join(", ")}`);
    }
    if (ticks.missing.length > 0) {
      failures.push(`schedule slot(s) missing: ${ticks.missing.slice(0, 5).join(", ")}`);
    }
    if (ticks.slots < 2) failures.push(`the schedule fired ${ticks.slots} time(s)`);
    if (options.kill && kills.length === 0) {
      failures.push("no kill happened: the tasks ended too soon");
    }
    if (options.stop && stops.length === 0) failures.push("no stop happened");
    failures.push(...unexpectedExits);

    const recoveries = recoveryTimes(lines, kills);
    const held = recoveries.filter((r): r is number => r !== null);
    const stopRecovery = recoveryTimes(lines, stops.map((s) => ({ pid: s.pid, at: s.stoppedAt })));
    const sec = (ms: number | null) => (ms === null ? "-" : `${(ms / 1000).toFixed(2)} s`);

    console.log("");
    console.log(
      `tasks: ${options.tasks} enqueued by ${PRODUCERS} producers; ${
        enqueued.filter((id) => states.get(id) === "succeeded").length
      } succeeded and kept, ${pruned} succeeded and pruned by retention, ${failed.length} failed or cancelled; ${lines.length} runs logged`,
    );
    console.log(
      `kills: ${kills.length} (${
        kills.map((k) => `${k.pid}@${((k.at - t0) / 1000).toFixed(1)}s`).join(", ")
      })`,
    );
    console.log(
      `stops: ${stops.length} (${
        stops.map((s) => `${s.pid} for ${s.resumedAt - s.stoppedAt} ms`).join(", ")
      })`,
    );
    console.log(`lost: ${lost.size}`);
    console.log(
      `duplicates: ${dups.duplicates} id(s) ran more than once (${dups.extraRuns} extra runs); ${dups.explained} explained (${dups.byKill} re-runs by a kill, ${dups.byStop} by the stop)`,
    );
    console.log(
      `recovery after a kill (kill → every task the killed cluster held started again): p50 ${
        sec(quantile(held, 0.5))
      }, max ${sec(quantile(held, 1))} over ${held.length} kill(s); ${
        recoveries.length - held.length
      } kill(s) held no task`,
    );
    console.log(
      `recovery after the stop (SIGSTOP → every task it held started elsewhere): ${
        stopRecovery.map(sec).join(", ") || "-"
      } (lease timeout ${LEASE_TIMEOUT_MS} ms)`,
    );
    console.log(
      `schedule: ${ticks.slots} slot(s) from ${ticks.first} to ${ticks.last}; ${ticks.firedTwice.length} fired twice, ${ticks.missing.length} missing`,
    );
    console.log(
      `elapsed: ${elapsed()} s (chaos and drain ${((doneAt - chaosStart) / 1000).toFixed(1)} s)`,
    );
    return failures.length === 0;
  } catch (error) {
    failures.push(`the run broke: ${(error as Error).stack ?? error}`);
    return false;
  } finally {
    ending = true;
    queue?.close();
    for (const proc of everyProc) {
      try {
        writeFileSync(join(dir, `output-${proc.pid}.txt`), proc.output());
      } catch {
        // the folder is gone
      }
      if (!proc.done) {
        signal(proc.pid, "SIGCONT");
        signal(proc.pid, "SIGKILL");
      }
    }
    if (failures.length > 0) {
      console.log(`chaos: FAILED (${failures.join("; ")})`);
      console.log(`chaos: the KV file and logs are kept in ${dir}`);
    } else {
      console.log("chaos: OK");
      if (options.keep) console.log(`chaos: the KV file and logs are kept in ${dir}`);
      else rmSync(dir, { recursive: true, force: true });
    }
  }
}

if (import.meta.main) {
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`chaos: ${(error as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  const ok = await run(options);
  process.exit(ok ? 0 : 1);
}
