/**
 * kvq inside a Deno Deploy app (or any single-isolate Deno server): enqueue from request
 * handlers, and run tasks inline in the isolate, with no Web Workers.
 *
 * Tasks are run
 *
 * - from `listenQueue`, where the platform has native queues: each doorbell drains for a bounded
 *   time;
 * - where it has none (the new Deno Deploy, KV Connect), on `kv.watch` of the queue's signal key
 *   and on a `Deno.cron` tick, each drain bounded by `budgetMs`.
 *
 * The tasks are the KV records, as everywhere in kvq: a drain cut short by its budget leaves the
 * rest queued for the next one.
 *
 * @example
 * ```ts
 * import * as tasks from "./tasks.ts";
 * import { createDeployRunner } from "kvq/deploy";
 *
 * const kvq = await createDeployRunner({ tasks });
 * Deno.serve(async (req) => {
 *   const { id } = await kvq.queue.enqueue("sendEmail", "ada@example.com");
 *   return Response.json({ id });
 * });
 * ```
 *
 * @module
 */
import { runInline } from "../cluster/inline.ts";
import { openQueue, type Queue } from "../queue/queue.ts";
import { runtime } from "../runtime/mod.ts";
import type { Kv } from "../runtime/mod.ts";
import { ensureSchema } from "../store/schema.ts";
import { KvHandle } from "../store/store.ts";
import { resolveKvLocation } from "../store/kv.ts";
import { nextDelayedAt } from "../store/promote.ts";
import type { TaskFunction } from "../task/loader.ts";
import type { RetryPolicy } from "../task/backoff.ts";
import { MAX_TIMER_MS } from "../runtime/delay.ts";

/** Options for {@linkcode createDeployRunner}. */
export interface DeployOptions {
  /** The task functions: a module namespace (`import * as tasks`) or a plain object. */
  tasks: Record<string, unknown>;
  /**
   * The app's KV. Pass the app's own `Deno.Kv` to enqueue transactionally with its data.
   * @default `Deno.openKv()` at KVQ_KV (or the platform default when unset)
   */
  kv?: Kv | string;
  /**
   * The queue.
   * @default "default"
   */
  queue?: string;
  /**
   * The longest one drain runs, in milliseconds.
   * @default 5000
   */
  budgetMs?: number;
  /**
   * Use the platform's native queue for doorbells: `"auto"` tries it and falls back to
   * `kv.watch` plus cron.
   * @default "auto"
   */
  nativeQueue?: boolean | "auto";
  /**
   * The cron schedule of the fallback drain tick, for timed work (delays, retries, schedules).
   * @default "* * * * *"
   */
  cron?: string;
  /**
   * Retries for tasks that set none.
   * @default 3 attempts, exponential backoff
   */
  retry?: RetryPolicy;
}

/** The running Deploy integration. */
export interface DeployRunner {
  /** The queue, for enqueueing from request handlers. */
  readonly queue: Queue;
  /** How tasks are woken here: `"listenQueue"` or `"watch+cron"`. */
  readonly mode: "listenQueue" | "watch+cron";
  /** Runs queued tasks now, for at most `budgetMs`. Resolves with how many ran. */
  drain(budgetMs?: number): Promise<number>;
  /** Stops listening and closes the queue (and the KV when the runner opened it). */
  close(): Promise<void>;
}

/** Collects the task functions of a module namespace or object. */
export function taskMap(tasks: Record<string, unknown>): Map<string, TaskFunction> {
  const map = new Map<string, TaskFunction>();
  for (const [name, value] of Object.entries(tasks)) {
    if (name !== "default" && typeof value === "function") map.set(name, value as TaskFunction);
  }
  if (map.size === 0) {
    throw new TypeError("Deploy runner needs at least one task function in options.tasks");
  }
  return map;
}

/**
 * Starts running tasks inline in this isolate and returns the queue for enqueueing.
 */
export async function createDeployRunner(options: DeployOptions): Promise<DeployRunner> {
  const tasks = taskMap(options.tasks);
  const budget = options.budgetMs ?? 5000;
  if (!Number.isFinite(budget) || budget <= 0) {
    throw new RangeError(`budgetMs must be a positive number of milliseconds: received ${budget}`);
  }
  const wantNative = options.nativeQueue ?? "auto";
  const location = typeof options.kv === "string" || options.kv === undefined
    ? resolveKvLocation(options.kv ?? null)
    : null;
  if (!location) await ensureSchema(options.kv as Kv, "(the app's own KV)");
  const handle = location
    ? await KvHandle.open({ kv: location.location, noNativeQueue: wantNative === false })
    : new KvHandle(options.kv as Kv, { location: ":app:", remote: false, path: null }, {
      noNativeQueue: wantNative === false,
    });
  const queue = await openQueue({ kv: handle, name: options.queue ?? "default" });
  let draining: Promise<number> | null = null;
  let again = false;

  const drain = (budgetMs = budget): Promise<number> => {
    if (draining) {
      again = true;
      return draining;
    }
    draining = (async () => {
      let ran = 0;
      const deadline = Date.now() + budgetMs;
      do {
        again = false;
        const left = deadline - Date.now();
        if (left <= 0) break;
        const report = await runInline(queue.store, {
          tasks,
          burst: true,
          batch: 1,
          signal: AbortSignal.timeout(left),
          ...(options.retry ? { retry: options.retry } : {}),
        });
        ran += report.processed;
      } while (again);
      await armTimer();
      return ran;
    })().finally(() => {
      draining = null;
    });
    return draining;
  };

  // While the isolate lives, a timer for the earliest delayed task drains it on time; the cron
  // tick covers an isolate that was suspended meanwhile.
  let timer: ReturnType<typeof setTimeout> | null = null;
  let closed = false;
  const armTimer = async () => {
    if (timer) clearTimeout(timer);
    timer = null;
    const next = await nextDelayedAt(queue.store);
    if (next === null || closed) return;
    timer = setTimeout(() => void drain(), Math.min(MAX_TIMER_MS, Math.max(0, next - Date.now())));
  };

  let mode: DeployRunner["mode"] = "watch+cron";
  let listening: Promise<void> | null = null;
  if (handle.nativeQueue && wantNative !== false) {
    try {
      listening = handle.kv.listenQueue(async (message: unknown) => {
        if (typeof message === "string" && message.startsWith("kvq:")) await drain();
      });
      mode = "listenQueue";
    } catch {
      listening = null;
    }
  }
  // Local commits (this isolate's enqueues) and remote ones (watch) both wake a drain.
  const unsubscribe = queue.store.changes.subscribe(() => void drain());
  runtime.cron(`kvq drain ${queue.name}`, options.cron ?? "* * * * *", async () => {
    await drain();
  });
  void drain();

  return {
    queue,
    mode,
    drain,
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      unsubscribe();
      if (draining) await draining;
      queue.close();
      handle.close();
      if (listening) await listening.catch(() => {});
    },
  };
}
