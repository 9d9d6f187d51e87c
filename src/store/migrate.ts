/**
 * `kvq migrate`: upgrades a KV file to this release's layout (see `schema.ts` for the layouts),
 * in commits of at most {@linkcode MIGRATE_BATCH} entries, each of which checks the entries it
 * rewrites. The new version is written last: a migration that is killed leaves a file of the old
 * version, and a new run carries on from where it stopped.
 *
 * @module
 */
import type { Kv } from "../runtime/mod.ts";
import { TaskRecord } from "../task/record.ts";
import { commitAtomic } from "./commit.ts";
import { decodeHeartbeat } from "./heartbeats.ts";
import { ROOT } from "./keys.ts";
import { encodeClaim } from "./leases.ts";
import { listQueueNames } from "./queues.ts";
import { encodeVersion, SCHEMA_KEY, SCHEMA_VERSION, SchemaError, schemaVersion } from "./schema.ts";

/** Entries one migration commit rewrites at most. */
export const MIGRATE_BATCH = 100;

const decoder = new TextDecoder();

/** What {@linkcode migrate} did. */
export interface MigrateReport {
  /** The layout before. */
  from: number;
  /** The layout after. */
  to: number;
  /** Per-task leases turned into claim entries. */
  leases: number;
  /** Per func and group `done_by` entries deleted (retention reads the `done` values now). */
  doneBy: number;
  /** Func look-ups added, one per task (layout 3). */
  funcs: number;
}

/** Options for {@linkcode migrate}. */
export interface MigrateOptions {
  /** Migrate even while a cluster's heartbeat is fresh. @default false */
  force?: boolean;
  /** "Now", for the heartbeat check. @default Date.now() */
  now?: number;
}

/**
 * Upgrades the file to this release's layout.
 *
 * @throws {SchemaError} for a newer layout, or while a cluster still beats (unless `force`).
 */
export async function migrate(kv: Kv, options: MigrateOptions = {}): Promise<MigrateReport> {
  const from = await schemaVersion(kv);
  const report: MigrateReport = { from, to: SCHEMA_VERSION, leases: 0, doneBy: 0, funcs: 0 };
  if (from === SCHEMA_VERSION) return report;
  if (from > SCHEMA_VERSION) {
    throw new SchemaError(
      `This file has kvq layout ${from}, newer than this kvq's (${SCHEMA_VERSION}); upgrade kvq.`,
      from,
    );
  }
  if (from >= 1 && !options.force) await refuseLiveClusters(kv, options.now ?? Date.now());
  if (from === 1) {
    report.leases = await leasesToClaims(kv);
    report.doneBy = await dropDoneBy(kv);
  }
  if (from >= 1 && from <= 2) report.funcs = await addFuncIndex(kv, options.now ?? Date.now());
  // Layouts 3 to 4 and 4 to 5 convert nothing: a layout-3 file's per-task tail entries and a
  // layout-4 file's per-task `done` entries are read as they are.
  await kv.set(SCHEMA_KEY, encodeVersion(SCHEMA_VERSION));
  return report;
}

/** Throws while any cluster's heartbeat is younger than two of its periods. */
async function refuseLiveClusters(kv: Kv, now: number): Promise<void> {
  for (const queue of (await listQueueNames(kv, Infinity)).names) {
    for await (const e of kv.list({ prefix: [ROOT, queue, "cluster"] })) {
      refuseLive(e, now);
    }
  }
}

function refuseLive(e: Deno.KvEntry<unknown>, now: number): void {
  const beat = decodeHeartbeat(e.value);
  if (beat === null || beat.state === "stopped") return;
  const age = now - beat.beatAt;
  if (age < 2 * (beat.heartbeatMs ?? 10_000)) {
    throw new SchemaError(
      `Cluster ${String(e.key[3])} on queue ${
        String(e.key[1])
      } is running (its last heartbeat is ${age} ms old); stop every cluster first, or pass --force if it is gone.`,
      1,
    );
  }
}

/**
 * Layout 1 → 2: each `lease, id` key becomes a claim entry of its cluster naming that one task.
 * A lease that can't be read takes its cluster from the task's record.
 */
