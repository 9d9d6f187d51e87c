/**
 * The sentinel (after Django Q's): a small parent process that runs the cluster host as a child
 * and starts it again when it exits to be recycled. On Deno a worker stuck in CPU-bound code
 * can't be stopped by `terminate()`; its host leaves with {@linkcode RECYCLE_EXIT_CODE} after
 * handing its other tasks back, and the sentinel starts a fresh one.
 *
 * The child ends itself when its stdin closes, so a SIGKILLed sentinel leaves no orphan; its
 * tasks come back through lease recovery.
 *
 * @module
 */
import { spawn } from "node:child_process";
import process from "node:process";
import { runtime } from "../runtime/mod.ts";

/** The exit code a cluster host uses to ask for a restart. */
export const RECYCLE_EXIT_CODE = 75;

/** Set in the child's environment. */
export const SENTINEL_CHILD_ENV = "KVQ_SENTINEL_CHILD";

/** Whether this process is a cluster host started by a sentinel. */
export function isSentinelChild(): boolean {
  return process.env[SENTINEL_CHILD_ENV] === "1";
}

/** In a sentinel's child: exit at once when the sentinel goes away. */
export function exitWithParent(): void {
  process.stdin.on("end", () => process.exit(1));
  process.stdin.on("close", () => process.exit(1));
  process.stdin.on("error", () => process.exit(1));
  process.stdin.resume();
}

/**
 * Runs `args` (the same CLI command) as a child, restarting it on a recycle exit or a crash.
 * Resolves with the child's final exit code.
 */
export async function runSentinel(entry: string, args: string[]): Promise<number> {
  const { cmd, args: base } = runtime.selfCommand(entry);
  let stopping = false;
  let child: ReturnType<typeof spawn> | null = null;
  let crashes = 0;
  // `process.kill(pid)`, not `child.kill()`: after `child.kill(signal)`, Deno's node:child_process
  // reports the exit as killed by that signal even when the child handled it and exited 0.
  const signalChild = (signal: NodeJS.Signals) => {
    if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(child.pid, signal);
    } catch {
      // it has just exited
    }
  };
  const forward = (signal: NodeJS.Signals) => {
    if (stopping) {
      signalChild("SIGKILL");
      process.exit(130);
    }
    stopping = true;
    signalChild(signal);
  };
  process.on("SIGINT", () => forward("SIGINT"));
  process.on("SIGTERM", () => forward("SIGTERM"));
  while (true) {
    const startedAt = Date.now();
    child = spawn(cmd, [...base, ...args], {
      stdio: ["pipe", "inherit", "inherit"],
      env: { ...process.env, [SENTINEL_CHILD_ENV]: "1" },
    });
    const code = await new Promise<number>((resolve) => {
      child!.on("exit", (code, signal) => resolve(code ?? (signal === "SIGKILL" ? 137 : 1)));
      child!.on("error", (error) => {
        console.error(`kvq: cannot start the cluster host (${error.message})`);
        resolve(1);
      });
    });
    if (stopping) return code;
    if (code === RECYCLE_EXIT_CODE) {
      console.error("kvq: sentinel: recycling the cluster host");
      continue;
    }
    if (code === 0 || code === 2) return code;
    crashes = Date.now() - startedAt > 60_000 ? 1 : crashes + 1;
    if (crashes > 5) {
      console.error(
        `kvq: sentinel: the cluster host exited with ${code} ${crashes} times in a row; giving up`,
      );
      return code;
    }
    const wait = Math.min(30_000, 500 * 2 ** crashes);
    console.error(`kvq: sentinel: the cluster host exited with ${code}; restarting in ${wait} ms`);
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}
