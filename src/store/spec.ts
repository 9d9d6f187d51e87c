/**
 * What an enqueue is asked for, checked before anything is stored: the spec types and options,
 * their validation (each error names the task and the bad field), and the building of a task's
 * record from a checked spec. Nothing here writes to KV.
 *
 * @module
 */
import { type JsonValue, toJson } from "../task/json.ts";
import { type MemberOf, TaskRecord } from "../task/record.ts";
import { TaskId } from "../task/task_id.ts";
import { sign } from "../task/signature.ts";
import { PayloadTooLargeError } from "./chunks.ts";
import { keyBytes } from "./keys.ts";
import { INLINE_PAYLOAD_BYTES, KV_MAX_KEY_BYTES, MAX_BULK_TASKS } from "./limits.ts";
import type { Store } from "./store.ts";

import {
  type EnqueueSpec,
  FUNC_NAME,
  shown,
  validateOptions,
  type ValidOptions,
} from "./spec_options.ts";

export {
  type EnqueueOptions,
  type EnqueueSpec,
  parseEta,
  type UniqueMode,
  type UniqueOption,
  UniqueTaskError,
} from "./spec_options.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Validates every call of a bulk enqueue up front, so a bad one stores nothing.
 *
 * @throws {RangeError} past {@linkcode MAX_BULK_TASKS} calls; {@linkcode check}'s errors.
 */
export function checkAll(store: Store, specs: readonly EnqueueSpec[], now: number): Checked[] {
  if (specs.length > MAX_BULK_TASKS) {
    throw new RangeError(
      `One bulk enqueue takes at most ${MAX_BULK_TASKS} tasks: received ${specs.length}. Split the list.`,
    );
  }
  return specs.map((spec, i) => check(store, spec, now, specs.length > 1 ? i : null));
}

/** Validates a spec without building anything (for chains and iters, up front). */
export function checkSpec(store: Store, spec: EnqueueSpec, what: string): void {
  check(store, spec, store.now(), null, what);
}

/**
 * Validates specs and builds their records without storing anything. Payloads must fit inline:
 * a transactional enqueue can't write chunks first.
 */
export function prepareRecords(store: Store, specs: readonly EnqueueSpec[]): TaskRecord[] {
  const now = store.now();
  const checked = specs.map((spec, i) => check(store, spec, now, specs.length > 1 ? i : null));
  const keys = new Set<string>();
  checked.forEach((c) => {
    const u = c.options.unique;
    if (u === null) return;
    if (u.mode === "replace") {
      throw new TypeError(
        `Option unique of ${c.func} can't use mode "replace" in a transactional enqueue (it must read the holder); use "keep" or "reject": the commit then fails while the key is held`,
      );
    }
    if (keys.has(u.key)) {
      throw new TypeError(`Unique key ${JSON.stringify(u.key)} appears twice in one enqueue`);
    }
    keys.add(u.key);
  });
  checked.forEach((c) => {
    if (c.large) {
      throw new PayloadTooLargeError(
        `Arguments of ${c.func} in a transactional enqueue`,
        c.large.length,
        INLINE_PAYLOAD_BYTES,
      );
    }
  });
  return checked.map((c) => buildChecked(store, c, now, 0));
}

/** One call, validated: everything its record needs but an id. */
export interface Checked {
  func: string;
  /** A deep copy of the arguments, or null when they are too large to keep inline. */
  args: JsonValue[] | null;
  /** The arguments as UTF-8 JSON when they must be chunked, else null. */
  large: Uint8Array | null;
  options: ValidOptions;
  iter: MemberOf | null;
}

