/**
 * `/readyz` beyond the KV read: the `health` option of the dashboard, and the signal a cluster
 * hosting the dashboard gives it, {@linkcode Cluster.kvHealthy}, while its KV writes fail.
 *
 * @module
 */
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Cluster } from "../../src/cluster/cluster.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { withDashboard } from "./_helpers.ts";
import { openFailingHandle } from "../fixtures/failing_kv.ts";

const TASKS = fileURLToPath(new URL("../fixtures/web_tasks.ts", import.meta.url));

test("Dashboard /readyz answers 503 with the reason while the health option says unhealthy", async () => {
  let health: boolean | { ok: boolean; reason: string } = true;
  await withDashboard({ health: () => health }, async ({ client }) => {
    let res = await client.request("/readyz");
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "ready\n");
    health = false;
    res = await client.request("/readyz");
    assert.equal(res.status, 503);
    assert.match(await res.text(), /^not ready: .*unhealthy/);
    health = { ok: false, reason: "KV writes fail" };
    res = await client.request("/readyz");
    assert.equal(res.status, 503);
    assert.equal(await res.text(), "not ready: KV writes fail\n");
    health = { ok: true, reason: "" };
    res = await client.request("/readyz");
    assert.equal(res.status, 200);
    // /healthz (liveness) does not depend on it.
    health = false;
    assert.equal((await client.request("/healthz")).status, 200);
  });
  await withDashboard({
    health: () => {
      throw new Error("probe broke");
    },
  }, async ({ client }) => {
    const res = await client.request("/readyz");
    assert.equal(res.status, 503);
    assert.match(await res.text(), /probe broke/);
  });
});

test("Cluster.kvHealthy turns false while KV writes fail and true once a write succeeds again", async () => {
  const dir = mkdtempSync(join(tmpdir(), "kvq-readyz-"));
  const path = join(dir, "kv.sqlite3");
  const { real, handle, failing } = await openFailingHandle(path);
  const errors: string[] = [];
  const cluster = new Cluster({
    kv: handle,
    tasks: [TASKS],
    workers: 1,
    heartbeat: 100,
    onError: (e, context) => errors.push(`${context}: ${e.message}`),
  });
  const queue = await openQueue({ kv: real });
  try {
    await cluster.start();
    assert.equal(cluster.kvHealthy, true, "healthy after a first good heartbeat");
    const refused = cluster.once("cluster:error", (e) => e.context === "heartbeat");
    failing.on = true;
    await refused;
    assert.equal(cluster.kvHealthy, false, "unhealthy once a heartbeat write failed");
    assert.ok(errors.some((e) => e.includes("injected")), errors.join("\n"));
    failing.on = false;
    // The next write that succeeds (here: a task's result, stored before task:finish) heals it.
    const finished = cluster.once("task:finish");
    await queue.enqueue("add", 1, 2);
    await finished;
    assert.equal(cluster.kvHealthy, true, "healthy again after a successful write");
  } finally {
    failing.on = false;
    await cluster.stop({ grace: 0 });
    queue.close();
    real.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
