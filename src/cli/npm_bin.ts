#!/usr/bin/env node
/**
 * The `kvq` command of the npm package (its `bin`).
 *
 * kvq runs on Deno or Bun. Started by either (`bunx --bun kvq`, `deno run -A npm:kvq`), this
 * runs the CLI in the same process. Started by Node (`npx kvq`, or `bunx kvq`, which honours the
 * `node` shebang), it runs the CLI under Deno or Bun instead: `KVQ_RUNTIME` (`deno` or `bun`)
 * if set, else whichever of `deno` and `bun` is on `PATH`, in that order. Signals are passed on,
 * and the exit code comes back.
 *
 * This file imports nothing of kvq statically, so Node can load it.
 *
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import process from "node:process";

/** The CLI entry beside this file, in the compiled package (`dist/npm/main.js`). */
const MAIN = new URL(
  `../../main.${import.meta.url.endsWith(".ts") ? "ts" : "js"}`,
  import.meta.url,
);

/** Which runtime runs this code now. */
function currentRuntime(): "deno" | "bun" | "node" {
  if ("Deno" in globalThis) return "deno";
  if ("Bun" in globalThis) return "bun";
  return "node";
}

/** Whether `name --version` runs. */
function onPath(name: string): boolean {
  try {
    return spawnSync(name, ["--version"], { stdio: "ignore" }).status === 0;
  } catch {
    return false;
  }
}

/** The runtime to hand over to from Node, or an error message. */
function pickRuntime(env: NodeJS.ProcessEnv): "deno" | "bun" | string {
  const wanted = env.KVQ_RUNTIME;
  if (wanted !== undefined && wanted !== "") {
    if (wanted !== "deno" && wanted !== "bun") {
      return `KVQ_RUNTIME must be "deno" or "bun": received ${JSON.stringify(wanted)}`;
    }
    return onPath(wanted)
      ? wanted
      : `KVQ_RUNTIME is ${wanted}, but no ${wanted} is on PATH. Install it, or unset KVQ_RUNTIME.`;
  }
  for (const name of ["deno", "bun"] as const) if (onPath(name)) return name;
  return "kvq runs on Deno or Bun, and neither is on PATH. Install one of them " +
    "(for example 'npm install -g bun' or 'npm install -g deno'), or run 'bunx --bun kvq'.";
}

async function run(): Promise<number> {
  const argv = process.argv.slice(2);
  const here = currentRuntime();
  if (here !== "node") {
    const { main } = await import("./main.ts");
    return await main(argv, MAIN.href);
  }
  const picked = pickRuntime(process.env);
  if (picked !== "deno" && picked !== "bun") {
    console.error(`kvq: ${picked}`);
    return 2;
  }
  const path = decodeURIComponent(MAIN.pathname);
  const args = picked === "deno" ? ["run", "-A", "--unstable-kv", path, ...argv] : [path, ...argv];
  const child = spawn(picked, args, { stdio: "inherit" });
  // The child gets a terminal's Ctrl-C itself (same process group) and takes a repeat within a
  // second as the same request, so passing every signal on is safe.
  const pass = (signal: NodeJS.Signals) => {
    if (child.pid !== undefined && child.exitCode === null) child.kill(signal);
  };
  process.on("SIGINT", pass);
  process.on("SIGTERM", pass);
  return await new Promise<number>((resolve) => {
    child.on("error", (error) => {
      console.error(`kvq: cannot start ${picked}: ${error.message}`);
      resolve(2);
    });
    child.on("exit", (code, signal) => {
      resolve(code ?? (signal === "SIGKILL" ? 137 : signal === "SIGTERM" ? 143 : 130));
    });
  });
}

process.exit(await run());
