/**
 * Helpers for the task composition and control tests: the fixture tasks (as a module path for
 * clusters and as a map for `runInline`), a queue with a started cluster on a fresh KV file, and
 * a wait on the change feed (no sleeps).
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { Cluster, type ClusterOptions } from "../../src/cluster/cluster.ts";
import { runInline } from "../../src/cluster/inline.ts";
import type { TaskFunction } from "../../src/task/loader.ts";
import { openQueue, type OpenQueueOptions, type Queue } from "../../src/queue/queue.ts";
import * as controlModule from "../fixtures/control_tasks.ts";
import { tempDir } from "../store/_helpers.ts";
import { inPhase, onHang } from "../_deadline.ts";

/** The fixture task module, for clusters. */
export const CONTROL_TASKS: string = fileURLToPath(
  new URL("../fixtures/control_tasks.ts", import.meta.url),
);

/** The fixture tasks by name, for `runInline`. */
export const controlTasks: ReadonlyMap<string, TaskFunction> = new Map(
  Object.entries(controlModule) as [string, TaskFunction][],
);

/** Runs every queued task of `queue` in this process until none is left. */
export function drain(queue: Queue) {
  return runInline(queue.store, { tasks: controlTasks, burst: true });
}

/**
 * Resolves once `check` is true, re-checking on every change of the queue; rejects after
 * `timeout` ms with `what`.
 */
export function waitUntil(
  queue: Queue,
  check: () => Promise<boolean> | boolean,
  what: string,
  timeout = 20_000,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let busy = false;
    let again = false;
    let done = false;
    const finish = (error?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      unsubscribe();
      if (error) reject(error);
      else resolve();
    };
    const run = async () => {
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      try {
        do {
          again = false;
          if (await check()) return finish();
        } while (again && !done);
      } catch (error) {
        finish(error as Error);
      } finally {
        busy = false;
      }
    };
    const timer = setTimeout(() => finish(new Error(`Timed out waiting for ${what}`)), timeout);
    const unsubscribe = queue.store.changes.subscribe(() => void run());
    void run();
  });
}

/** Runs `fn` with a queue and a started cluster on a fresh KV file. */
export async function withCluster(
  options: Partial<ClusterOptions> & { queue?: Omit<OpenQueueOptions, "kv"> },
  fn: (cluster: Cluster, queue: Queue, kv: string) => Promise<void>,
): Promise<void> {
  await using dir = tempDir();
  const kv = `${dir.path}/kv.sqlite3`;
  const { queue: queueOptions, ...clusterOptions } = options;
  const queue = await openQueue({ ...queueOptions, kv });
  const cluster = new Cluster({
    kv,
    tasks: [CONTROL_TASKS],
    workers: 1,
    heartbeat: 200,
    ...clusterOptions,
  });
  const off = onHang(() => `cluster ${JSON.stringify(cluster.stats()).slice(0, 2000)}`);
  try {
    inPhase("cluster start");
    await cluster.start();
    inPhase("test body");
    await fn(cluster, queue, kv);
  } finally {
    inPhase("cluster stop");
    await cluster.stop({ grace: 0 });
    queue.close();
    off();
  }
}
