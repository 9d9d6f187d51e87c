/**
 * Per-thread CPU time of this process, from Linux's `/proc/self/task`. The supervisor uses it to
 * spot a worker thread that keeps burning CPU after `terminate()` (Deno does not stop CPU-bound
 * workers), and `kvq monitor` to show CPU per worker. Workers name their threads (`kvq-w3.g2`),
 * so `comm` tells which worker a thread was.
 *
 * Elsewhere (no `/proc`) every reading is an empty map.
 *
 * @module
 */
import { readdirSync, readFileSync } from "node:fs";

/**
 * Clock ticks per second of `utime`/`stime` in `/proc/<pid>/task/<tid>/stat`. Assumed to be 100:
 * `sysconf(_SC_CLK_TCK)` is 100 on every mainstream Linux build, and neither runtime exposes
 * `sysconf`. So CPU times have a 10 ms resolution.
 */
export const CLOCK_TICKS_PER_SECOND = 100;

/** One thread of this process. */
export interface ThreadSample {
  /** The thread's name (at most 15 characters; workers set theirs to the worker name). */
  comm: string;
  /** User plus system CPU time the thread has used, in milliseconds. */
  cpuMs: number;
}

/** A thread's CPU use over the interval between two samples. */
export interface ThreadCpu {
  /** The thread's name at the later sample. */
  comm: string;
  /** CPU used over the interval, in milliseconds. */
  cpuMs: number;
  /** CPU use as a percentage of one core (100 = one core fully busy). */
  percent: number;
}

const TASK_DIR = "/proc/self/task";

/**
 * Reads every thread of this process: name and CPU time so far. Threads that end while being
 * read are skipped. Returns an empty map where `/proc` does not exist.
 *
 * @example
 * ```ts
 * import { readThreads } from "./thread_stats.ts";
 * for (const [tid, { comm, cpuMs }] of readThreads()) console.log(tid, comm, cpuMs);
 * ```
 */
export function readThreads(): Map<number, ThreadSample> {
  const threads = new Map<number, ThreadSample>();
  let entries: string[];
  try {
    entries = readdirSync(TASK_DIR);
  } catch {
    return threads;
  }
  for (const entry of entries) {
    const tid = Number(entry);
    if (!Number.isInteger(tid)) continue;
    try {
      const stat = readFileSync(`${TASK_DIR}/${entry}/stat`, "utf8");
      const cpuMs = parseStatCpuMs(stat);
      if (cpuMs === undefined) continue;
      const comm = readFileSync(`${TASK_DIR}/${entry}/comm`, "utf8").replace(/\n$/, "");
      threads.set(tid, { comm, cpuMs });
    } catch {
      // The thread ended between readdir and read.
    }
  }
  return threads;
}

/**
 * Reads the CPU time of the given threads only (no names): what the heartbeat needs, at one
 * file read per worker instead of two per thread of the process. Threads that ended are left
 * out.
 */
export function readThreadCpu(tids: Iterable<number>): Map<number, ThreadSample> {
  const threads = new Map<number, ThreadSample>();
  for (const tid of tids) {
    try {
      const cpuMs = parseStatCpuMs(readFileSync(`${TASK_DIR}/${tid}/stat`, "utf8"));
      if (cpuMs !== undefined) threads.set(tid, { comm: "", cpuMs });
    } catch {
      // the thread ended, or there is no /proc
    }
  }
  return threads;
}

/**
 * Parses `utime + stime` from a `/proc/…/stat` line, in milliseconds. The fields are read after
 * the last `)`, since the command name in parentheses may itself hold spaces and parentheses.
 */
export function parseStatCpuMs(stat: string): number | undefined {
  const close = stat.lastIndexOf(")");
  if (close < 0) return undefined;
  // After ")": field 3 (state) is index 0, so utime (field 14) is 11 and stime (15) is 12.
  const fields = stat.slice(close + 1).trim().split(/\s+/);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return ((utime + stime) * 1000) / CLOCK_TICKS_PER_SECOND;
}

/**
 * Turns successive {@linkcode readThreads} samples into CPU use per thread over each interval.
 *
 * @example
 * ```ts
 * import { CpuMeter, readThreads } from "./thread_stats.ts";
 * const meter = new CpuMeter();
 * meter.update(readThreads(), performance.now());
 * // … later …
 * const usage = meter.update(readThreads(), performance.now());
 * ```
 */
export class CpuMeter {
  #previous: Map<number, ThreadSample> | undefined;
  #previousAt = 0;

  /**
   * Records a sample taken at `atMs` (any monotonic clock in milliseconds) and returns each
   * thread's use since the previous one. The first call, and threads that appeared since, give
   * nothing; a thread seen for the first time is measured from the next sample on.
   *
   * @throws {RangeError} when `atMs` is not after the previous sample's time.
   */
  update(sample: ReadonlyMap<number, ThreadSample>, atMs: number): Map<number, ThreadCpu> {
    const usage = new Map<number, ThreadCpu>();
    const previous = this.#previous;
    if (previous !== undefined) {
      const wallMs = atMs - this.#previousAt;
      if (!(wallMs > 0)) {
        throw new RangeError(`Sample time must be after the previous one: received ${atMs}`);
      }
      for (const [tid, now] of sample) {
        const before = previous.get(tid);
        // A tid reused by a new thread shows as CPU going down: measure it from now on.
        if (before === undefined || now.cpuMs < before.cpuMs) continue;
        const cpuMs = now.cpuMs - before.cpuMs;
        usage.set(tid, { comm: now.comm, cpuMs, percent: (cpuMs / wallMs) * 100 });
      }
    }
    this.#previous = new Map(sample);
    this.#previousAt = atMs;
    return usage;
  }
}
