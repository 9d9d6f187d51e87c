/**
 * Enqueue: one commit stores the record, its index entry (ready or delayed), its look-ups, the
 * counters, the signal bump and, for a delayed task, a native doorbell. Bulk enqueue packs many
 * tasks per commit within the atomic limits.
 *
 * @module
 */
import { type Backoff, validateBackoff } from "../task/backoff.ts";
import { type JsonValue, toJson } from "../task/json.ts";
import { TaskRecord } from "../task/record.ts";
import { TaskId } from "../task/task_id.ts";
import { PayloadTooLargeError, writeChunks } from "./chunks.ts";
import { addStateCounts, CountDeltas } from "./counters.ts";
import {
  INLINE_PAYLOAD_BYTES,
  KV_MAX_COMMIT_BYTES,
  KV_MAX_MUTATIONS,
  KV_MAX_QUEUE_DELAY_MS,
  MAX_BULK_TASKS,
} from "./limits.ts";
import type { Store } from "./store.ts";
import { commitAtomic } from "./commit.ts";

/** Options for one enqueued task. */
export interface EnqueueOptions {
  /**
   * Tasks of one group can be counted, fetched and deleted together.
   * @default none
   */
  group?: string;
  /**
   * Lower runs first; FIFO within a priority.
   * @default 0
   */
  priority?: number;
  /**
   * Run no earlier than this many milliseconds from now.
   * @default 0
   */
  delay?: number;
  /**
   * Run no earlier than this time (a Date, epoch ms, or ISO 8601 text).
   * @default now
   */
  eta?: Date | number | string;
  /**
   * Milliseconds an attempt may run before it is stopped.
   * @default the cluster's --timeout
   */
  timeout?: number;
  /**
   * Attempts allowed in all (1 = no retry).
   * @default the cluster's --max-attempts
   */
  maxAttempts?: number;
  /**
   * How retries are spaced.
   * @default the cluster's backoff (exponential from 1 s with jitter)
   */
  backoff?: Backoff;
  /**
   * Keep a successful result.
   * @default true
   */
  save?: boolean;
  /**
   * A task to run after this one ends, given the finished record.
   * @default none
   */
  hook?: string;
}

/** One call to enqueue. */
export interface EnqueueSpec {
  /** The task function's registered name. */
  func: string;
  /** Its arguments (JSON values). */
  args: readonly unknown[];
  /** Its options. */
  options?: EnqueueOptions;
}

const FUNC_NAME = /^[A-Za-z_$][A-Za-z0-9_$]{0,127}$/;
const encoder = new TextEncoder();

/**
 * Validates every spec, then stores all of them. Nothing is stored if any spec is invalid.
 *
 * @throws {TypeError | RangeError} naming the task and the bad field.
 */
export async function enqueueTasks(
  store: Store,
  specs: readonly EnqueueSpec[],
): Promise<TaskRecord[]> {
  if (specs.length > MAX_BULK_TASKS) {
    throw new RangeError(
      `One bulk enqueue takes at most ${MAX_BULK_TASKS} tasks: received ${specs.length}. Split the list.`,
    );
  }
  const now = store.now();
  // Validate every call first: a bad one stores nothing.
  const checked = specs.map((spec, i) => check(store, spec, now, specs.length > 1 ? i : null));
  // Then build records and pack them into commits as full as the limits allow. The next commit
  // is built (ids, records, their bytes) while the previous one is being written.
  const records: TaskRecord[] = [];
  let inFlight: Promise<void> | null = null;
  let next = 0;
  while (next < checked.length) {
    const part: TaskRecord[] = [];
    let mutations = ENQUEUE_FIXED_MUTATIONS;
    let bytes = ENQUEUE_FIXED_BYTES;
    while (next < checked.length) {
      const c = checked[next]!;
      const record = records[next] ??= c.large === null
        ? build(store, c, now, 0)
        : await buildChunked(store, c, now);
      const m = enqueueMutationCount(record);
      const size = enqueueBytes(record);
      if (
        part.length > 0 && (mutations + m > KV_MAX_MUTATIONS || bytes + size > KV_MAX_COMMIT_BYTES)
      ) break;
      part.push(record);
      mutations += m;
      bytes += size;
      next++;
    }
    const atomic = store.kv.atomic();
    addEnqueueMutations(store, atomic, part, now);
    if (inFlight) await inFlight;
    inFlight = commitEnqueue(atomic, part.length);
  }
  if (inFlight) await inFlight;
  store.changes.notifyLocal();
  return records;
}

