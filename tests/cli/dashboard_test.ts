import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { openQueue } from "../../src/queue/queue.ts";
import { CLUSTER_TASKS, startKvq, tempDir } from "../cluster/_process.ts";

/** Listens on a free loopback port and resolves with the server and its port. */
function occupy(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") throw new Error("no port");
      resolve({ server, port: address.port });
    });
  });
}

test("kvq cluster --dashboard on a port in use exits 2 at start-up, naming --dashboard", async () => {
  using dir = tempDir();
  const { server, port } = await occupy();
  try {
    const t0 = performance.now();
    const kvq = startKvq([
      "cluster",
      "--kv",
      dir.kv,
      "--tasks",
      CLUSTER_TASKS,
      "--workers",
      "1",
      "--dashboard",
      `127.0.0.1:${port}`,
    ]);
    const exit = await kvq.exited;
    const took = performance.now() - t0;
    const text = kvq.output();
    assert.deepEqual(exit, { code: 2, signal: null }, text);
    assert.match(text, new RegExp(`--dashboard 127\\.0\\.0\\.1:${port}: Port ${port} .*in use`));
    assert.match(text, new RegExp(`Try --dashboard 127\\.0\\.0\\.1:${port + 1}`));
    assert.doesNotMatch(text, /--listen|restarting/);
    assert.doesNotMatch(text, /kvq: cluster \S+ \(/, "the cluster must not start");
    assert.ok(took < 10_000, `took ${took.toFixed(0)} ms`);
  } finally {
    server.close();
  }
});

test("kvq dashboard --listen on a port in use exits 2, naming --listen", async () => {
  using dir = tempDir();
  (await openQueue({ kv: dir.kv })).close();
  const { server, port } = await occupy();
  try {
    const kvq = startKvq(["dashboard", "--kv", dir.kv, "--listen", `127.0.0.1:${port}`]);
    const exit = await kvq.exited;
    assert.deepEqual(exit, { code: 2, signal: null }, kvq.output());
    assert.match(
      kvq.output(),
      new RegExp(`--listen 127\\.0\\.0\\.1:${port}: Port ${port} .*in use`),
    );
  } finally {
    server.close();
  }
});
