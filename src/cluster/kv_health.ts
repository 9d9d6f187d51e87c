/**
 * Whether the cluster's KV writes succeed, for `Cluster.kvHealthy` and readiness probes: false
 * from a failed write until the next good one, or for a while after it if nothing was written.
 *
 * @module
 */

/**
 * How long a failed KV write keeps `Cluster.kvHealthy` false when nothing was written since, in
 * ms (at least two heartbeats, so a KV that stays down keeps it false between beats).
 */
export const KV_FAILURE_MEMORY_MS = 5_000;

/**
 * The error contexts of the cluster that are failed KV writes. (A claim's write failure
 * surfaces as "dispatch"; the "claim" context itself reports a damaged record, not a write.)
 */
const KV_WRITE_CONTEXTS = new Set([
  "storing results",
  "heartbeat",
  "dispatch",
  "release",
  "progress",
]);

/** Remembers the latest failed KV write. */
export class KvHealth {
  /** When (performance.now) a KV write last failed; null after a good heartbeat or write. */
  #failedAt: number | null = null;

  /** An error was reported in `context`: a failed write, if that context writes. */
  reported(context: string): void {
    if (KV_WRITE_CONTEXTS.has(context)) this.#failedAt = performance.now();
  }

  /** A KV write succeeded. */
  ok(): void {
    this.#failedAt = null;
  }

  /** Whether writes succeed, for a cluster that beats every `heartbeatMs`. */
  healthy(heartbeatMs: number): boolean {
    if (this.#failedAt === null) return true;
    const memory = Math.max(KV_FAILURE_MEMORY_MS, 2 * heartbeatMs);
    return performance.now() - this.#failedAt > memory;
  }
}
