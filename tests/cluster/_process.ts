/**
 * Helpers for the cluster tests that run `kvq` in child processes: spawn the CLI on the runtime
 * running the tests, await its output and exit, and measure the CPU of a process tree from
 * `/proc`.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, watch } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import type { Queue } from "../../src/queue/queue.ts";
import type { StateCounts } from "../../src/store/counters.ts";

/** The repository root: the children run there, so `deno.json` applies. */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));

/** The task module of the cluster tests. */
export const CLUSTER_TASKS = fileURLToPath(
  new URL("../fixtures/cluster_tasks.ts", import.meta.url),
);

const isDeno = "Deno" in globalThis;

/** How a child ended. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running `kvq` child process. */
export interface Kvq {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves when the process has exited. */
  readonly exited: Promise<Exit>;
  /** Everything written to stderr and stdout so far. */
  output(): string;
  /** Resolves with the first output line matching `pattern`; rejects if the process exits first. */
  line(pattern: RegExp): Promise<string>;
  /** Sends `signal` (SIGTERM by default) and awaits the exit. */
  stop(signal?: NodeJS.Signals): Promise<Exit>;
}

/** Options for {@linkcode startKvq}. */
export interface StartKvqOptions {
  /** Extra environment variables. */
  env?: Record<string, string>;
  /**
   * Start it as the leader of a process group of its own, so a test can signal the whole group
   * as a terminal's Ctrl-C or systemd's `KillMode=control-group` does.
   * @default {false}
   */
  group?: boolean;
}

/** Starts `kvq ...args` (`deno run -A main.ts` on Deno, `bun main.ts` on Bun) at the repo root. */
export function startKvq(args: string[], options: StartKvqOptions = {}): Kvq {
  const [cmd, base] = isDeno ? [Deno.execPath(), ["run", "-A", MAIN]] : [process.execPath, [MAIN]];
  const child = spawn(cmd, [...base, ...args], {
    cwd: ROOT,
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1", ...options.env },
    detached: options.group === true,
  });
  let text = "";
  const waiters = new Set<{ pattern: RegExp; resolve(line: string): void }>();
  const onData = (chunk: string) => {
    text += chunk;
    for (const w of [...waiters]) {
      const line = text.split("\n").find((l) => w.pattern.test(l));
      if (line !== undefined) {
        waiters.delete(w);
        w.resolve(line);
      }
    }
  };
  child.stdout!.setEncoding("utf8").on("data", onData);
  child.stderr!.setEncoding("utf8").on("data", onData);
  const exited = new Promise<Exit>((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code, signal) => resolve({ code, signal }));
  });
  const kvq: Kvq = {
    child,
    pid: child.pid!,
    exited,
    output: () => text,
    line(pattern) {
      const found = text.split("\n").find((l) => pattern.test(l));
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const w = { pattern, resolve };
        waiters.add(w);
        void exited.then((exit) => {
          if (!waiters.has(w)) return;
          waiters.delete(w);
          reject(
            new Error(
              `kvq exited (${exit.code ?? exit.signal}) before printing ${pattern}:\n${text}`,
            ),
          );
        });
      });
    },
    async stop(signal = "SIGTERM") {
      // process.kill(), not child.kill(): after child.kill(signal), Deno's node:child_process
      // reports the exit as that signal even when the child handled it and exited 0.
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, signal);
      return await exited;
    },
  };
  return kvq;
}

/** Starts `kvq cluster` on `kv` and resolves once it reports it is running. */
export async function startCluster(
  kv: string,
  args: string[],
  options: StartKvqOptions = {},
): Promise<Kvq> {
  const kvq = startKvq(["cluster", "--kv", kv, "--tasks", CLUSTER_TASKS, ...args], options);
  await kvq.line(/^kvq: cluster \S+ .*workers?, queues/);
  return kvq;
}

