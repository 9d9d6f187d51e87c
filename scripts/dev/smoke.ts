import { openQueue } from "../../src/queue/queue.ts";
import { runInline } from "../../src/cluster/inline.ts";
import { rmSync } from "node:fs";
rmSync("/tmp/exp/s", { recursive: true, force: true });
const q = await openQueue({ kv: "/tmp/exp/s/kv.sqlite3" });
const a = await q.enqueue("add", 1, 2);
const b = await q.enqueue({ func: "boom", args: [], maxAttempts: 1 });
const c = await q.enqueue({ func: "add", args: [5, 5], delay: 200 });
console.log(a.name, await q.counts());
const tasks = new Map<string, any>([["add", (x: number, y: number) => x + y], ["boom", () => {
  throw new Error("bad");
}]]);
console.log(await runInline(q.store, { tasks, burst: true }));
console.log(await q.result(a.id), await q.result(b.id).catch((e) => e.message), await q.counts());
const ctl = new AbortController();
const p = runInline(q.store, { tasks, signal: ctl.signal });
console.log("c", await q.result(c.name, { wait: 2000 }));
ctl.abort();
await p;
let t0 = performance.now();
const N = 20000;
await q.enqueueMany(Array.from({ length: N }, (_, i) => ({ func: "add", args: [i, 1] })));
let t1 = performance.now();
console.log("bulk enqueue/s", Math.round(N / ((t1 - t0) / 1000)));
t0 = performance.now();
for (let i = 0; i < 2000; i++) await q.enqueue("add", i, 1);
t1 = performance.now();
console.log("single enqueue/s", Math.round(2000 / ((t1 - t0) / 1000)));
t0 = performance.now();
const r = await runInline(q.store, { tasks, burst: true, batch: 50 });
t1 = performance.now();
console.log("inline", r.processed, "per s", Math.round(r.processed / ((t1 - t0) / 1000)));
console.log(
  await q.counts(),
  (await q.tasks({ state: "succeeded", limit: 2 })).tasks.map((t) => t.result),
);
q.close();
