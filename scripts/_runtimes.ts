/**
 * How to start Deno or Bun from tests and scripts, on a machine where the other runtime may
 * not be on PATH (a fresh machine that got them only through npx): the running runtime is
 * `process.execPath`; the other is taken from PATH when it is there, else through npx at the
 * versions the project pins.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import process from "node:process";

/** The runtimes kvq runs on. */
export type RuntimeName = "deno" | "bun";

/** The runtime running this code. */
export const CURRENT: RuntimeName = "Deno" in globalThis ? "deno" : "bun";

/** The versions the project pins (deno.json tasks and .ci/run use the same). */
export const PINNED: Record<RuntimeName, string> = { deno: "deno@2.9.6", bun: "bun@1.4.5" };

const cache = new Map<RuntimeName, { cmd: string; prefix: string[] }>();

/**
 * The command (and leading arguments) that starts `runtime`: its own binary, so signals reach
 * it directly. Without it on PATH, npx installs the pinned version once and names its binary.
 */
export function runtimeExec(runtime: RuntimeName): { cmd: string; prefix: string[] } {
  if (runtime === CURRENT) return { cmd: process.execPath, prefix: [] };
  let found = cache.get(runtime);
  if (!found) {
    const probe = spawnSync(runtime, ["--version"], { stdio: "ignore" });
    if (probe.status === 0) found = { cmd: runtime, prefix: [] };
    else {
      const ask = runtime === "deno"
        ? ["eval", "console.log(Deno.execPath())"]
        : ["-e", "console.log(process.execPath)"];
      const npx = spawnSync("npx", ["-y", PINNED[runtime], ...ask], { encoding: "utf8" });
      const path = npx.stdout?.trim().split("\n").pop();
      if (npx.status !== 0 || !path) {
        throw new Error(
          `Cannot find ${runtime}: not on PATH, and 'npx -y ${PINNED[runtime]}' failed`,
        );
      }
      found = { cmd: path, prefix: [] };
    }
    cache.set(runtime, found);
  }
  return found;
}

/** The command line that runs `script` with `args` on `runtime`. */
export function runScript(
  runtime: RuntimeName,
  script: string,
  args: string[] = [],
): { cmd: string; args: string[] } {
  const { cmd, prefix } = runtimeExec(runtime);
  return runtime === "deno"
    ? { cmd, args: [...prefix, "run", "-A", script, ...args] }
    : { cmd, args: [...prefix, script, ...args] };
}
