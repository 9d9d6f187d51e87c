import { openQueue } from "../../src/queue/queue.ts";
import { rmSync } from "node:fs";
rmSync("/tmp/exp/s2", { recursive: true, force: true });
const q = await openQueue({ kv: "/tmp/exp/s2/kv.sqlite3" });
for (const n of [10, 100, 250, 251, 1000]) {
  const t0 = performance.now();
  console.log("start", n);
  await q.enqueueMany(Array.from({ length: n }, (_, i) => ({ func: "add", args: [i, 1] })));
  console.log(n, performance.now() - t0);
}
q.close();
