/**
 * What a cluster reports about itself (the heartbeat types live with their codec in
 * `store/heartbeats.ts`), and the sampler that measures its CPU and memory once a beat, so that
 * `Cluster.stats()` only reads.
 *
 * @module
 */
import process from "node:process";
import { freemem, hostname } from "node:os";
import { runtime } from "../runtime/mod.ts";
import type { ClusterStat, ClusterState } from "../store/heartbeats.ts";
import type { Parts } from "./context.ts";
import type { ServedQueue } from "./options.ts";
import { CpuMeter, readThreadCpu } from "./thread_stats.ts";

export type { ClusterStat, ClusterState, HeartbeatInfo, WorkerStat } from "../store/heartbeats.ts";

/** The figures of one sample. */
export interface Sample {
  /** The cluster process's CPU use since the previous sample, in percent of one core. */
  cpu: number;
  /** Each worker thread's CPU use, by thread id, in percent of one core. */
  cpuByTid: ReadonlyMap<number, number>;
  /** The least free memory seen on the host, in bytes. */
  lowestFreeMemory: number;
}

/** Samples the process's and the worker threads' CPU use, and the host's free memory. */
export class Sampler {
  #cpu = new CpuMeter();
  #lastCpu = process.cpuUsage();
  #lastCpuAt = performance.now();
  #sample: Sample = { cpu: 0, cpuByTid: new Map(), lowestFreeMemory: freemem() };

  /** The latest sample. */
  get last(): Sample {
    return this.#sample;
  }

  /** Takes a sample now, for the threads `tids`. */
  sample(tids: readonly number[]): Sample {
    const now = performance.now();
    const cpu = process.cpuUsage(this.#lastCpu);
    const elapsed = Math.max(1, now - this.#lastCpuAt);
    this.#lastCpu = process.cpuUsage();
    this.#lastCpuAt = now;
    const per = this.#cpu.update(readThreadCpu([...tids]), now);
    this.#sample = {
      cpu: ((cpu.user + cpu.system) / 1000) / elapsed * 100,
      cpuByTid: new Map([...per].map(([tid, c]) => [tid, c.percent])),
      lowestFreeMemory: Math.min(this.#sample.lowestFreeMemory, freemem()),
    };
    return this.#sample;
  }
}

/** What {@linkcode snapshot} reads besides the parts. */
export interface SnapshotInput {
  id: string;
  state: ClusterState;
  startedAt: number;
  beatAt: number;
  queues: readonly ServedQueue[];
  heartbeatMs: number;
  parts: Parts;
  /** The latest sample of CPU and memory. */
  sample: Sample;
}

/** A cluster's snapshot: CPU and memory are those of the latest sample. */
export function snapshot(input: SnapshotInput): ClusterStat {
  const { pool, pump, writer } = input.parts;
  const sample = input.sample;
  return {
    id: input.id,
    host: hostname(),
    pid: process.pid,
    runtime: runtime.name,
    version: runtime.version,
    state: input.state,
    startedAt: input.startedAt,
    beatAt: input.beatAt,
    queues: input.queues.map((q) => q.name),
    weights: input.queues.map((q) => q.weight),
    paused: pump.paused,
    heartbeatMs: input.heartbeatMs,
    funcs: pool.funcs(),
    workers: pool.stats(sample.cpuByTid),
    reincarnations: pool.reincarnations,
    ...writer.counts,
    rss: process.memoryUsage().rss,
    cpu: Math.round(sample.cpu * 10) / 10,
    lowestFreeMemory: sample.lowestFreeMemory,
    stuck: [...pool.stuck],
  };
}
