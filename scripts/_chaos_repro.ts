/**
 * A small repro of the KV file corruption the chaos run found: 3,000 tasks, three `kvq cluster`
 * processes on one KV file, one of them SIGKILLed and restarted every 1.5 s, while this process
 * keeps the file open and reads `counts()` on every change. Within a few kills this process
 * (or a cluster) often dies of SIGBUS, and SQLite then reports "database disk image is
 * malformed". Prints the file's `pragma integrity_check` at the end.
 *
 * Usage: `deno run -A scripts/_chaos_repro.ts [--no-native-queue]` (exit 135 is the SIGBUS).
 *
 * @module
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { spawnSync } from "node:child_process";
import { openQueue } from "../src/queue/queue.ts";
import { CURRENT_RUNTIME, signal, sleep, start } from "./_chaos_process.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const TASKS = fileURLToPath(new URL("../tests/fixtures/chaos_tasks.ts", import.meta.url));

const dir = mkdtempSync(join(tmpdir(), "kvq-chaos-repro-"));
const kv = join(dir, "kv.sqlite3");
const log = join(dir, "tasks.log");
console.log(`repro in ${dir}`);
const queue = await openQueue({ kv });
await queue.enqueueMany(
  Array.from({ length: 3000 }, () => ({ func: "chaosRecord", args: [log, 20] })),
);
const off = queue.store.changes.subscribe(() =>
  void queue.counts().catch((e) => console.log(`counts: ${e}`))
);
const args = [
  "cluster",
  ...["--kv", kv, "--tasks", TASKS, "--no-sentinel", "--workers", "2"],
  ...["--heartbeat", "500", "--lease-timeout", "3000", ...process.argv.slice(2)],
];
const procs = [0, 1, 2].map(() => start(CURRENT_RUNTIME, MAIN, args));
await sleep(2000);
for (let k = 0; k < 12; k++) {
  await sleep(1500);
  const j = Math.floor(Math.random() * 3);
  signal(procs[j]!.pid, "SIGKILL");
  await procs[j]!.exited;
  procs[j] = start(CURRENT_RUNTIME, MAIN, args);
  console.log(`kill ${k + 1}`);
}
await sleep(1000);
off();
queue.close();
for (const p of procs) {
  signal(p.pid, "SIGKILL");
  await p.exited;
}
const malformed = procs.map((p) =>
  p.output().split("\n").filter((l) => /malformed/.test(l)).length
);
console.log(`"malformed" lines of the last clusters: ${malformed.join(", ")}`);
const check = spawnSync("sqlite3", [kv, "pragma integrity_check"], { encoding: "utf8" });
console.log(
  `integrity_check: ${(check.stdout || check.stderr || String(check.error)).trim().slice(0, 300)}`,
);