/** Writes the chunks of large arguments, then builds the record that points at them. */
async function buildChunked(store: Store, c: Checked, now: number): Promise<TaskRecord> {
  const id = TaskId.create();
  const chunks = await writeChunks(store, id.id, "args", c.large!);
  return build(store, c, now, chunks, id);
}

/** Mutations and enqueues one commit adds besides its tasks: 2 counters, the signal, a doorbell. */
const ENQUEUE_FIXED_MUTATIONS = 4;

/** Bytes one commit carries besides its tasks (counter and signal keys), with a margin. */
const ENQUEUE_FIXED_BYTES = 4 * 1024;

/** Mutations one task costs: record, ready or delayed entry, name look-up, group look-up. */
function enqueueMutationCount(record: TaskRecord): number {
  return record.group === null ? 3 : 4;
}

/** Bytes one task adds to a commit: its record plus its keys (each well under 256 bytes). */
function enqueueBytes(record: TaskRecord): number {
  return record.encode().length + 4 * 256 + (record.group === null ? 0 : record.group.length * 4);
}

async function commitEnqueue(atomic: Deno.AtomicOperation, count: number): Promise<void> {
  const result = await commitAtomic(atomic);
  if (!result.ok) {
    throw new Error(`Enqueue of ${count} tasks was refused by KV; retry.`);
  }
}

/**
 * Adds the mutations that enqueue `records` to an app's own atomic operation, so the tasks
 * commit together with the app's data or not at all. The records must come from
 * {@linkcode prepareRecords}.
 */
export function addEnqueueMutations(
  store: Store,
  atomic: Deno.AtomicOperation,
  records: readonly TaskRecord[],
  now: number,
): void {
  const counts = new CountDeltas();
  let earliestDelayed = Infinity;
  for (const record of records) {
    atomic.set(store.keys.task(record.id), record.encode());
    if (record.state === "scheduled") {
      atomic.set(store.keys.delayed(record.runAt, record.id), new Uint8Array());
      earliestDelayed = Math.min(earliestDelayed, record.runAt);
    } else {
      atomic.set(store.keys.ready(record.priority, record.id), new Uint8Array());
    }
    atomic.set(store.keys.name(record.name, record.id), new Uint8Array());
    if (record.group !== null) {
      atomic.set(store.keys.group(record.group, record.id), new Uint8Array());
    }
    counts.move(null, record.state);
  }
  addStateCounts(atomic, store, counts.deltas);
  atomic.sum(store.keys.signal, 1n);
  if (Number.isFinite(earliestDelayed) && store.handle.nativeQueue) {
    atomic.enqueue(doorbell(store.queue), {
      delay: Math.min(KV_MAX_QUEUE_DELAY_MS, Math.max(0, earliestDelayed - now)),
    });
  }
}

/**
 * Validates specs and builds their records without storing anything. Payloads must fit inline:
 * a transactional enqueue can't write chunks first.
 */
export function prepareRecords(store: Store, specs: readonly EnqueueSpec[]): TaskRecord[] {
  const now = store.now();
  const checked = specs.map((spec, i) => check(store, spec, now, specs.length > 1 ? i : null));
  checked.forEach((c) => {
    if (c.large) {
      throw new PayloadTooLargeError(
        `Arguments of ${c.func} in a transactional enqueue`,
        c.large.length,
        INLINE_PAYLOAD_BYTES,
      );
    }
  });
  return checked.map((c) => build(store, c, now, 0));
}

/** The doorbell payload: short ASCII, as the Bun V8 codec requires. */
export function doorbell(queue: string): string {
  return `kvq:${queue}`;
}

/** One call, validated: everything its record needs but an id. */
interface Checked {
  func: string;
  /** A deep copy of the arguments, or null when they are too large to keep inline. */
  args: JsonValue[] | null;
  /** The arguments as UTF-8 JSON when they must be chunked, else null. */
  large: Uint8Array | null;
  options: ValidOptions;
}