export function check(
  store: Store,
  spec: EnqueueSpec,
  now: number,
  index: number | null,
  what?: string,
): Checked {
  const where = what !== undefined
    ? ` (${what})`
    : index === null
    ? ""
    : ` (task ${index} of the batch)`;
  if (typeof spec?.func !== "string" || !FUNC_NAME.test(spec.func)) {
    throw new TypeError(
      `Task name must be an identifier such as "sendEmail"${where}: received ${shown(spec?.func)}`,
    );
  }
  if (!Array.isArray(spec.args)) {
    throw new TypeError(
      `Arguments of ${spec.func} must be an array${where}: received ${shown(spec.args)}`,
    );
  }
  // Each argument is checked once and stringified once; the record gets a deep copy of the JSON,
  // so the caller may change its objects after enqueue returns.
  let argsJson = "[";
  for (let i = 0; i < spec.args.length; i++) {
    if (i > 0) argsJson += ",";
    argsJson += toJson(spec.args[i], `argument ${i + 1} of ${spec.func}${where}`);
  }
  argsJson += "]";
  // A UTF-8 byte is at least one UTF-16 unit and at most three: measure only when it matters.
  let large: Uint8Array | null = null;
  if (argsJson.length * 3 > Math.min(INLINE_PAYLOAD_BYTES, store.maxPayloadBytes)) {
    const bytes = encoder.encode(argsJson);
    if (bytes.length > store.maxPayloadBytes) {
      throw new PayloadTooLargeError(
        `Arguments of ${spec.func}${where}`,
        bytes.length,
        store.maxPayloadBytes,
      );
    }
    if (bytes.length > INLINE_PAYLOAD_BYTES) large = bytes;
  }
  const args = large === null ? JSON.parse(argsJson) as JsonValue[] : null;
  const o = validateOptions(spec.options ?? {}, spec.func + where, now);
  if (o.unique !== null) {
    const bytes = keyBytes(store.keys.unique(o.unique.key));
    if (bytes > KV_MAX_KEY_BYTES) {
      throw new RangeError(
        `Unique key of ${spec.func}${where} is ${bytes} bytes as a KV key, over the ${KV_MAX_KEY_BYTES}-byte KV key limit: received a key of ${o.unique.key.length} characters`,
      );
    }
  }
  return { func: spec.func, args, large, options: o, iter: spec.iter ?? null };
}

/** The record of a checked call under `id`, as enqueue builds it (nothing is stored). */
export function recordFor(store: Store, c: Checked, now: number, id: TaskId): TaskRecord {
  return buildChecked(store, c, now, 0, id);
}

/** The record of a checked call (`chunks`: how many chunks hold its arguments). */
export function buildChecked(
  store: Store,
  c: Checked,
  now: number,
  argsChunks: number,
  id: TaskId = TaskId.create(),
): TaskRecord {
  const o = c.options;
  const runAt = o.runAt ?? now;
  const sig = store.secrets === null ? null : sign(
    store.secrets,
    {
      id: id.id,
      queue: store.queue,
      func: c.func,
      hook: o.hook,
      onFailure: o.onFailure,
      onTimeout: o.onTimeout,
      priority: o.priority,
      timeout: o.timeout,
      maxAttempts: o.maxAttempts,
      backoff: o.backoff,
      save: o.save,
      cached: o.cached,
    },
    c.large === null ? JSON.stringify(c.args) : decoder.decode(c.large),
  );
  return new TaskRecord({
    sig,
    id: id.id,
    name: id.name,
    func: c.func,
    args: c.args,
    argsChunks,
    queue: store.queue,
    group: o.group,
    priority: o.priority,
    timeout: o.timeout,
    maxAttempts: o.maxAttempts,
    attempt: 0,
    backoff: o.backoff,
    state: runAt > now ? "scheduled" : "queued",
    enqueuedAt: now,
    runAt,
    startedAt: null,
    stoppedAt: null,
    resultJson: null,
    resultChunks: 0,
    error: null,
    errors: [],
    cluster: null,
    worker: null,
    progress: null,
    save: o.save,
    hook: o.hook,
    unique: o.unique?.key ?? null,
    onFailure: o.onFailure,
    onTimeout: o.onTimeout,
    cached: o.cached,
    iter: c.iter,
    expiresAt: o.expiresAt,
    partition: o.partition,
    traceparent: o.trace?.traceparent ?? null,
    tracestate: o.trace?.tracestate ?? null,
  });
}
