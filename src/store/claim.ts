/**
 * Claim: take the next ready tasks, lowest priority number first and FIFO within a priority
 * (tasks with a partition by their turn, see `turns.ts`; under partition limits or holds a claim
 * looks further down the line for tasks their partitions allow, see `gate.ts`).
 * One commit per batch moves each task `queued → running`: it checks the record's versionstamp,
 * deletes the ready entry and writes the running record (a small record is read from its
 * ready entry, which holds a copy written with it: one list and one commit, no `getMany`), which is the lease (see `leases.ts`),
 * so two clusters can never both run one attempt. The commit also writes one claim entry that
 * names the batch's tasks, for lease recovery.
 *
 * @module
 */
import type { TaskRecord } from "../task/record.ts";
import { readChunks } from "./chunks.ts";
import { addStateCounts, CountDeltas } from "./counters.ts";
import { CommitBudget } from "./budget.ts";
import type { Store } from "./store.ts";
import { commitAtomic } from "./commit.ts";
import { addDamaged } from "./damaged.ts";
import { ClaimRef, encodeClaim } from "./leases.ts";
import type { FlowGate, PartitionPicks } from "./gate.ts";
import { addClockWrites } from "./turns.ts";
import { addStarted } from "./stats.ts";
import { LOOKAHEAD, pickByPartition, readPicked, type RecordEntry } from "./claim_read.ts";

/** A task this process now holds, with what completing it needs. */
export interface Claimed {
  /** The record as claimed (state `running`). */
  readonly record: TaskRecord;
  /** The versionstamp of the claim commit: the running record's, which is the lease. */
  readonly versionstamp: string;
  /** The arguments as JSON text, ready for the worker. */
  readonly argsJson: string;
  /**
   * Claimed ahead of a free place (prefetched): its claim entry says so, and before it starts
   * the cluster lists it under its `started` key (see `keys.started`), unless `armed`.
   */
  readonly held: boolean;
  /** Held, and named started by the claim entry itself: it may start at once. */
  readonly armed: boolean;
  /** A suspect claimed alone: nothing else may run in its cluster meanwhile (see `alone`). */
  readonly alone?: boolean;
  /** The claim entry that names it; the commit that ends its last task deletes it. */
  readonly claim: ClaimRef;
  /**
   * The versionstamp of its cluster's epoch key (`keys.epoch`) read before the claim (null:
   * absent): while the key still has it, no recovery took the task, and an outcome commit
   * checks that one key instead of the record. Absent: unknown, check the record.
   */
  readonly epoch?: string | null;
}

/** The most tasks a claim that checks the claim sequence takes in one commit. */
const MAX_SEQ_CLAIM = 100;

/** Bytes a claim adds per task besides the record: its keys and its id in the claim entry. */
const CLAIM_KEY_BYTES = 1024;
const decoder = new TextDecoder();

/** Options for {@linkcode claimTasks}. */
export interface ClaimOptions {
  /** The claiming cluster's id. */
  cluster: string;
  /** One worker name per task to claim; its length is the most claimed. */
  workers: readonly string[];
  /**
   * Per entry of `workers`: claim that one as held (prefetched, not started yet). Tasks fill
   * the entries in order, so put the places that start at once first.
   */
  held?: readonly boolean[];
  /**
   * How many of the held tasks (the first ones) the claim entry names as started, so they may
   * start without waiting for a write of the `started` list: if the cluster dies, their
   * attempt counts. The ones the workers run next.
   * @default 0
   */
  armed?: number;
  /** Called for a record that can't be decoded; it is skipped. */
  onCorrupt?: (error: Error) => void;
  /** Called when a task past its start-by deadline was met; it is left for `expireDue`. */
  onExpired?: () => void;
  /**
   * Nothing runs or is held in the claiming cluster: a task that was running when a cluster
   * died (a suspect: `TaskRecord.crashes` > 0) may be claimed, alone, to run with nothing
   * beside it (quarantine). Otherwise a claim stops before a suspect and calls `onSuspect`.
   * @default false
   */
  alone?: boolean;
  /** Called when a claim stopped before a suspect (see `alone`). */
  onSuspect?: () => void;
  /**
   * The queue's limits (see `flow.ts`), read again for each try: the claim takes at most what
   * they allow and checks them in its commit.
   */
  gate?: () => Promise<FlowGate>;
  /** Called when the limits allow nothing now, with when the rate allows more (or null). */
  onGated?: (nextAt: number | null) => void;
  /**
   * The versionstamp of the queue's pause key (null: absent) as read when it was found open,
   * which the commit checks, so no claim commits once the queue is paused: a claim that read
   * the key before a pause and listed after it would start a task of the paused queue.
   * @default the pause key is not checked
   */
  open?: string | null;
}

/**
 * Claims up to `options.workers.length` ready tasks. Returns fewer (or none) when the queue has
 * fewer, or when another cluster won some of them.
 */