function check(store: Store, spec: EnqueueSpec, now: number, index: number | null): Checked {
  const where = index === null ? "" : ` (task ${index} of the batch)`;
  if (typeof spec?.func !== "string" || !FUNC_NAME.test(spec.func)) {
    throw new TypeError(
      `Task name must be an identifier such as "sendEmail"${where}: received ${
        JSON.stringify(spec?.func)
      }`,
    );
  }
  if (!Array.isArray(spec.args)) {
    throw new TypeError(`Arguments of ${spec.func} must be an array${where}`);
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
  return { func: spec.func, args, large, options: o };
}

function build(
  store: Store,
  c: Checked,
  now: number,
  argsChunks: number,
  id: TaskId = TaskId.create(),
): TaskRecord {
  const o = c.options;
  const runAt = o.runAt ?? now;
  return new TaskRecord({
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
    unique: null,
  });
}

interface ValidOptions {
  group: string | null;
  priority: number;
  runAt: number | null;
  timeout: number | null;
  maxAttempts: number | null;
  backoff: Backoff | null;
  save: boolean;
  hook: string | null;
}

const KNOWN_OPTIONS = new Set([
  "group",
  "priority",
  "delay",
  "eta",
  "timeout",
  "maxAttempts",
  "backoff",
  "save",
  "hook",
]);

function validateOptions(o: EnqueueOptions, what: string, now: number): ValidOptions {
  const bad = (field: string, rule: string, value: unknown): never => {
    throw new TypeError(`Option ${field} of ${what} ${rule}: received ${JSON.stringify(value)}`);
  };
  for (const name of Object.keys(o)) {
    if (!KNOWN_OPTIONS.has(name)) {
      bad(name, `is not a known option (${[...KNOWN_OPTIONS].join(", ")})`, name);
    }
  }
  if (
    o.group !== undefined &&
    (typeof o.group !== "string" || o.group.length === 0 || o.group.length > 256)
  ) {
    bad("group", "must be a string of 1-256 characters", o.group);
  }
  if (o.priority !== undefined && !Number.isSafeInteger(o.priority)) {
    bad("priority", "must be an integer (lower runs first)", o.priority);
  }
  const positive = (field: "timeout" | "maxAttempts", value: unknown) => {
    if (value !== undefined && (!Number.isSafeInteger(value) || (value as number) < 1)) {
      bad(field, "must be a positive integer", value);
    }
  };
  positive("timeout", o.timeout);
  positive("maxAttempts", o.maxAttempts);
  let runAt: number | null = null;
  if (o.delay !== undefined) {
    if (typeof o.delay !== "number" || !Number.isFinite(o.delay) || o.delay < 0) {
      bad("delay", "must be milliseconds >= 0", o.delay);
    }
    if (o.eta !== undefined) bad("delay", "can't be combined with eta", o.delay);
  }
  if (o.eta !== undefined) runAt = parseEta(o.eta, what);
  if (o.hook !== undefined && (typeof o.hook !== "string" || !FUNC_NAME.test(o.hook))) {
    bad("hook", "must be a task name", o.hook);
  }
  if (o.save !== undefined && typeof o.save !== "boolean") {
    bad("save", "must be true or false", o.save);
  }
  let backoff: Backoff | null = null;
  if (o.backoff !== undefined) {
    try {
      backoff = validateBackoff(o.backoff);
    } catch (error) {
      bad("backoff", `is invalid (${(error as Error).message})`, o.backoff);
    }
  }
  return {
    group: o.group ?? null,
    priority: o.priority ?? 0,
    runAt: o.delay !== undefined ? now + o.delay : runAt,
    timeout: o.timeout ?? null,
    maxAttempts: o.maxAttempts ?? null,
    backoff,
    save: o.save ?? true,
    hook: o.hook ?? null,
  };
}

/**
 * Parses an eta: a Date, epoch milliseconds, or ISO 8601 text.
 *
 * @throws {TypeError} naming the value.
 */
export function parseEta(eta: unknown, what = "the task"): number {
  const ms = eta instanceof Date
    ? eta.getTime()
    : typeof eta === "number"
    ? eta
    : typeof eta === "string" && /^\d{4}-\d{2}-\d{2}/.test(eta)
    ? Date.parse(eta)
    : NaN;
  if (!Number.isFinite(ms)) {
    throw new TypeError(
      `Option eta of ${what} must be a Date, epoch milliseconds or ISO 8601 text like 2026-12-01T09:00:00Z: received ${
        JSON.stringify(eta instanceof Date ? "Invalid Date" : eta)
      }`,
    );
  }
  return ms;
}
