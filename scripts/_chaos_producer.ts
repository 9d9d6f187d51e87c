/**
 * A producer of the chaos run (`scripts/chaos.ts`): enqueues `count` `chaosRecord` tasks in
 * chunks spread over `seconds`, and appends the id of every task it stored to `idsFile` once
 * its commit succeeded (one line per id). Prints `produced N` and exits 0, or exits 1 with the
 * error.
 *
 * Usage: `deno run -A scripts/_chaos_producer.ts '<json options>'` (or `bun …`), with the
 * options of {@linkcode ProducerOptions}.
 *
 * @module
 */
import { appendFileSync } from "node:fs";
import process from "node:process";
import { openQueue } from "../src/queue/queue.ts";

/** What a producer is told, as one JSON argument. */
export interface ProducerOptions {
  /** The KV file. */
  kv: string;
  /** Where the ids of stored tasks are appended. */
  idsFile: string;
  /** The task log the tasks append to. */
  log: string;
  /** Tasks to enqueue. */
  count: number;
  /** Seconds to spread them over. */
  seconds: number;
  /** What each task waits, in ms. */
  taskMs: number;
  /** Attempts each task may use. */
  maxAttempts: number;
  /** Open KV without the native queue. */
  noNativeQueue: boolean;
}

async function produce(options: ProducerOptions): Promise<number> {
  const queue = await openQueue({ kv: options.kv, noNativeQueue: options.noNativeQueue });
  try {
    const ticks = Math.max(1, Math.round(options.seconds * 10));
    const chunk = Math.ceil(options.count / ticks);
    const t0 = performance.now();
    let done = 0;
    for (let i = 0; done < options.count; i++) {
      const n = Math.min(chunk, options.count - done);
      const calls = Array.from({ length: n }, () => ({
        func: "chaosRecord",
        args: [options.log, options.taskMs],
        maxAttempts: options.maxAttempts,
      }));
      const stored = await queue.enqueueMany(calls);
      appendFileSync(options.idsFile, stored.map((t) => `${t.id}\n`).join(""));
      done += n;
      // Keep to the planned pace: chunk i+1 is due at (i+1)/ticks of the time.
      const due = t0 + (i + 1) * options.seconds * 1000 / ticks;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    return done;
  } finally {
    queue.close();
  }
}

if (import.meta.main) {
  try {
    const options = JSON.parse(process.argv[2] ?? "") as ProducerOptions;
    const n = await produce(options);
    console.log(`produced ${n}`);
    process.exit(0);
  } catch (error) {
    console.error(`producer failed: ${(error as Error).stack ?? error}`);
    process.exit(1);
  }
}