export async function claimTasks(store: Store, options: ClaimOptions): Promise<Claimed[]> {
  const wanted = options.workers.length;
  if (wanted <= 0) return [];
  const pause = options.open;
  for (let round = 0; round < 3; round++) {
    const gate = options.gate ? await options.gate() : undefined;
    if (gate !== undefined && gate.allowed <= 0) {
      options.onGated?.(gate.nextAt);
      return [];
    }
    // More places than a commit may hold checks (`@deno/kv`: 10): one check of the claim
    // sequence, read before the list (with the limits' counters, if any), stands for the check
    // of each record. After a lost race, each record is checked.
    // The pause key, when checked, takes one of the checks.
    const checks = store.handle.maxChecks - (pause === undefined ? 0 : 1);
    const seq = round === 0 && wanted > checks
      ? gate?.seq ??
        (await store.kv.get(store.keys.claimSeq, { consistency: "strong" })).versionstamp
      : undefined;
    const max = Math.min(
      wanted,
      // Each task checks its record, or the sequence stands for them; the limits check the
      // sequence too (see `gate.ts`).
      seq === undefined ? checks - (gate?.cost.checks ?? 0) : MAX_SEQ_CLAIM,
      gate?.allowed ?? Infinity,
    );
    const entries: Deno.KvEntry<unknown>[] = [];
    const epochRead = store.kv.get(store.keys.epoch(options.cluster), { consistency: "strong" });
    // Partition limits look further down the line: the first tasks may all be of partitions
    // that are full.
    const lookahead = gate?.partitions ? Math.min(LOOKAHEAD, Math.max(max * 4, 32)) : null;
    for await (
      const e of store.kv.list({ prefix: store.keys.readyPrefix }, {
        limit: lookahead ?? (round === 0 ? max : max * 4),
        consistency: "strong",
      })
    ) entries.push(e);
    const epoch = (await epochRead).versionstamp;
    if (entries.length === 0) return [];
    let picked: Deno.KvEntry<unknown>[];
    let records: RecordEntry[];
    let picks: PartitionPicks | undefined;
    if (gate?.partitions) {
      const all = await readPicked(store, entries, seq === undefined && round === 0);
      const chosen = await pickByPartition(gate, all, max);
      picks = chosen.picks;
      picked = chosen.at.map((i) => entries[i]!);
      records = chosen.at.map((i) => all[i]!);
      if (picked.length === 0) {
        options.onGated?.(picks.nextAt);
        return [];
      }
    } else {
      // After a lost race, spread out: start at a random place among the candidates.
      const start = round === 0
        ? 0
        : Math.floor(Math.random() * Math.max(1, entries.length - max + 1));
      picked = entries.slice(start, start + max);
      // A claim that checks each record may trust the copies in the ready entries (see
      // `readPicked`); one that checks only the sequence reads the records.
      records = await readPicked(store, picked, seq === undefined && round === 0);
    }
    const claimed = await commitClaims(
      store,
      options,
      picked,
      records,
      epoch,
      pause,
      seq,
      gate,
      picks,
    );
    // Paused since it was read: claim nothing.
    if (claimed === null && pause !== undefined && await pausedSince(store, pause)) return [];
    // The limits changed under it (another claim, an outcome): read them again and retry.
    if (claimed === null && gate !== undefined) continue;
    if (claimed === null) {
      // The batch collided: fall back to one commit per task so some win, reading the records
      // themselves (a copy whose record changed would fail its commit again).
      const fresh = await readPicked(store, picked, false);
      const singles = await Promise.all(
        picked.map((e, i) =>
          commitClaims(
            store,
            { ...options, workers: [options.workers[i]!] },
            [e],
            [fresh[i]!],
            epoch,
            pause,
          )
        ),
      );
      const won = singles.flatMap((s) => s ?? []);
      if (won.length > 0) return await withArgs(store, won);
      continue;
    }
    if (claimed.length > 0 || round === 2) return await withArgs(store, claimed);
  }
  return [];
}

interface Pending {
  record: TaskRecord;
  readyKey: Deno.KvKey;
  held: boolean;
  armed: boolean;
  alone: boolean;
}

/** Whether the queue's pause key changed since it had versionstamp `stamp` (null: absent). */
async function pausedSince(store: Store, stamp: string | null): Promise<boolean> {
  const now = await store.kv.get(store.keys.paused, { consistency: "strong" });
  return now.versionstamp !== stamp;
}

/**
 * Commits one batch; null when a check failed (another claimer won, or the queue's pause key
 * changed from `pause`, when that is given).
 */
