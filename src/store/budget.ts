/**
 * The commit budget: what an operation adds to an atomic commit, counted the way KV counts it,
 * so ops that touch many tasks pack their commits within KV's limits (checks, mutations, bytes;
 * see `limits.ts`) whatever entries each task has (groups, unique keys, chains, chunks), instead
 * of a fixed number of tasks per commit.
 *
 * @module
 */
import { KV_MAX_COMMIT_BYTES, KV_MAX_MUTATIONS } from "./limits.ts";

const encoder = new TextEncoder();

/**
 * The encoded size of a KV key, in bytes: a type tag per part, strings and bytes with a
 * terminator (and their NULs escaped), numbers as 8 bytes. An estimate from above.
 */
export function keyBytes(key: Deno.KvKey): number {
  let n = 0;
  for (const part of key) {
    if (typeof part === "string") n += encoder.encode(part).length + 2;
    else if (part instanceof Uint8Array) n += part.length + 2;
    else if (typeof part === "bigint") n += 10 + Math.ceil(part.toString(16).length / 2);
    else n += 9;
  }
  return n;
}

/** What an operation adds to a commit. */
export interface CommitCost {
  /** `check()` calls. */
  checks: number;
  /** Mutations (`set`, `delete`, `sum`, …) plus enqueues. */
  mutations: number;
  /** Bytes as KV counts them: each mutation's value plus twice its key; each check its key. */
  bytes: number;
}

/** The part of `Deno.AtomicOperation` kvq's ops call. */
type AtomicLike = Pick<Deno.AtomicOperation, "check" | "set" | "delete" | "sum" | "commit">;

/**
 * Runs `add` against a stand-in for an atomic operation and returns what it would cost.
 *
 * @example
 * ```ts
 * const cost = measure((atomic) => addDeleteMutations(atomic, store, record));
 * ```
 */
export function measure(add: (atomic: Deno.AtomicOperation) => void): CommitCost {
  const cost: CommitCost = { checks: 0, mutations: 0, bytes: 0 };
  const stand: AtomicLike = {
    check(...checks: Deno.AtomicCheck[]) {
      for (const c of checks) {
        cost.checks++;
        cost.bytes += keyBytes(c.key);
      }
      return stand as Deno.AtomicOperation;
    },
    set(key: Deno.KvKey, value: unknown) {
      cost.mutations++;
      cost.bytes += 2 * keyBytes(key) + (value instanceof Uint8Array ? value.length : 64);
      return stand as Deno.AtomicOperation;
    },
    delete(key: Deno.KvKey) {
      cost.mutations++;
      cost.bytes += 2 * keyBytes(key);
      return stand as Deno.AtomicOperation;
    },
    sum(key: Deno.KvKey) {
      cost.mutations++;
      cost.bytes += 2 * keyBytes(key) + 8;
      return stand as Deno.AtomicOperation;
    },
    commit() {
      throw new Error("measure() only counts; it commits nothing");
    },
  };
  add(stand as Deno.AtomicOperation);
  return cost;
}

/** Options for {@linkcode CommitBudget}. */
export interface CommitBudgetOptions {
  /** Checks a commit may hold: the handle's `maxChecks` (100 locally, 10 on denokv and Bun). */
  maxChecks: number;
  /**
   * Room kept for what the caller adds once per commit (counter sums, a doorbell).
   * @default { checks: 0, mutations: 16, bytes: 4096 }
   */
  reserve?: Partial<CommitCost>;
}

/**
 * Packs operations into commits: `fits(cost)` says whether one more fits in the current commit,
 * `take(cost)` counts it in, `reset()` starts the next commit.
 */
export class CommitBudget {
  readonly #limit: CommitCost;
  #used: CommitCost = { checks: 0, mutations: 0, bytes: 0 };

  constructor(options: CommitBudgetOptions) {
    const reserve = { checks: 0, mutations: 16, bytes: 4096, ...options.reserve };
    this.#limit = {
      checks: Math.max(1, options.maxChecks - reserve.checks),
      mutations: KV_MAX_MUTATIONS - reserve.mutations,
      // KV's 800 KiB, with a tenth kept for what the estimate of key sizes may miss.
      bytes: Math.floor(KV_MAX_COMMIT_BYTES * 0.9) - reserve.bytes,
    };
  }

  /** Whether nothing was taken since the last reset. */
  get empty(): boolean {
    return this.#used.mutations === 0 && this.#used.checks === 0;
  }

  /** Whether `cost` fits beside what was taken; anything fits an empty commit. */
  fits(cost: CommitCost): boolean {
    if (this.empty) return true;
    return this.#used.checks + cost.checks <= this.#limit.checks &&
      this.#used.mutations + cost.mutations <= this.#limit.mutations &&
      this.#used.bytes + cost.bytes <= this.#limit.bytes;
  }

  /** Counts `cost` in. */
  take(cost: CommitCost): void {
    this.#used = {
      checks: this.#used.checks + cost.checks,
      mutations: this.#used.mutations + cost.mutations,
      bytes: this.#used.bytes + cost.bytes,
    };
  }

  /** Starts the next commit. */
  reset(): void {
    this.#used = { checks: 0, mutations: 0, bytes: 0 };
  }
}
