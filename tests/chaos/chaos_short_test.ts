import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { report } from "../_report.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CHAOS = fileURLToPath(new URL("../../scripts/chaos.ts", import.meta.url));
const isDeno = "Deno" in globalThis;

/** Runs `scripts/chaos.ts args…` on the runtime running the tests; resolves with code and output. */
function chaos(args: string[]): Promise<{ code: number | null; output: string }> {
  const [cmd, base] = isDeno
    ? [process.execPath, ["run", "-A", CHAOS]]
    : [process.execPath, [CHAOS]];
  const child = spawn(cmd, [...base, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => output += c);
  child.stderr.setEncoding("utf8").on("data", (c: string) => output += c);
  return new Promise((resolve) => child.on("exit", (code) => resolve({ code, output })));
}

/** The summary lines, for the test log. */
function summary(output: string): string {
  return output.split("\n").filter((l) =>
    /^(tasks|kills|stops|lost|duplicates|recovery|schedule|elapsed|chaos):/.test(l)
  ).join("\n");
}

// This run once found that Deno's file watcher, pointed at the KV file's folder, dropped
// SQLite's locks and corrupted the file under SIGKILL (scripts/_chaos_repro.ts); kvq now
// watches a signal file in a folder of its own.

test(
  `chaos --short with ${
    isDeno ? "Deno" : "Bun"
  } clusters: nothing lost, every duplicate explained, every schedule slot once`,
  { timeout: 120_000 },
  async () => {
    const { code, output } = await chaos(["--short", "--runtime", isDeno ? "deno" : "bun"]);
    report(summary(output));
    assert.equal(code, 0, output.slice(-4000));
    assert.match(output, /^chaos: OK$/m);
    assert.match(output, /^lost: 0$/m);
  },
);

if (isDeno) {
  test(
    "chaos --short --runtime mixed: Deno and Bun clusters on one KV file",
    { timeout: 120_000 },
    async () => {
      const { code, output } = await chaos(["--short", "--runtime", "mixed"]);
      report(summary(output));
      assert.equal(code, 0, output.slice(-4000));
      assert.match(output, /^chaos: OK$/m);
    },
  );
}

test(
  `chaos --short --no-native-queue with ${
    isDeno ? "Deno" : "Bun"
  } clusters: the remote-KV wake path`,
  { timeout: 120_000 },
  async () => {
    const { code, output } = await chaos([
      "--short",
      "--runtime",
      isDeno ? "deno" : "bun",
      "--no-native-queue",
    ]);
    report(summary(output));
    assert.equal(code, 0, output.slice(-4000));
    assert.match(output, /^chaos: OK$/m);
    assert.match(output, /^lost: 0$/m);
  },
);