/** Kills whatever is still running of `children` and their descendants (test cleanup). */
export function killAll(children: Iterable<Kvq>): void {
  for (const c of children) {
    for (const pid of [...descendants(c.pid), c.pid]) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
}

/** A fresh temporary folder with its removal. */
export function tempDir(): { path: string; kv: string; [Symbol.dispose](): void } {
  const path = mkdtempSync(join(tmpdir(), "kvq-cluster-test-"));
  return {
    path,
    kv: join(path, "kv.sqlite3"),
    [Symbol.dispose]() {
      rmSync(path, { recursive: true, force: true });
    },
  };
}

/** The child pids of `pid`, from `/proc/<pid>/task/<tid>/children`. */
export function children(pid: number): number[] {
  const out: number[] = [];
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** Every descendant pid of `pid`. */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  for (const c of children(pid)) out.push(c, ...descendants(c));
  return out;
}

/** Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ; 100 on Linux). */
const USER_HZ = 100;

/** CPU milliseconds (user + system, all threads) used by `pid`, or 0 if it is gone. */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the `(comm)`, which may hold spaces: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 1000 / USER_HZ;
  } catch {
    return 0;
  }
}

/**
 * Percent of one core the process tree under `pid` used over `ms` milliseconds. The tree is read
 * at the start and at the end; a process that is in one only counts from where it is seen.
 */
export async function treeCpuPercent(pid: number, ms: number): Promise<number> {
  const snapshot = () => {
    const all = new Map<number, number>();
    for (const p of [pid, ...descendants(pid)]) all.set(p, processCpuMs(p));
    return all;
  };
  const before = snapshot();
  const t0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = snapshot();
  const elapsed = performance.now() - t0;
  let used = 0;
  for (const [p, cpu] of after) used += cpu - (before.get(p) ?? 0);
  return used / elapsed * 100;
}

/** Reads the `id attempt` lines of a task log: runs per id. */
export function readRuns(path: string): Map<string, number[]> {
  const runs = new Map<string, number[]>();
  let text = "";
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return runs;
  }
  for (const line of text.split("\n")) {
    if (!line) continue;
    const [id, attempt] = line.split(" ");
    const list = runs.get(id!) ?? [];
    list.push(Number(attempt));
    runs.set(id!, list);
  }
  return runs;
}

/** How many lines `path` has. */
export function lineCount(path: string): number {
  try {
    const text = readFileSync(path, "utf8");
    let n = 0;
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) n++;
    return n;
  } catch {
    return 0;
  }
}

/**
 * Resolves once `path` has at least `n` lines, woken by a watch of its folder (no polling).
 * Rejects after `ms` milliseconds.
 */
export function linesReached(path: string, n: number, ms: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const name = basename(path);
    const done = (error: Error | null, count = 0) => {
      clearTimeout(timer);
      watcher.close();
      if (error) reject(error);
      else resolve(count);
    };
    const check = () => {
      const count = lineCount(path);
      if (count >= n) done(null, count);
    };
    const watcher = watch(dirname(path), (_event, file) => {
      if (file === null || String(file) === name) check();
    });
    const timer = setTimeout(
      () => done(new Error(`${path} has ${lineCount(path)} lines after ${ms} ms; wanted ${n}`)),
      ms,
    );
    check();
  });
}

/**
 * Resolves with the queue's counts once `done(counts)` holds, re-read on every change the
 * queue's change feed reports (the KV file's watch: commits of any process), and each second as
 * well, so a timeout reports the counts as they are then, not as the last change left them (a
 * Bun run of the whole suite once timed out at counts no task could have, and said no more).
 * Rejects after `ms`.
 */
export function countsReach(
  queue: Queue,
  done: (counts: StateCounts) => boolean,
  ms: number,
): Promise<StateCounts> {
  return new Promise((resolve, reject) => {
    let last: StateCounts | null = null;
    let reading = false;
    let again = false;
    const finish = (error: Error | null) => {
      clearTimeout(timer);
      off();
      if (error) reject(error);
      else resolve(last!);
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
          last = await queue.counts();
          if (done(last)) return finish(null);
        } while (again);
      } catch (error) {
        finish(error as Error);
      } finally {
        reading = false;
      }
    };
    const unsubscribe = queue.store.changes.subscribe(() => void check());
    const poll = setInterval(() => void check(), 1000);
    const off = () => {
      unsubscribe();
      clearInterval(poll);
    };
    const timer = setTimeout(
      () => finish(new Error(`Counts not reached after ${ms} ms: ${JSON.stringify(last)}`)),
      ms,
    );
    void check();
  });
}
