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
import { delay } from "../runtime/delay.ts";
import { listenStopSignals } from "./stop_signals.ts";

/** The exit code a cluster host uses to ask for a restart. */
export const RECYCLE_EXIT_CODE = 75;

/** Set in the child's environment. */
export const SENTINEL_CHILD_ENV = "KVQ_SENTINEL_CHILD";

/** Set in the child's environment: how often the sentinel started a host again before it. */
export const SENTINEL_RESTARTS_ENV = "KVQ_SENTINEL_RESTARTS";

/** In a sentinel's child: the hosts the sentinel ran before this one (0 for the first). */
export function sentinelRestarts(): number {
  const n = Number(process.env[SENTINEL_RESTARTS_ENV] ?? 0);
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}

/** Whether this process is a cluster host started by a sentinel. */
export function isSentinelChild(): boolean {
  return process.env[SENTINEL_CHILD_ENV] === "1";
}

/** What a sentinel writes to its child's stdin to ask for a graceful stop. */
const STOP_LINE = "stop\n";

/**
 * In a sentinel's child: exit at once when the sentinel goes away, and call `onStop` when the
 * sentinel asks for a graceful stop. The request comes over the stdin pipe rather than as a
 * signal, so a child that also got the signal itself (a terminal's Ctrl-C reaches the whole
 * process group) sees one request, not two.
 */
export function followParent(onStop: () => void): void {
  let text = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk: string) => {
    text = (text + chunk).slice(-64);
    if (text.includes(STOP_LINE)) {
      text = "";
      onStop();
    }
  });
  process.stdin.on("end", () => process.exit(1));
  process.stdin.on("close", () => process.exit(1));
  process.stdin.on("error", () => process.exit(1));
  process.stdin.resume();
}

/**
 * Runs `args` (the same CLI command) as a child, restarting it on a recycle exit or a crash.
 * Resolves with the child's final exit code.
 *
 * The first SIGINT or SIGTERM asks the child to stop gracefully; one sent again later kills it
 * and exits 130 at once (see {@linkcode listenStopSignals} for what counts as "again").
 */
export async function runSentinel(entry: string, args: string[]): Promise<number> {
  const { cmd, args: base } = runtime.selfCommand(entry);
  const stopping = new AbortController();
  let child: ReturnType<typeof spawn> | null = null;
  let crashes = 0;
  let restarts = 0;
  const alive = () =>
    child?.pid !== undefined && child.exitCode === null && child.signalCode === null;
  using _signals = listenStopSignals({
    onStop() {
      stopping.abort();
      if (alive()) child!.stdin?.write(STOP_LINE);
    },
    onForce() {
      // `process.kill(pid)`, not `child.kill()`: after `child.kill(signal)`, Deno's
      // node:child_process reports the exit as killed by that signal.
      if (alive()) {
        try {
          process.kill(child!.pid!, "SIGKILL");
        } catch {
          // it has just exited
        }
      }
      process.exit(130);
    },
  });
  while (!stopping.signal.aborted) {
    const startedAt = Date.now();
    child = spawn(cmd, [...base, ...args], {
      stdio: ["pipe", "inherit", "inherit"],
      env: {
        ...process.env,
        [SENTINEL_CHILD_ENV]: "1",
        [SENTINEL_RESTARTS_ENV]: String(restarts),
      },
    });
    // A child that exits while a stop request is being written closes the pipe under it.
    child.stdin?.on("error", () => {});
    const code = await new Promise<number>((resolve) => {
      child!.on("exit", (code, signal) => resolve(code ?? (signal === "SIGKILL" ? 137 : 1)));
      child!.on("error", (error) => {
        console.error(`kvq: cannot start the cluster host (${error.message})`);
        resolve(1);
      });
    });
    if (stopping.signal.aborted) return code;
    if (code === RECYCLE_EXIT_CODE) {
      console.error("kvq: sentinel: recycling the cluster host");
      restarts++;
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
    restarts++;
    const wait = Math.min(30_000, 500 * 2 ** crashes);
    console.error(`kvq: sentinel: the cluster host exited with ${code}; restarting in ${wait} ms`);
    try {
      await delay(wait, { signal: stopping.signal });
    } catch {
      return code;
    }
  }
  return 0;
}