async function leasesToClaims(kv: Kv): Promise<number> {
  let moved = 0;
  for (const queue of (await listQueueNames(kv, Infinity)).names) {
    moved += await queueLeasesToClaims(kv, queue);
  }
  return moved;
}

async function queueLeasesToClaims(kv: Kv, queue: string): Promise<number> {
  let moved = 0;
  for (;;) {
    const batch: Deno.KvEntry<unknown>[] = [];
    for await (const e of kv.list({ prefix: [ROOT, queue, "lease"] })) {
      if (e.key.length === 4) batch.push(e);
      if (batch.length === MIGRATE_BATCH) break;
    }
    if (batch.length === 0) return moved;
    const atomic = kv.atomic();
    for (const e of batch) {
      const [root, , , id] = e.key as [string, string, string, string];
      atomic.check({ key: e.key, versionstamp: e.versionstamp }).delete(e.key);
      let lease = oldLease(e.value);
      if (lease === null) {
        const record = await kv.get([root, queue, "task", id]);
        try {
          const r = TaskRecord.decode(record.key, record.value);
          if (r.state === "running" && r.cluster !== null) lease = { cluster: r.cluster };
        } catch {
          // no running record: nothing holds a lease
        }
      }
      if (lease === null) continue;
      atomic.set(
        [root, queue, "lease", lease.cluster, `0-${id}`],
        encodeClaim({ ids: [id], held: lease.held ? [id] : [] }),
      );
    }
    if ((await commitAtomic(atomic)).ok) moved += batch.length;
  }
}

function oldLease(value: unknown): { cluster: string; held?: boolean } | null {
  if (!(value instanceof Uint8Array)) return null;
  try {
    const l = JSON.parse(decoder.decode(value));
    return typeof l?.cluster === "string" ? { cluster: l.cluster, held: l.held === true } : null;
  } catch {
    return null;
  }
}

/**
 * Layout 1 → 2: the `done_by` entries go. Retention per func or group reads the func and group
 * from the `done` entries instead (an empty one, as layout 1 wrote, from the record).
 */
async function dropDoneBy(kv: Kv): Promise<number> {
  let dropped = 0;
  for (const queue of (await listQueueNames(kv, Infinity)).names) {
    for (;;) {
      const atomic = kv.atomic();
      let n = 0;
      for await (
        const e of kv.list({ prefix: [ROOT, queue, "done_by"] }, { limit: MIGRATE_BATCH * 5 })
      ) {
        atomic.delete(e.key);
        n++;
      }
      if (n === 0) break;
      await commitAtomic(atomic);
      dropped += n;
    }
  }
  return dropped;
}

/**
 * Layout 2 → 3: a `func, func, id` look-up for every task record that can be read (a damaged
 * one has no func to file it under; `kvq doctor` deals with it). A cached finished task's
 * look-up expires with it. Setting an empty entry twice is harmless, so a run that stopped
 * part-way simply goes through the records again.
 */
async function addFuncIndex(kv: Kv, now: number): Promise<number> {
  let added = 0;
  for (const queue of (await listQueueNames(kv, Infinity)).names) {
    let atomic = kv.atomic();
    let n = 0;
    for await (const e of kv.list({ prefix: [ROOT, queue, "task"] }, { batchSize: 500 })) {
      let r: TaskRecord;
      try {
        r = TaskRecord.decode(e.key, e.value);
      } catch {
        continue;
      }
      const key = [ROOT, queue, "func", r.func, r.id];
      if (r.cached !== null && r.finished && r.stoppedAt !== null) {
        const left = r.stoppedAt + r.cached - now;
        if (left <= 0) continue;
        atomic.set(key, new Uint8Array(), { expireIn: left });
      } else atomic.set(key, new Uint8Array());
      if (++n === MIGRATE_BATCH * 5) {
        await commitAtomic(atomic);
        added += n;
        atomic = kv.atomic();
        n = 0;
      }
    }
    if (n > 0) {
      await commitAtomic(atomic);
      added += n;
    }
  }
  return added;
}