async function commitClaims(
  store: Store,
  options: ClaimOptions,
  entries: Deno.KvEntry<unknown>[],
  records: RecordEntry[],
  epoch: string | null,
  pause: string | null | undefined,
  seq?: string | null,
  gate?: FlowGate,
  picks?: PartitionPicks,
): Promise<Claimed[] | null> {
  const now = store.now();
  const atomic = store.kv.atomic();
  const counts = new CountDeltas();
  const pending: Pending[] = [];
  let worker = 0;
  let mutations = 0;
  let armedLeft = options.armed ?? 0;
  const bySeq = seq !== undefined;
  const budget = new CommitBudget({
    maxChecks: store.handle.maxChecks,
    reserve: {
      checks: (bySeq ? 1 : 0) + (pause === undefined ? 0 : 1) + (gate?.cost.checks ?? 0),
      // Beside the defaults (counters, the claim entry): what the limits write.
      ...(gate ? { mutations: 16 + gate.cost.mutations, bytes: 4096 + gate.cost.bytes } : {}),
    },
  });
  // Each partition taken from adds its rate log (reserved per task: at most one partition
  // each), and each task of a partition its gauges and clock.
  const per = gate?.partitions?.costPer ?? { mutations: 0, bytes: 0 };
  if (bySeq) atomic.check({ key: store.keys.claimSeq, versionstamp: seq });
  if (pause !== undefined) atomic.check({ key: store.keys.paused, versionstamp: pause });
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    const found = records[i]!;
    if (found.record === null || found.record.state !== "queued") {
      // A stale index entry: its task is gone, corrupt, or no longer queued. Drop the entry
      // (checked: a retry may have written it anew), if the commit may hold one more check.
      const stale = { checks: 1, mutations: found.error ? 3 : 1, bytes: 2 * CLAIM_KEY_BYTES };
      if (!budget.fits(stale)) continue;
      atomic.check({ key: entry.key, versionstamp: entry.versionstamp });
      atomic.delete(entry.key);
      mutations++;
      budget.take(stale);
      if (found.error) {
        // Set aside once, reported once: no claim reads it again.
        options.onCorrupt?.(found.error);
        addDamaged(
          atomic,
          store,
          entry.key[entry.key.length - 1] as string,
          found.error,
          found.value,
        );
        mutations++;
      }
      continue;
    }
    if (found.record.expiredAt(now)) {
      // Past its start-by deadline: it must not start. The expiry pass ends it (see `expire.ts`).
      options.onExpired?.();
      continue;
    }
    let alone = false;
    if (found.record.crashes > 0) {
      // A suspect runs alone, or waits for its cluster to empty; what is behind it waits too.
      if (options.alone !== true || pending.length > 0) {
        options.onSuspect?.();
        break;
      }
      alone = true;
    }
    const held = !alone && options.held?.[worker] === true;
    const running = found.record.claim(now, options.cluster, options.workers[worker]!);
    // A record is rewritten whole: leave the rest for the next claim rather than pass the
    // commit's byte limit (records with large inline args approach 64 KiB each).
    const partitioned = running.partition !== null;
    const cost = {
      checks: bySeq ? 0 : 1,
      mutations: 2 + (partitioned ? 3 + per.mutations : 0),
      bytes: running.encode().length + CLAIM_KEY_BYTES + (partitioned ? 512 + per.bytes : 0),
    };
    if (!budget.fits(cost)) break;
    budget.take(cost);
    worker++;
    if (!bySeq) {
      atomic.check({ key: store.keys.task(running.id), versionstamp: found.versionstamp! });
    }
    atomic.set(store.keys.task(running.id), running.encode());
    atomic.delete(entry.key);
    counts.move("queued", "running", 1, running.partition);
    const armed = held && armedLeft > 0;
    if (armed) armedLeft--;
    pending.push({ record: running, readyKey: entry.key, held, armed, alone });
    mutations++;
    if (alone) break;
  }
  if (mutations === 0) return [];
  const claim = ClaimRef.create(store, options.cluster, pending.length);
  if (pending.length > 0) {
    gate?.add(atomic, pending.length, now, bySeq && seq === gate.seq);
    picks?.add(atomic, pending.map((p) => p.record.partition), now);
    // The minute's count of started attempts (see `stats.ts`): one sum a commit.
    addStarted(atomic, store, now, pending.length);
    addClockWrites(atomic, store, pending.map((p) => p.record));
    // Claims that check only the sequence see this one.
    atomic.sum(store.keys.claimSeq, 1n);
    const started = pending.filter((p) => p.armed).map((p) => p.record.id);
    atomic.set(
      claim.key,
      encodeClaim({
        ids: pending.map((p) => p.record.id),
        held: pending.filter((p) => p.held).map((p) => p.record.id),
        ...(started.length > 0 ? { started } : {}),
        ...(pending[0]!.alone ? { alone: true as const } : {}),
      }),
    );
  }
  addStateCounts(atomic, store, counts);
  const result = await commitAtomic(atomic);
  if (!result.ok) return null;
  return pending.map((p) => ({
    record: p.record,
    versionstamp: result.versionstamp,
    argsJson: "",
    held: p.held,
    armed: p.armed,
    ...(p.alone ? { alone: true } : {}),
    claim,
    epoch,
  }));
}

async function withArgs(store: Store, claimed: Claimed[]): Promise<Claimed[]> {
  return await Promise.all(claimed.map(async (c) => {
    if (c.record.args !== null) return { ...c, argsJson: JSON.stringify(c.record.args) };
    const bytes = await readChunks(store, c.record.id, "args", c.record.argsChunks);
    return { ...c, argsJson: decoder.decode(bytes) };
  }));
}
