/**
 * Fair turns between the partitions of a queue (start-time fair queuing). A queued task with a
 * partition sorts in the ready index by its priority, then its **turn**:
 *
 * - the queue keeps a clock per priority (`keys.turnClock`): the turn of the last partitioned
 *   task claimed there, written by the claim;
 * - each partition keeps the turn of its last task (`keys.partitionTurn`);
 * - a task that becomes ready takes the turn after its partition's last, or, when its partition
 *   has fallen behind the clock (it had nothing waiting), a turn a little before the clock:
 *   `max(last + 1 / weight, clock - JOIN_CREDIT)`. The clock counts claims, and the clusters
 *   hold tasks claimed ahead of their free places: a partition that joins the line overtakes
 *   those of the others (see `cluster/held.ts`) instead of waiting behind them.
 *
 * So 10 tasks of tenant B enqueued behind 10,000 of tenant A take the turns next to A's next
 * ones, and the two alternate; a partition of weight 3 takes three turns to another's one.
 * Within a partition tasks stay in order. Turns are read and written without checks: two
 * producers racing in one partition may share a turn, which only orders their tasks by id.
 *
 * A task that becomes ready where nothing may be read first (an app's own atomic enqueue, a
 * hook or chain step created in an outcome commit) takes the last clock this process saw
 * (see {@linkcode fallbackTurn}); a task taken back from a dead cluster keeps its turn.
 *
 * @module
 */
import type { TaskRecord } from "../task/record.ts";
import { decodeLimits } from "./flow.ts";
import { KV_MAX_GET_MANY } from "./limits.ts";
import type { Store } from "./store.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * How many turns before the clock a partition with nothing waiting joins the line: about what
 * a cluster holds claimed ahead of its free places (its prefetch window), which started before
 * the partition joined whatever its turns.
 */
export const JOIN_CREDIT = 8;

/** The last clock each store's process read or wrote, per priority. */
const seenClocks = new WeakMap<Store, Map<number, number>>();

/** Notes a clock value seen for `priority` of `store` (see {@linkcode fallbackTurn}). */
export function sawClock(store: Store, priority: number, turn: number): void {
  let m = seenClocks.get(store);
  if (!m) seenClocks.set(store, m = new Map());
  if ((m.get(priority) ?? -Infinity) < turn) m.set(priority, turn);
}

/** A turn for a task that becomes ready with no read: the last clock seen here, or 0. */
export function fallbackTurn(store: Store, record: TaskRecord): TaskRecord {
  if (record.partition === null || record.state !== "queued" || record.turn !== null) {
    return record;
  }
  return record.withTurn(seenClocks.get(store)?.get(record.priority) ?? 0);
}

/** Decodes a stored turn (a number as text); null when absent or damaged. */
export function decodeTurn(value: unknown): number | null {
  if (!(value instanceof Uint8Array)) return null;
  const n = Number(decoder.decode(value));
  return Number.isFinite(n) ? n : null;
}

/** Encodes a turn. */
export function encodeTurn(turn: number): Uint8Array {
  return encoder.encode(String(turn));
}

/**
 * Hands out turns to tasks as they become ready, for one enqueue (which may span commits):
 * it reads each partition's last turn and the clocks once, then counts on in memory.
 */
export class TurnBook {
  readonly #store: Store;
  readonly #last = new Map<string, number>();
  readonly #clocks = new Map<number, number>();
  #weights: Readonly<Record<string, number>> | null = null;
  #readLimits = false;

  constructor(store: Store) {
    this.#store = store;
  }

  /**
   * Gives each queued task with a partition its turn (others are returned as they are), after
   * reading what this book has not read yet: one `getMany` per 10 keys, none when no task has
   * a partition.
   */
  async place(records: readonly TaskRecord[]): Promise<TaskRecord[]> {
    const placed = records.filter((r) => r.partition !== null && r.state === "queued");
    if (placed.length === 0) return [...records];
    const k = this.#store.keys;
    const wanted: { key: Deno.KvKey; read: (v: unknown) => void }[] = [];
    if (!this.#readLimits) {
      this.#readLimits = true;
      wanted.push({
        key: k.limits,
        read: (v) => this.#weights = decodeLimits(v)?.partitionWeights ?? null,
      });
    }
    const partitions = new Set(placed.map((r) => r.partition!));
    for (const p of partitions) {
      if (this.#last.has(p)) continue;
      this.#last.set(p, -Infinity);
      wanted.push({
        key: k.partitionTurn(p),
        read: (v) => this.#last.set(p, decodeTurn(v) ?? -Infinity),
      });
    }
    for (const priority of new Set(placed.map((r) => r.priority))) {
      if (this.#clocks.has(priority)) continue;
      this.#clocks.set(priority, 0);
      wanted.push({
        key: k.turnClock(priority),
        read: (v) => {
          const clock = decodeTurn(v) ?? 0;
          this.#clocks.set(priority, clock);
          sawClock(this.#store, priority, clock);
        },
      });
    }
    const reads: Promise<void>[] = [];
    for (let i = 0; i < wanted.length; i += KV_MAX_GET_MANY) {
      const part = wanted.slice(i, i + KV_MAX_GET_MANY);
      reads.push(
        this.#store.kv.getMany(part.map((w) => w.key), { consistency: "strong" }).then((es) =>
          es.forEach((e, j) => part[j]!.read(e.value))
        ),
      );
    }
    await Promise.all(reads);
    return records.map((r) => {
      if (r.partition === null || r.state !== "queued") return r;
      const weight = this.#weights?.[r.partition] ?? 1;
      const turn = Math.max(
        this.#last.get(r.partition)! + 1 / weight,
        (this.#clocks.get(r.priority) ?? 0) - JOIN_CREDIT,
      );
      this.#last.set(r.partition, turn);
      return r.withTurn(turn);
    });
  }

  /** Writes the last turn of each partition of `records` (one mutation per partition). */
  add(atomic: Deno.AtomicOperation, records: readonly TaskRecord[]): void {
    for (const p of partitionsOf(records)) {
      const last = this.#last.get(p);
      if (last !== undefined && Number.isFinite(last)) {
        atomic.set(this.#store.keys.partitionTurn(p), encodeTurn(last));
      }
    }
  }
}

/** The partitions of the queued tasks among `records`. */
function partitionsOf(records: readonly TaskRecord[]): Set<string> {
  const out = new Set<string>();
  for (const r of records) {
    if (r.partition !== null && r.turn !== null && r.state === "queued") out.add(r.partition);
  }
  return out;
}

/**
 * Adds the clock writes of a claim to its commit: per priority, the highest turn it claimed.
 * No check: a clock that goes back a little (two claims racing) only lets a new partition in
 * a few turns early.
 */
export function addClockWrites(
  atomic: Deno.AtomicOperation,
  store: Store,
  claimed: readonly TaskRecord[],
): void {
  const clocks = new Map<number, number>();
  for (const r of claimed) {
    if (r.partition === null || r.turn === null) continue;
    if ((clocks.get(r.priority) ?? -Infinity) < r.turn) clocks.set(r.priority, r.turn);
  }
  for (const [priority, turn] of clocks) {
    atomic.set(store.keys.turnClock(priority), encodeTurn(turn));
    sawClock(store, priority, turn);
  }
}
