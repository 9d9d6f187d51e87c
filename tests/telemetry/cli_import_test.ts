/**
 * `kvq cluster --import FILE`: a module that registers an OpenTelemetry SDK in the cluster's
 * own process, so the command traces its attempts; a module that fails to load exits 2 naming it.
 */
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { openQueue } from "../../src/queue/queue.ts";
import { CLUSTER_TASKS, startKvq, tempDir } from "../cluster/_process.ts";

const SETUP = new URL("../fixtures/otel_setup.ts", import.meta.url).pathname;

test("kvq cluster --import registers an SDK before the cluster starts: its attempts are spans", async () => {
  using dir = tempDir();
  const spans = join(dir.path, "spans.ndjson");
  {
    await using queue = await openQueue({ kv: dir.kv });
    await queue.enqueue("stamp", join(dir.path, "starts.txt"));
  }
  const kvq = startKvq(
    ["cluster", "--kv", dir.kv, "--tasks", CLUSTER_TASKS, "--import", SETUP, "--burst"],
    { env: { KVQ_TEST_SPANS: spans } },
  );
  const exit = await kvq.exited;
  assert.equal(exit.code, 0, kvq.output());
  assert.ok(existsSync(spans), `no span was exported: ${kvq.output()}`);
  const names = readFileSync(spans, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(names.map((s) => [s.name, s.attempt]), [["kvq run stamp", 1]]);
});

test("kvq cluster --import with a module that fails to load exits 2 naming it", async () => {
  using dir = tempDir();
  const args = ["--tasks", CLUSTER_TASKS, "--import", "./no/such/setup.ts", "--burst"];
  const kvq = startKvq(["cluster", "--kv", dir.kv, ...args]);
  const exit = await kvq.exited;
  assert.equal(exit.code, 2, kvq.output());
  assert.match(kvq.output(), /--import \.\/no\/such\/setup\.ts: the module failed to load/);
});
