import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { openQueue } from "../../src/queue/queue.ts";
import { IdempotencyKeyError } from "../../src/store/enqueue_batch.ts";
import { countsReach } from "../cluster/_process.ts";
import { tempDir } from "../cli/_helpers.ts";

const calls = (n: number) => Array.from({ length: n }, (_, i) => ({ func: "add", args: [i, 1] }));

test("enqueueMany() with an idempotency key stores a repeated batch once and returns the same tasks", async () => {
  using dir = tempDir();
  await using queue = await openQueue({ kv: dir.kv });
  const first = await queue.enqueueMany(calls(1500), { idempotencyKey: "import-1" });
  const again = await queue.enqueueMany(calls(1500), { idempotencyKey: "import-1" });
  assert.equal((await queue.counts()).queued, 1500);
  assert.deepEqual(again.map((t) => t.id), first.map((t) => t.id));
  assert.ok(again.every((t) => t.existing) && first.every((t) => !t.existing));
  // In order: the batch keeps its FIFO order in the ready index.
  const listed = (await queue.tasks({ state: "queued", limit: 1000 })).tasks.map((t) => t.id);
  assert.deepEqual(listed.slice(0, 5), first.slice(0, 5).map((t) => t.id));
  await assert.rejects(
    queue.enqueueMany(calls(10), { idempotencyKey: "import-1" }),
    (e: Error) => e instanceof IdempotencyKeyError && /batch of other calls/.test(e.message),
  );
  await assert.rejects(
    queue.enqueueMany([{ func: "add", args: [1], unique: "u" }], { idempotencyKey: "x" }),
    /can't be combined with unique tasks/,
  );
  await assert.rejects(queue.enqueueMany(calls(1), { idempotencyKey: "" }), TypeError);
});

test("enqueueMany() with an idempotency key, retried after its producer was SIGKILLed mid-call, stores each task once", async () => {
  using dir = tempDir();
  const n = 20_000;
  const script = fileURLToPath(new URL("../fixtures/batch_producer.ts", import.meta.url));
  const [cmd, args] = "Deno" in globalThis
    ? [Deno.execPath(), ["run", "-A", script, dir.kv, String(n), "nightly"]]
    : [process.execPath, [script, dir.kv, String(n), "nightly"]];
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  await using queue = await openQueue({ kv: dir.kv });
  await countsReach(queue, (c) => c.queued > 0, 60_000);
  child.kill("SIGKILL");
  await exited;
  const partial = (await queue.counts()).queued;
  assert.ok(partial > 0 && partial < n, `killed with ${partial} of ${n} stored`);
  const padded = Array.from(
    { length: n },
    (_, i) => ({ func: "add", args: [i, "x".repeat(1000)] }),
  );
  const tasks = await queue.enqueueMany(padded, { idempotencyKey: "nightly" });
  assert.equal(new Set(tasks.map((t) => t.id)).size, n);
  assert.equal(tasks.filter((t) => t.existing).length, partial);
  assert.equal((await queue.counts()).queued, n, "every call stored once");
});

test("enqueueMany() with an idempotency key retries a batch of delayed tasks (the hash is of the calls, not of their due times)", async () => {
  using dir = tempDir();
  const t0 = Date.now();
  await using queue = await openQueue({ kv: dir.kv, clock: () => t0 });
  const delayed = Array.from({ length: 3 }, (_, i) => ({ func: "add", args: [i], delay: 60_000 }));
  const first = await queue.enqueueMany(delayed, { idempotencyKey: "later" });
  // The retry comes a second later: the due times it would compute differ.
  await using later = await openQueue({ kv: dir.kv, clock: () => t0 + 1000 });
  const again = await later.enqueueMany(delayed, { idempotencyKey: "later" });
  assert.deepEqual(again.map((t) => t.id), first.map((t) => t.id));
  assert.equal((await queue.counts()).scheduled, 3);
});
