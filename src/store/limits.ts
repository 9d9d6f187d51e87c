/**
 * Every backend limit kvq respects, each with where it comes from. Code that batches or splits
 * work reads these; nothing else hard-codes a size.
 *
 * @module
 */

/** Deno KV: a value is at most 65,536 bytes (measured; documented for Deno Deploy KV). */
export const KV_MAX_VALUE_BYTES = 65_536;

/** Deno KV: a key is at most 2,048 bytes when encoded. */
export const KV_MAX_KEY_BYTES = 2_048;

/** Deno KV: one atomic commit holds at most 100 checks (local SQLite and Deploy). */
export const KV_MAX_CHECKS = 100;

/** The self-hosted `denokv` server accepts only 10 checks per atomic commit. */
export const DENOKV_MAX_CHECKS = 10;

/**
 * `@deno/kv` (npm, 0.14, the KV used on Bun) accepts only 10 checks per atomic commit: it is
 * the `denokv` engine. Measured: 11 checks fail with `TooManyChecks`.
 */
export const NPM_KV_MAX_CHECKS = 10;

/** Deno KV: one atomic commit holds at most 1,000 mutations plus enqueues. */
export const KV_MAX_MUTATIONS = 1_000;

/** Deno KV: one atomic commit carries at most 800 KiB of keys and values in all. */
export const KV_MAX_COMMIT_BYTES = 800 * 1024;

/** Deno KV: `getMany` reads at most 10 keys per call. */
export const KV_MAX_GET_MANY = 10;

/** Deno KV: a native queue delay is at most 30 days; longer delays are chained. */
export const KV_MAX_QUEUE_DELAY_MS = 30 * 24 * 60 * 60 * 1000;

/**
 * kvq: the part of a value a record may use inline. A payload past it is chunked under its own
 * keys, leaving room under {@linkcode KV_MAX_VALUE_BYTES} for the record's other fields.
 */
export const INLINE_PAYLOAD_BYTES = 48 * 1024;

/** kvq: the size of one chunk of a large payload, safely under {@linkcode KV_MAX_VALUE_BYTES}. */
export const CHUNK_BYTES = 60 * 1024;

/** kvq: default ceiling for one payload (args or result); configurable per queue. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 10 * 1024 * 1024;

/** kvq: the most tasks one `enqueueMany` call takes. */
export const MAX_BULK_TASKS = 100_000;

/**
 * The latest time a task may be due, in epoch ms: the largest a JavaScript `Date` holds
 * (year 275760). A later `runAt` could be stored but never shown or compared as a date.
 */
export const MAX_TIME_MS = 8_640_000_000_000_000;

/**
 * The longest timeout a task, schedule or cluster may set, in ms (about 24.8 days): what one
 * `setTimeout` holds. A longer one would fire after a millisecond.
 */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;
