/**
 * The Deploy entry point, tested as a single-isolate server in a child process: requests
 * enqueue, the same isolate runs the tasks with no Web Workers, with the native queue and
 * without it.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { createDeployRunner, taskMap } from "../../src/deploy/mod.ts";
import * as deployTasks from "../../examples/deploy/tasks.ts";

const isDeno = "Deno" in globalThis;
const example = new URL("../../examples/deploy/main.ts", import.meta.url).pathname;

async function startExample(env: Record<string, string>) {
  const child = spawn(
    process.execPath,
    ["run", "-A", "--unstable-kv", "--unstable-cron", example],
    { env: { ...process.env, PORT: "0", ...env }, stdio: ["ignore", "pipe", "inherit"] },
  );
  const line = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Uint8Array) => {
      out += String(d);
      const m = /listening on (\S+) \(([^)]+)\)/.exec(out);
      if (m) resolve(`${m[1]} ${m[2]}`);
    });
    child.on("exit", (code) => reject(new Error(`example exited with ${code}`)));
  });
  const [base, mode] = line.split(" ") as [string, string];
  return {
    base,
    mode,
    async stop() {
      const exited = new Promise((resolve) => child.on("exit", resolve));
      process.kill(child.pid!, "SIGTERM");
      await exited;
    },
  };
}

for (const native of [true, false]) {
  test(
    `createDeployRunner() runs tasks enqueued by request handlers in the same isolate (${
      native ? "native queue" : "watch and cron, no native queue"
    })`,
    { skip: isDeno ? false : "Deno Deploy runs Deno; the example server is Deno-only" },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "kvq-deploy-"));
      const server = await startExample({
        KVQ_KV: join(dir, "kv.sqlite3"),
        ...(native ? {} : { KVQ_NO_NATIVE_QUEUE: "1" }),
      });
      try {
        assert.equal(server.mode, native ? "listenQueue" : "watch+cron");
        const ids: string[] = [];
        for (const [i, name] of ["Ada", "Grace", "Linus"].entries()) {
          // Linus is delayed: a doorbell (native) or the isolate's timer (fallback) runs it.
          const delay = i === 2 ? "&delay=300" : "";
          const res = await fetch(`${server.base}/greet?name=${name}${delay}`, { method: "POST" });
          assert.equal(res.status, 202);
          ids.push((await res.json()).id);
        }
        for (const [i, name] of ["Ada", "Grace", "Linus"].entries()) {
          const res = await fetch(`${server.base}/result/${ids[i]}?wait=10000`);
          assert.deepEqual(await res.json(), {
            state: "succeeded",
            result: `Hello, ${name}!`,
            error: null,
          });
        }
      } finally {
        await server.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
}

test("createDeployRunner() drains within its time budget and leaves the rest queued", async () => {
  // Enqueue 20 slow tasks, then drain with a 150 ms budget.
  const dir2 = mkdtempSync(join(tmpdir(), "kvq-deploy-"));
  const kv = join(dir2, "kv.sqlite3");
  const { openQueue } = await import("../../src/queue/queue.ts");
  {
    await using queue = await openQueue({ kv });
    await queue.enqueueMany(Array.from({ length: 20 }, () => ({ func: "slow" })));
  }
  const second = await createDeployRunner({
    kv,
    tasks: { slow: () => new Promise((resolve) => setTimeout(resolve, 40)) },
    nativeQueue: false,
    budgetMs: 150,
  });
  try {
    const ran = await second.drain(150);
    const counts = await second.queue.counts();
    assert.ok(ran >= 1 && ran < 20, `ran ${ran} of 20 within the budget`);
    assert.ok(counts.queued + counts.succeeded + counts.running === 20);
    assert.ok(counts.queued > 0, "the rest stays queued for the next drain");
  } finally {
    await second.close();
    rmSync(dir2, { recursive: true, force: true });
  }
});

test("taskMap() takes only function exports and refuses a module without any", () => {
  const map = taskMap(deployTasks);
  assert.deepEqual([...map.keys()].sort(), ["add", "greet"]);
  assert.throws(() => taskMap({ notATask: 42 }), /at least one task function/);
});
