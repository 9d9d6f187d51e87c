/**
 * Child processes of the chaos run (`scripts/chaos.ts`): `kvq` clusters and producers on Deno
 * or Bun, with their output kept and their exit awaited.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { runScript } from "./_runtimes.ts";

/** A runtime a child runs on. */
export type Runtime = "deno" | "bun";

/** The runtime running this script. */
export const CURRENT_RUNTIME: Runtime = "Bun" in globalThis ? "bun" : "deno";

/** The repository root: children run there, so `deno.json` and `node_modules` apply. */
export const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** How a child ended. */
export interface Exit {
  code: number | null;
  signal: string | null;
}

/** The most output kept per child, in characters (the tail is kept). */
const MAX_OUTPUT = 256 * 1024;

/** A running child. */
export interface Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly runtime: Runtime;
  /** Resolves when it has exited. */
  readonly exited: Promise<Exit>;
  /** Whether it has exited. */
  readonly done: boolean;
  /** Its stdout and stderr so far (the last 256 KiB). */
  output(): string;
  /**
   * Resolves with the first output line matching `pattern`; rejects if the process exits first
   * or after `ms`.
   */
  line(pattern: RegExp, ms: number): Promise<string>;
}

/** The command that runs `script` on `runtime`. */
export function command(runtime: Runtime, script: string): [string, string[]] {
  const { cmd, args } = runScript(runtime, script);
  return [cmd, args];
}

/** Starts `script args…` on `runtime` at the repository root. */
export function start(runtime: Runtime, script: string, args: string[]): Proc {
  const [cmd, base] = command(runtime, script);
  const child = spawn(cmd, [...base, ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  let text = "";
  let done = false;
  const waiters = new Set<{ pattern: RegExp; resolve(line: string): void }>();
  const onData = (chunk: string) => {
    text += chunk;
    if (text.length > MAX_OUTPUT) text = text.slice(-MAX_OUTPUT);
    for (const w of [...waiters]) {
      const found = text.split("\n").find((l) => w.pattern.test(l));
      if (found !== undefined) {
        waiters.delete(w);
        w.resolve(found);
      }
    }
  };
  child.stdout!.setEncoding("utf8").on("data", onData);
  child.stderr!.setEncoding("utf8").on("data", onData);
  const exited = new Promise<Exit>((resolve) => {
    child.on("error", (error) => {
      text += `\nspawn failed: ${error.message}`;
      done = true;
      resolve({ code: null, signal: "SPAWN_FAILED" });
    });
    child.on("exit", (code, signal) => {
      done = true;
      resolve({ code, signal });
    });
  });
  return {
    child,
    pid: child.pid ?? -1,
    runtime,
    exited,
    get done() {
      return done;
    },
    output: () => text,
    line(pattern, ms) {
      const found = text.split("\n").find((l) => pattern.test(l));
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const w = {
          pattern,
          resolve(line: string) {
            clearTimeout(timer);
            resolve(line);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`pid ${child.pid} printed no ${pattern} in ${ms} ms:\n${text}`));
        }, ms);
        waiters.add(w);
        void exited.then((exit) => {
          if (!waiters.has(w)) return;
          waiters.delete(w);
          clearTimeout(timer);
          reject(
            new Error(
              `pid ${child.pid} exited (${
                exit.code ?? exit.signal
              }) before printing ${pattern}:\n${text}`,
            ),
          );
        });
      });
    },
  };
}

/** Sends `signal` to `pid`; false when it is already gone. */
export function signal(pid: number, name: NodeJS.Signals): boolean {
  try {
    process.kill(pid, name);
    return true;
  } catch {
    return false;
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, abort?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (abort?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      abort?.removeEventListener("abort", done);
      resolve();
    }
    abort?.addEventListener("abort", done, { once: true });
  });
}
