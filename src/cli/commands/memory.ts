/**
 * `kvq memory` (Django Q's `qmemory`): resident memory per cluster, heap per worker, and the
 * lowest free memory each cluster's host reported, from the cluster heartbeats.
 *
 * @module
 */
import { type Command, UsageError } from "../command.ts";
import { readClusters } from "../../web/data.ts";
import { bytes, plural } from "../../web/format.ts";
import { openQueues, styles } from "./info.ts";

/** What `kvq memory --json` prints for one cluster. */
export interface ClusterMemory {
  id: string;
  host: string;
  pid: number;
  stale: boolean;
  /** Resident set size of the cluster process, in bytes. */
  rss: number;
  /** The lowest free memory of the host seen since the cluster started, in bytes. */
  lowestFreeMemory: number;
  /** Heap per worker, in bytes, as of its last finished task (0 before its first). */
  workers: { name: string; generation: number; heap: number; tasksRun: number }[];
}

/** `kvq memory [--queue A,B]` */
export const memoryCommand: Command = {
  name: "memory",
  readsOnly: true,
  readsCopy: true,
  summary: "Show memory per cluster and worker (Django Q's qmemory)",
  usage: "kvq memory [--queue A,B] [--json]",
  options: {},
  help: `  --queue A,B   only clusters of these queues (default: every queue found)

RSS is the cluster process's resident memory; a worker's heap is measured after each task it
runs; "lowest free" is the least free memory the host had since the cluster started.`,
  async run(ctx) {
    if (ctx.positionals.length > 0) {
      throw new UsageError(`Unexpected argument ${JSON.stringify(ctx.positionals[0])}`);
    }
    const opened = await openQueues(ctx);
    let views;
    try {
      views = await readClusters(opened.stores, (m) => ctx.err(`kvq: ${m}`), { confirm: true });
    } finally {
      opened.close();
    }
    const clusters: ClusterMemory[] = views.map(({ stat: s, silent }) => ({
      id: s.id,
      host: s.host,
      pid: s.pid,
      stale: silent,
      rss: s.rss ?? 0,
      lowestFreeMemory: s.lowestFreeMemory ?? 0,
      workers: s.workers.map((w) => ({
        name: w.name,
        generation: w.generation,
        heap: w.heap ?? 0,
        tasksRun: w.tasksRun ?? 0,
      })),
    }));
    if (ctx.json) {
      ctx.out(JSON.stringify({ clusters }));
      return 0;
    }
    const c = styles(ctx.tty);
    if (clusters.length === 0) {
      ctx.err("No cluster is running on these queues; start one with kvq cluster --tasks FILE.");
      return 0;
    }
    for (const k of clusters) {
      ctx.out(
        `${c.bold(`cluster ${k.id}`)}  ${k.host} pid ${k.pid}${
          k.stale ? c.yellow("  (silent: probably stopped)") : ""
        }`,
      );
      ctx.out(`  rss ${bytes(k.rss)}   lowest free on host ${bytes(k.lowestFreeMemory)}`);
      for (const w of k.workers) {
        ctx.out(
          `  ${w.name.padEnd(14)} heap ${bytes(w.heap).padStart(8)}   ${
            plural(w.tasksRun, "attempt")
          } run`,
        );
      }
    }
    return 0;
  },
};
