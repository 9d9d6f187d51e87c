import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { runtime } from "../../src/runtime/mod.ts";

/** What `tests/fixtures/spin_probe.ts` prints. */
interface Probe {
  tid: number;
  before: number | null;
  after: number | null;
  exitReason: string;
  inFlight: string[];
  commAfter: string | null;
  namedTids: number[];
}

const probeScript = fileURLToPath(new URL("../fixtures/spin_probe.ts", import.meta.url));

/**
 * Runs the probe in its own process, so a thread that outlives `terminate()` burns CPU there and
 * not in the test runner, reads its one JSON line, then SIGKILLs it.
 */
function runProbe(): Promise<Probe> {
  const { cmd, args } = runtime.selfCommand(probeScript);
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  return new Promise<Probe>((resolve, reject) => {
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      const line = stdout.split("\n").find((l) => l.startsWith("{") && l.endsWith("}"));
      if (line !== undefined) {
        child.kill("SIGKILL");
        resolve(JSON.parse(line) as Probe);
      }
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => stderr += chunk);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      reject(new Error(`Probe exited (${code ?? signal}) without a result:\n${stdout}${stderr}`));
    });
  }).finally(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
}

test(
  "WorkerHandle.terminate() on a CPU-bound task: Bun stops the thread, Deno's keeps burning under its name",
  { skip: !existsSync("/proc/self/task") && "needs Linux /proc" },
  async () => {
    const probe = await runProbe();
    assert.equal(probe.exitReason, "terminated");
    assert.deepEqual(probe.inFlight, ["spin-1"]);
    assert.ok(probe.before !== null && probe.before > 50, `spinning used ${probe.before}% CPU`);
    if (runtime.terminateStopsCpu) {
      // Bun: the thread is gone, or idle.
      assert.ok(probe.after === null || probe.after < 20, `after terminate: ${probe.after}% CPU`);
    } else {
      // Deno: measured fact the supervisor relies on. The thread keeps its name and burns a core.
      assert.equal(probe.commAfter, "kvq-w1.g1");
      assert.deepEqual(probe.namedTids, [probe.tid]);
      assert.ok(probe.after !== null && probe.after > 50, `after terminate: ${probe.after}% CPU`);
    }
  },
);
