/**
 * Test helpers for the store and queue tests: a fresh KV file in its own temp folder per test,
 * child processes of either runtime, and a state tally to compare with the counters.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { openQueue, type OpenQueueOptions, type Queue } from "../../src/queue/queue.ts";
import { TASK_STATES } from "../../src/store/keys.ts";
import type { StateCounts } from "../../src/store/counters.ts";
import { TaskRecord } from "../../src/task/record.ts";
import { runScript } from "../../scripts/_runtimes.ts";

/** Whether the tests run on Deno. */
export const onDeno = "Deno" in globalThis;

/** The repository root. */
export const root: string = fileURLToPath(new URL("../../", import.meta.url));

/** A fresh temp folder, removed on dispose. */
export function tempDir(): { path: string } & AsyncDisposable {
  const path = mkdtempSync(join(tmpdir(), "kvq-test-"));
  return {
    path,
    [Symbol.asyncDispose]() {
      rmSync(path, { recursive: true, force: true });
      return Promise.resolve();
    },
  };
}

/** A queue on a fresh KV file, closed and removed on dispose. */
export interface TempQueue extends AsyncDisposable {
  queue: Queue;
  /** The KV file. */
  path: string;
  /** Its folder. */
  dir: string;
}

/** Opens a queue on a fresh KV file. */
export async function tempQueue(options: Omit<OpenQueueOptions, "kv"> = {}): Promise<TempQueue> {
  const dir = mkdtempSync(join(tmpdir(), "kvq-test-"));
  const path = join(dir, "kv.sqlite3");
  const queue = await openQueue({ ...options, kv: path });
  return {
    queue,
    path,
    dir,
    [Symbol.asyncDispose]() {
      queue.close();
      rmSync(dir, { recursive: true, force: true });
      return Promise.resolve();
    },
  };
}

/** How many tasks are in each state, by reading every record (to compare with the counters). */
export async function tally(queue: Queue): Promise<StateCounts> {
  const out = Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as StateCounts;
  for await (const e of queue.store.kv.list({ prefix: queue.store.keys.tasks })) {
    out[TaskRecord.decode(e.key, e.value).state]++;
  }
  return out;
}

/** The command that runs a script on `which` runtime ("self" = the one running the tests). */
export function runtimeCommand(
  which: "self" | "other",
  script: string,
): { cmd: string; args: string[] } {
  const deno = which === "self" ? onDeno : !onDeno;
  return runScript(deno ? "deno" : "bun", script);
}

/** The absolute path of a fixture. */
export function fixture(name: string): string {
  return join(root, "tests", "fixtures", name);
}

/** A child process with its output collected. */
export interface Child {
  child: ChildProcess;
  /** Resolves with the exit code and all output once the process has exited. */
  exited: Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** Resolves with the first stdout line that satisfies `match`. */
  line(match: (line: string) => boolean): Promise<string>;
}

/** Spawns a fixture script on a runtime, with the repository root as working directory. */
export function spawnFixture(
  which: "self" | "other",
  name: string,
  args: string[],
): Child {
  const { cmd, args: base } = runtimeCommand(which, fixture(name));
  const child = spawn(cmd, [...base, ...args], {
    cwd: root,
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  let stdout = "";
  let stderr = "";
  const lineWaiters: { match: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  let pending = "";
  child.stdout!.setEncoding("utf8");
  child.stderr!.setEncoding("utf8");
  child.stdout!.on("data", (data: string) => {
    stdout += data;
    pending += data;
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const l = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      for (const w of [...lineWaiters]) {
        if (w.match(l)) {
          lineWaiters.splice(lineWaiters.indexOf(w), 1);
          w.resolve(l);
        }
      }
    }
  });
  child.stderr!.on("data", (data: string) => stderr += data);
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>(
    (resolve, reject) => {
      child.on("error", reject);
      child.on("close", (code) => resolve({ code, stdout, stderr }));
    },
  );
  return {
    child,
    exited,
    line: (match) =>
      new Promise((resolve, reject) => {
        lineWaiters.push({ match, resolve });
        exited.then(({ code, stderr }) =>
          reject(new Error(`The child exited (${code}) before printing the line: ${stderr}`))
        );
      }),
  };
}

/** Waits for a child to exit with code 0 and returns its stdout. */
export async function succeeded(child: Child): Promise<string> {
  const { code, stdout, stderr } = await child.exited;
  if (code !== 0) throw new Error(`Child exited with ${code}:\n${stderr}\n${stdout}`);
  return stdout;
}
