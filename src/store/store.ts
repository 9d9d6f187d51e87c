/**
 * The store: an opened KV plus what every storage operation needs (key shapes, clock, limits).
 * Each storage operation lives in its own file and takes a `Store`.
 *
 * @module
 */
import { resolveSecrets, type Secrets } from "../task/signature.ts";
import { type Kv, runtime } from "../runtime/mod.ts";
import { ChangeFeed } from "./changes.ts";
import { type KvLocation, openKvAt, resolveKvLocation } from "./kv.ts";
import { type QueueKeys, queueKeys, validateQueueName } from "./keys.ts";
import { ensureSchema } from "./schema.ts";
import {
  DEFAULT_MAX_PAYLOAD_BYTES,
  DENOKV_MAX_CHECKS,
  KV_MAX_CHECKS,
  NPM_KV_MAX_CHECKS,
} from "./limits.ts";

/** A source of "now" in epoch milliseconds; replaced in tests. */
export type Clock = () => number;

/** The real clock. */
export const systemClock: Clock = () => Date.now();

/** Options for {@linkcode KvHandle.open}. */
export interface KvHandleOptions {
  /**
   * A path, `:memory:`, or a KV Connect URL.
   * @default the KVQ_KV environment variable, else `.kvq/kv.sqlite3`
   */
  kv?: string | null;
  /**
   * Use no native KV queue (`enqueue`/`listenQueue`), as on remote KV. Forced on for URLs.
   * @default false
   */
  noNativeQueue?: boolean;
  /**
   * Check the file's layout version (see `schema.ts`), refusing an older or newer layout; off
   * only for `kvq migrate`.
   * @default true
   */
  checkSchema?: boolean;
}

/**
 * One opened KV store, shared by every queue that lives in it.
 */
export class KvHandle {
  /** The KV API. */
  readonly kv: Kv;
  /** Where it lives. */
  readonly location: KvLocation;
  /** Whether the native queue (`enqueue`, `listenQueue`) may be used. */
  readonly nativeQueue: boolean;
  /** The most checks one atomic commit may hold here. */
  readonly maxChecks: number;
  readonly #owned: boolean;
  #feeds: ChangeFeed[] = [];
  #closed = false;

  /** Wraps an already opened KV (the app's own, for transactional enqueue). */
  constructor(
    kv: Kv,
    location: KvLocation,
    options: { owned?: boolean; noNativeQueue?: boolean } = {},
  ) {
    this.kv = kv;
    this.location = location;
    this.nativeQueue = !location.remote && !options.noNativeQueue;
    // Remote KV may be a denokv server, and Bun's KV is the npm `@deno/kv` (the denokv engine):
    // both take 10 checks per commit. Deno's own KV takes 100.
    this.maxChecks = location.remote
      ? DENOKV_MAX_CHECKS
      : runtime.name === "bun"
      ? NPM_KV_MAX_CHECKS
      : KV_MAX_CHECKS;
    this.#owned = options.owned ?? false;
  }

  /** Opens the KV store named by `options.kv` (or the environment, or the default). */
  static async open(options: KvHandleOptions = {}): Promise<KvHandle> {
    const location = resolveKvLocation(options.kv);
    const kv = await openKvAt(location);
    if (options.checkSchema !== false) {
      try {
        await ensureSchema(kv, location.location);
      } catch (error) {
        kv.close();
        throw error;
      }
    }
    return new KvHandle(kv, location, {
      owned: true,
      noNativeQueue: options.noNativeQueue ?? false,
    });
  }

  /** A change feed for the given signal keys. Closed with the handle. */
  changeFeed(signalKeys: Deno.KvKey[]): ChangeFeed {
    const feed = new ChangeFeed(this.kv, this.location, signalKeys);
    this.#feeds.push(feed);
    return feed;
  }

  /** Whether {@linkcode close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Closes the feeds, and the KV if this handle opened it. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const feed of this.#feeds) feed.close();
    if (this.#owned) this.kv.close();
  }

  /** Same as {@linkcode close}. */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

/** Options of one queue's store. */
export interface StoreOptions {
  /**
   * Signing secrets for a KV shared by many hosts: one, or a list whose first entry signs and
   * whose others are old secrets still accepted; null for none.
   * @default KVQ_SECRET (and KVQ_OLD_SECRETS), else none
   */
  secret?: string | readonly string[] | Secrets | null;
  /**
   * Where "now" comes from.
   * @default Date.now
   */
  clock?: Clock;
  /**
   * The largest args or result payload, in bytes.
   * @default 10 MiB
   */
  maxPayloadBytes?: number;
}

/**
 * One queue in one KV store: what every storage operation takes.
 */
export class Store {
  /** The shared KV handle. */
  readonly handle: KvHandle;
  /** The KV API. */
  readonly kv: Kv;
  /** The queue name. */
  readonly queue: string;
  /** The queue's key shapes. */
  readonly keys: QueueKeys;
  /** Where "now" comes from. */
  readonly now: Clock;
  /** The largest args or result payload, in bytes. */
  readonly maxPayloadBytes: number;
  /** Change notifications for this queue. */
  readonly changes: ChangeFeed;
  /** The signing secrets: new tasks are signed, and clusters verify; null for none. */
  readonly secrets: Secrets | null;

  constructor(handle: KvHandle, queue: string, options: StoreOptions = {}) {
    this.handle = handle;
    this.kv = handle.kv;
    this.queue = validateQueueName(queue);
    this.keys = queueKeys(queue);
    this.now = options.clock ?? systemClock;
    this.secrets = resolveSecrets(options.secret);
    const max = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    if (!Number.isInteger(max) || max <= 0) {
      throw new RangeError(`maxPayloadBytes must be a positive integer: received ${max}`);
    }
    this.maxPayloadBytes = max;
    this.changes = handle.changeFeed([this.keys.signal]);
  }

  /**
   * Adds the bump of the queue's signal key to `atomic` where watchers wake on it: remote KV,
   * whose processes watch the key. A local file's processes wake on signal files instead (see
   * `changes.ts`), and `:memory:` in this process, so there it adds nothing: a mutation saved
   * on every enqueue.
   */
  addSignal(atomic: Deno.AtomicOperation): Deno.AtomicOperation {
    return this.handle.location.remote ? atomic.sum(this.keys.signal, 1n) : atomic;
  }
}
