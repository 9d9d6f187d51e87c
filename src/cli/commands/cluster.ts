/**
 * `kvq cluster`: run a worker cluster.
 *
 * @module
 */
import { commitStats } from "../../store/commit.ts";
import { messageStats } from "../../cluster/worker_handle.ts";
import process from "node:process";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { type Command, intOption, UsageError } from "../command.ts";
import { secretsOf } from "../_common.ts";
import { parseDuration } from "./purge.ts";
import { Cluster, type ClusterOptions } from "../../cluster/cluster.ts";
import {
  followParent,
  isSentinelChild,
  RECYCLE_EXIT_CODE,
  runSentinel,
  sentinelRestarts,
} from "../../cluster/sentinel.ts";
import { runtime } from "../../runtime/mod.ts";
import { listenStopSignals } from "../../cluster/stop_signals.ts";
import { KvHandle } from "../../store/store.ts";
import { startClusterDashboard } from "./dashboard.ts";
import { DEFAULT_RETRY } from "../../task/backoff.ts";
import { plural } from "../../web/format.ts";

/** `kvq cluster --tasks FILE …` */
export const clusterCommand: Command = {
  name: "cluster",
  summary: "Run a worker cluster",
  usage:
    "kvq cluster --tasks FILE [--tasks FILE2] [--workers N] [--queue NAME[,NAME…]] [--timeout MS] [--max-attempts N] [--recycle N] [--max-memory MB] [--grace MS] [--concurrency N] [--prefetch N] [--max-crashes N] [--history-keep DURATION] [--burst]",
  options: {
    tasks: { type: "string", multiple: true },
    import: { type: "string", multiple: true },
    workers: { type: "string" },
    timeout: { type: "string" },
    "max-attempts": { type: "string" },
    "max-crashes": { type: "string" },
    recycle: { type: "string" },
    "max-memory": { type: "string" },
    grace: { type: "string" },
    "abort-grace": { type: "string" },
    concurrency: { type: "string" },
    prefetch: { type: "string" },
    "history-keep": { type: "string" },
    burst: { type: "boolean" },
    "no-native-queue": { type: "boolean" },
    "no-sentinel": { type: "boolean" },
    heartbeat: { type: "string" },
    "lease-timeout": { type: "string" },
    verbose: { type: "boolean" },
    dashboard: { type: "string" },
    "dashboard-read-only": { type: "boolean" },
    "trace-url": { type: "string" },
  },
  help: `  --tasks FILE         a module whose exported functions are the tasks (repeatable)
  --workers N          Web Workers to run (default: the number of CPUs, now ${
    globalThis.navigator?.hardwareConcurrency ?? "?"
  })
  --queue A,B          queues to serve, claimed in turn (default: default); A:3 gives A three
                       turns to another's one, A@2 runs at most 2 of A's tasks at once here
  --concurrency N      tasks one worker runs at once, for I/O-bound work (default 1)
  --prefetch N         most tasks claimed ahead of a free place, for short tasks (default 100;
                       0 claims only for free places)
  --timeout MS         stop an attempt after MS milliseconds (default: no limit)
  --abort-grace MS     after aborting a task's signal, terminate its worker after MS (default 1000)
  --max-attempts N     attempts per task, for tasks that set none (default ${DEFAULT_RETRY.maxAttempts})
  --max-crashes N      a task running when its cluster died is retried alone; after N such
                       crashes it fails as PoisonTaskError (default 2)
  --history-keep D     keep the per-minute history for D, e.g. 72h, 7d (default 73h; at least 1h)
  --recycle N          replace a worker after N tasks (default: never)
  --max-memory MB      replace a worker whose heap passes MB (default: never)
  --grace MS           on SIGINT/SIGTERM, let running tasks finish for MS (default 10000)
  --burst              exit 0 once nothing is queued or running and no retry of a task it
                       ran still waits for its backoff (other delayed tasks are left)
  --no-native-queue    wake by file/KV watch and timers only, as on remote KV
  --no-sentinel        (Deno) run without the parent process that recycles a stuck host
  --heartbeat MS       heartbeat interval (default 2000)
  --lease-timeout MS   a cluster silent this long is dead and its tasks are retried (default 10000)
  --verbose            log every task
  --dashboard H:P      serve the web dashboard too (token: KVQ_DASHBOARD_TOKEN; see kvq dashboard)
  --dashboard-read-only  serve it without actions
  --trace-url URL      the dashboard links a task's trace id there (URL holds {traceId})
  --import FILE        a module imported in the cluster's own process before it starts, e.g.
                       one that registers an OpenTelemetry SDK (repeatable; see README)

SIGINT or SIGTERM stops gracefully: running tasks finish within --grace, the rest go back to the
queue, exit 0. One Ctrl-C reaches every process of the group: a signal within a second of the
first is the same request. One sent later exits at once; its tasks come back through lease
recovery.`,
  async run(ctx) {
    const tasks = (ctx.values.tasks as string[] | undefined) ?? [];
    if (tasks.length === 0) {
      throw new UsageError("Pass the task module: kvq cluster --tasks ./tasks.ts");
    }
    const options: ClusterOptions = { tasks };
    const num = (name: string, min: number) => intOption(ctx.values, name, { min });
    const set = <K extends keyof ClusterOptions>(key: K, value: ClusterOptions[K] | undefined) => {
      if (value !== undefined) options[key] = value;
    };
    set("workers", num("workers", 1));
    set("timeout", num("timeout", 1));
    set("abortGrace", num("abort-grace", 0));
    set("grace", num("grace", 0));
    set("recycle", num("recycle", 1));
    set("maxMemoryMb", num("max-memory", 1));
    set("concurrency", num("concurrency", 1));
    set("prefetch", num("prefetch", 0));
    set("maxCrashes", num("max-crashes", 1));
    if (ctx.values["history-keep"] !== undefined) {
      const keep = durationOption(String(ctx.values["history-keep"]), "--history-keep");
      if (keep < 3_600_000) {
        throw new UsageError(
          `--history-keep must be at least 1h: received ${ctx.values["history-keep"]}`,
        );
      }
      options.historyKeep = keep;
    }
    set("heartbeat", num("heartbeat", 50));
    set("leaseTimeout", num("lease-timeout", 100));
    const attempts = num("max-attempts", 1);
    if (attempts !== undefined) options.retry = { ...DEFAULT_RETRY, maxAttempts: attempts };
    options.burst = ctx.values.burst === true;
    options.noNativeQueue = ctx.values["no-native-queue"] === true;
    const queues = String(ctx.values.queue ?? process.env.KVQ_QUEUE ?? "default").split(",").map((
      q,
    ) => q.trim())
      .filter(Boolean);
    options.queues = queues;

    // Deno can't stop a worker stuck in CPU-bound code: run the host under a sentinel.
    if (!runtime.terminateStopsCpu && !isSentinelChild() && ctx.values["no-sentinel"] !== true) {
      return await runSentinel(ctx.entry, ctx.argv);
    }
    // The first SIGINT/SIGTERM (or the sentinel's stop request) stops gracefully; one sent again
    // later exits at once. Listening starts before the KV opens, so no early signal is lost.
    let started: Cluster | null = null;
    let stopRequested = false;
    using signals = listenStopSignals({
      onStop() {
        stopRequested = true;
        ctx.err("kvq: stopping: finishing running tasks (signal again to exit at once)");
        void started?.stop();
      },
      onForce: () => process.exit(130),
    });
    if (isSentinelChild()) followParent(() => signals.stop());

    await importSetup((ctx.values.import as string[] | undefined) ?? []);
    const handle = await KvHandle.open({ kv: ctx.kv, noNativeQueue: options.noNativeQueue });
    options.kv = handle;
    options.secret = secretsOf(ctx.values);
    if (isSentinelChild()) options.priorReincarnations = sentinelRestarts();
    const cluster = new Cluster(options);
    cluster.on("worker:exit", (e) => {
      if (e.reason !== "terminated" || (e.detail !== "recycled" && e.detail !== "shutdown")) {
        ctx.err(
          `kvq: worker ${e.worker} ended (${e.reason}${e.detail ? `: ${e.detail}` : ""})${
            e.inFlight.length ? `, ${plural(e.inFlight.length, "task")} in flight` : ""
          }`,
        );
      }
    });
    cluster.on(
      "cluster:recovered",
      (e) => ctx.err(`kvq: requeued ${plural(e.tasks, "task")} of dead cluster ${e.cluster}`),
    );
    if (ctx.values.verbose) {
      cluster.on("task:finish", (e) => ctx.err(`kvq: ${e.kind} ${e.id} ${e.record?.func ?? ""}`));
    }
    let recycle = false;
    cluster.on("cluster:stuck", (e) => {
      ctx.err(
        `kvq: worker ${e.worker} (thread ${e.tid}) keeps burning CPU after terminate; recycling this process`,
      );
      if (isSentinelChild()) {
        recycle = true;
        void cluster.stop();
      }
    });
    // The dashboard binds first: a port in use is a setup error (exit 2) found before the
    // cluster claims anything.
    let stopDashboard: () => Promise<void>;
    try {
      stopDashboard = await startClusterDashboard(ctx, handle, {
        health: () => cluster.kvHealthy,
      });
    } catch (error) {
      handle.close();
      throw error;
    }
    try {
      await cluster.start();
    } catch (error) {
      await stopDashboard();
      handle.close();
      throw error;
    }
    started = cluster;
    if (stopRequested) void cluster.stop();
    const stat = cluster.stats();
    ctx.err(
      `kvq: cluster ${cluster.id} (${runtime.name} ${runtime.version}, pid ${process.pid}) on ${handle.location.location}: ${
        plural(stat.workers.length, "worker")
      }, queues ${queues.join(", ")}${handle.nativeQueue ? "" : ", no native queue"}`,
    );
    await cluster.stopped;
    const done = cluster.stats();
    ctx.err(
      `kvq: cluster ${cluster.id} stopped: ${
        plural(done.processed, "attempt")
      } run (${done.succeeded} succeeded, ${done.failed} failed${
        done.dropped ? `; ${plural(done.dropped, "outcome")} dropped, its lease lost` : ""
      }), ${plural(commitStats.commits, "KV commit")} (${
        plural(commitStats.mutations, "KV mutation")
      }), ${plural(messageStats.sent + messageStats.received, "worker message")}`,
    );
    await stopDashboard();
    handle.close();
    return recycle ? RECYCLE_EXIT_CODE : 0;
  },
};

/** A duration flag's value in ms: a usage error naming the flag when it is not one. */
function durationOption(text: string, flag: string): number {
  try {
    return parseDuration(text);
  } catch (error) {
    throw new UsageError(`${flag}: ${(error as Error).message}`);
  }
}

/**
 * Imports each `--import` module, in order, before the cluster starts: one that registers an
 * OpenTelemetry SDK then has its providers in place when the cluster looks for them.
 *
 * @throws {UsageError} naming the module that failed to load, and why.
 */
async function importSetup(files: readonly string[]): Promise<void> {
  for (const file of files) {
    const url = pathToFileURL(resolve(file)).href;
    try {
      await import(url);
    } catch (error) {
      throw new UsageError(
        `--import ${file}: the module failed to load: ${
          (error as Error).message
        } (check the path, and that the packages it imports are installed beside it)`,
      );
    }
  }
}
