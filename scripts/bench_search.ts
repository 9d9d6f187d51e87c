/**
 * W9, search and metrics history (see `scripts/bench.ts`), on a store of 100,000 finished tasks
 * (10,000 with `--short`) over 10 funcs and 100 groups, with 72 h of per-minute history:
 *
 * - look-ups (func, group, id, human name): the first page of 50, and a page deep in a func;
 * - scans: a needle held by one task (the whole store read), and one held by many (a page);
 * - yardsticks from the same run: one `kv.get` of a record, and a raw `kv.list` of every record;
 * - a cluster's throughput on another queue of the same file while scans run, against none;
 * - `readHistory` over 1 h, 24 h and 72 h, as the dashboard's charts and `kvq info` read it.
 *
 * @module
 */
import { runInline } from "../src/cluster/inline.ts";
import { openQueue, type Queue } from "../src/queue/queue.ts";
import { compactNames, tailIds } from "../src/store/names.ts";
import { searchTasks } from "../src/store/search.ts";
import { BucketCache, readHistory, StatDeltas, STATS_BUCKET_MS } from "../src/store/stats.ts";
import type { TaskRecord } from "../src/task/record.ts";

/** What W9 needs from the bench script. */
export interface SearchBench {
  short: boolean;
  tempKv(): string;
  startCluster(kv: string, args: string[]): Promise<{ exited: Promise<number | null> }>;
  allTasks(queue: Queue, state: TaskRecord["state"]): Promise<TaskRecord[]>;
}

const FUNCS = 10;
const GROUPS = 100;
const HOUR = 3_600_000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

/** The median time of `runs` calls of `fn`, in ms (after one call to warm up). */
async function timed(runs: number, fn: () => Promise<unknown>): Promise<number> {
  await fn();
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}

/** 72 h of per-minute history, as clusters write it: a few attempts a minute. */
async function fillHistory(queue: Queue, now: number): Promise<void> {
  const store = queue.store;
  const minutes = 72 * 60;
  for (let from = 0; from < minutes; from += 120) {
    const deltas = new StatDeltas();
    for (let m = from; m < Math.min(minutes, from + 120); m++) {
      const at = now - m * STATS_BUCKET_MS;
      for (let k = 0; k < 3; k++) {
        deltas.add(at, { ok: k > 0, startedAt: at - 20, runAt: at - 30, retried: k === 0 });
      }
    }
    const atomic = store.kv.atomic();
    deltas.apply(atomic, store);
    await atomic.commit();
  }
}

