/**
 * The idle cost of many active schedules: 1,000 schedules whose next slots are spread over the
 * next hour, a 2-worker cluster in another process, CPU and KV commits measured while nothing is
 * due, plus the lateness of the slots that do fire meanwhile.
 *
 *   deno run -A scripts/bench_schedules.ts [--seconds S] [--schedules N]
 *
 * @module
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { openQueue } from "../src/queue/queue.ts";
import { runtime } from "../src/runtime/mod.ts";
import { Schedules } from "../src/schedule/api.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { seconds: { type: "string" }, schedules: { type: "string" } },
});
const seconds = Number(values.seconds ?? 30);
const count = Number(values.schedules ?? 1000);
const root = new URL("../", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "kvq-sched-bench-"));
const kv = join(dir, "kv.sqlite3");

function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

async function stamp(): Promise<bigint> {
  const handle = await runtime.openKv(kv);
  const r = await handle.atomic().set(["bench", "probe"], new Uint8Array()).commit();
  handle.close();
  return BigInt(`0x${(r as Deno.KvCommitResult).versionstamp}`) / 65536n;
}

try {
  await using queue = await openQueue({ kv });
  const schedules = new Schedules(queue.store);
  const now = Date.now();
  for (let i = 0; i < count; i++) {
    await schedules.add(`s${i}`, "noop", [], {
      type: "hourly",
      nextRun: new Date(now + 120_000 + Math.floor((i / count) * 3_600_000)),
    });
  }
  const [cmd, args] = runtime.name === "deno"
    ? [process.execPath, ["run", "-A", join(root, "main.ts")]]
    : [process.execPath, [join(root, "main.ts")]];
  const child = spawn(cmd, [
    ...args,
    ...["cluster", "--kv", kv, "--tasks", join(root, "examples/tasks.ts"), "--workers", "2"],
    "--no-sentinel",
  ], { stdio: ["ignore", "ignore", "pipe"] });
  await new Promise<void>((resolve) => {
    child.stderr!.on("data", (d: Uint8Array) => {
      if (/workers?, queues/.test(String(d))) resolve();
    });
  });
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const c0 = cpuMs(child.pid!);
  const v0 = await stamp();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const v1 = await stamp();
  const cpu = (cpuMs(child.pid!) - c0) / 1000;
  console.log(
    `${count} active schedules, ${runtime.name} cluster idle ${seconds} s between slots: ` +
      `${(cpu * 60 / seconds).toFixed(3)} CPU-s per minute, ` +
      `${(Number(v1 - v0 - 1n) / seconds).toFixed(2)} versionstamp steps/s (heartbeat every 2 s; ` +
      `an idle file also advances ~0.5/s by itself)`,
  );
  process.kill(child.pid!, "SIGTERM");
  await new Promise((resolve) => child.on("exit", resolve));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