/** Runs W9 and returns its figures. */
export async function searchWorkload(h: SearchBench): Promise<Record<string, number>> {
  const n = h.short ? 10_000 : 100_000;
  const kv = h.tempKv();
  await using queue = await openQueue({ kv });
  const store = queue.store;
  let needleId = "";
  for (let i = 0; i < n; i += 5000) {
    const batch = await queue.enqueueMany(
      Array.from({ length: Math.min(5000, n - i) }, (_, j) => {
        const k = i + j;
        return {
          func: `f${k % FUNCS}`,
          args: [{ user: `user-${k}`, note: k % 1000 === 0 ? "common-word" : `note ${k}` }],
          group: `g${k % GROUPS}`,
        };
      }),
    );
    // The one task with the rare needle: the oldest of all, so a scan reads everything.
    if (i === 0) needleId = batch[0]!.id;
  }
  const tasks = new Map(
    Array.from({ length: FUNCS }, (_, f) => [`f${f}`, (a: unknown) => a] as const),
  );
  await runInline(store, { tasks, burst: true });
  const needle = (await queue.fetch(needleId))!;
  await fillHistory(queue, Date.now());
  const out: Record<string, number> = {};
  const runs = h.short ? 5 : 20;

  // Yardsticks.
  out["ms, yardstick: one kv.get of a record"] = await timed(
    runs,
    () => store.kv.get(store.keys.task(needle.id)),
  );
  out[`ms, yardstick: a raw kv.list of all ${n} records`] = await timed(3, async () => {
    for await (const _ of store.kv.list({ prefix: store.keys.tasks }, { batchSize: 500 })) {
      // read only
    }
  });

  // Look-ups.
  out["ms, search by func (look-up), first page of 50"] = await timed(
    runs,
    () => searchTasks(store, "f3"),
  );
  out["ms, search by group (look-up), first page of 50"] = await timed(
    runs,
    () => searchTasks(store, "g42"),
  );
  out["ms, search by id"] = await timed(runs, () => searchTasks(store, needle.id));
  // Enqueue leaves the name look-ups to a cluster (see `store/names.ts`): first with most of
  // them still in the tail, as after a bulk enqueue, then once a cluster has written them.
  out["tasks in the name tail"] = (await tailIds(store)).length;
  out["ms, search by human name, the tail not written yet"] = await timed(
    3,
    () => searchTasks(store, needle.name),
  );
  const t0 = performance.now();
  const moved = await compactNames(store, Infinity);
  out["names/s, the tail written into the look-up"] = moved / ((performance.now() - t0) / 1000);
  out["ms, search by human name"] = await timed(runs, () => searchTasks(store, needle.name));
  let deep: string | null = null;
  for (let p = 0; p < 10; p++) {
    deep = (await searchTasks(store, "f3", deep ? { cursor: deep } : {})).cursor;
  }
  out["ms, search by func, the 11th page"] = await timed(
    runs,
    () => searchTasks(store, "f3", { cursor: deep! }),
  );
  out["tasks/func"] = n / FUNCS;

  // Scans.
  const scanAll = async (text: string) => {
    let scanned = 0;
    const ms = await timed(3, async () => {
      const page = await searchTasks(store, text, { budgetMs: 600_000, scan: true });
      scanned = page.scanned;
      if (page.tasks[0]?.id !== needle.id) throw new Error(`the scan for ${text} missed`);
    });
    return { ms, perSecond: scanned / (ms / 1000) };
  };
  const raw = out[`ms, yardstick: a raw kv.list of all ${n} records`]!;
  // Plain text rules most records out from their raw JSON; a quote makes it decode each.
  const quick = await scanAll("user-0");
  out[`ms, scan of all ${n} records for one match`] = quick.ms;
  out["records/s, scan"] = quick.perSecond;
  out["scan / raw list"] = quick.ms / raw;
  const slow = await scanAll('"user-0"');
  out[`ms, scan of all ${n} records, every record decoded (text with a quote)`] = slow.ms;
  out["records/s, scan decoding every record"] = slow.perSecond;
  out["scan decoding every record / raw list"] = slow.ms / raw;
  out["ms, scan, first page of a common word (1 in 1,000)"] = await timed(
    3,
    () => searchTasks(store, "common-word", { budgetMs: 600_000 }),
  );

  // A cluster on another queue of the file, alone and while scans run.
  const m = h.short ? 2000 : 5000;
  const rate = async (scanning: boolean) => {
    const name = scanning ? "beside-scans" : "alone";
    await using other = await openQueue({ kv, name });
    for (let i = 0; i < m; i += 5000) {
      await other.enqueueMany(
        Array.from({ length: Math.min(5000, m - i) }, () => ({ func: "noop", args: [] })),
      );
    }
    let stop = false;
    const scans = (async () => {
      while (scanning && !stop) {
        await searchTasks(store, "no such text anywhere", { budgetMs: 600_000, scan: true });
      }
    })();
    const cluster = await h.startCluster(kv, ["--workers", "2", "--burst", "--queue", name]);
    await cluster.exited;
    stop = true;
    await scans;
    const done = await h.allTasks(other, "succeeded");
    const first = Math.min(...done.map((r) => r.startedAt ?? Infinity));
    const last = Math.max(...done.map((r) => r.stoppedAt ?? 0));
    return done.length / ((last - first) / 1000);
  };
  const alone = await rate(false);
  const beside = await rate(true);
  out["processing tasks/s on another queue, no scan"] = alone;
  out["processing tasks/s on another queue, scans running"] = beside;
  out["with scans / without"] = beside / alone;

  // History, as the charts and `kvq info --history` read it.
  out["ms, history 1 h in 1 min bins"] = await timed(runs, () => readHistory(store, HOUR, 60_000));
  out["ms, history 24 h in 15 min bins"] = await timed(
    runs,
    () => readHistory(store, 24 * HOUR, 15 * 60_000),
  );
  out["ms, history 72 h in 1 h bins"] = await timed(
    runs,
    () => readHistory(store, 72 * HOUR, HOUR),
  );
  // The dashboard reads through a cache: after its first read, only the recent minutes.
  const cache = new BucketCache();
  out["ms, history 72 h in 1 h bins, the dashboard's cached read"] = await timed(
    runs,
    () => readHistory(store, 72 * HOUR, HOUR, Date.now(), cache),
  );
  return out;
}
