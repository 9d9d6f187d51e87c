/**
 * Chains (Django Q's `async_chain`): steps that run one after another, each after the previous
 * one succeeded, optionally given the previous result as an extra last argument.
 *
 * The chain record lives under its own key. Only step 0 is created with the chain; each next
 * step's task is created in the commit that stores the previous step's success, and that commit
 * also stores the step's result under `chain_result` (so a chain works with `save: false`).
 * A step's final failure (or cancel) ends the chain `failed` in the commit that stores it; the
 * remaining steps are never created and are reported `cancelled` by {@linkcode chainStatus}.
 *
 * Chain states:
 *
 * ```
 * running ──last step succeeded──▶ succeeded
 *    └──── a step failed for good, or was cancelled ──▶ failed
 * ```
 *
 * @module
 */
import type { ErrorInfo } from "../task/errors.ts";
import type { JsonValue } from "../task/json.ts";
import { TaskId } from "../task/task_id.ts";
import { commitAtomic } from "./commit.ts";
import { addEnqueueMutations } from "./_entries.ts";
import { buildRecord } from "./build.ts";
import { checkSpec, type EnqueueOptions, type EnqueueSpec } from "./spec.ts";
import { NoSuchTaskError } from "./errors.ts";
import type { TaskState } from "./keys.ts";
import { KV_MAX_VALUE_BYTES } from "./limits.ts";
import type { Store } from "./store.ts";
import { CorruptRecordError } from "../task/record.ts";
import { readMemberResult } from "./member_result.ts";
import { signChain } from "../task/signature.ts";

/** A chain's state. */
export type ChainState = "running" | "succeeded" | "failed";

/** One stored step: the call and its options (JSON). */
export interface ChainStep {
  func: string;
  args: JsonValue[];
  options: EnqueueOptions;
}

/** The stored chain. */
export interface ChainRecord {
  id: string;
  queue: string;
  group: string | null;
  passResult: boolean;
  steps: ChainStep[];
  state: ChainState;
  /** The step that runs (or ran last). */
  current: number;
  /** The task id of each step created so far. */
  tasks: string[];
  error: ErrorInfo | null;
  createdAt: number;
  stoppedAt: number | null;
  /**
   * HMAC-SHA-256 over the id, queue and steps, when a process with a secret created it; `null`
   * otherwise (and for chains stored before signing existed).
   */
  sig: string | null;
}

/** Options for {@linkcode createChain}. */
export interface ChainOptions {
  /**
   * Give each step the previous step's result as an extra last argument.
   * @default false
   */
  passResult?: boolean;
  /**
   * The group of every step that names none.
   * @default none
   */
  group?: string;
}

/** A chain as {@linkcode chainStatus} reports it. */
export interface ChainStatus {
  /** The chain id. */
  id: string;
  /** `running`, `succeeded`, or `failed` (a step failed for good or was cancelled). */
  state: ChainState;
  /** The index of the step that runs, or that ended the chain. */
  current: number;
  /** Each step's result, in order; null for a step without one (yet). */
  results: (JsonValue | null)[];
  /** Each step: its func, task id (null when never created) and state. */
  steps: { func: string; task: string | null; state: TaskState | "pending" }[];
  /** The error of the step that failed, if any. */
  error: ErrorInfo | null;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Stored-size headroom under the KV value limit. */
const CHAIN_MAX_BYTES = KV_MAX_VALUE_BYTES - 1024;

/** Encodes a chain record. */
export function encodeChain(chain: ChainRecord): Uint8Array {
  return encoder.encode(JSON.stringify({ v: 1, ...chain }));
}

/**
 * Decodes a chain record.
 *
 * @throws {CorruptRecordError} naming the key.
 */
export function decodeChain(key: Deno.KvKey, value: unknown): ChainRecord {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(decoder.decode(value as Uint8Array));
  } catch (error) {
    throw new CorruptRecordError(key, `not UTF-8 JSON (${(error as Error).message})`);
  }
  if (
    raw?.v !== 1 || typeof raw.id !== "string" || !Array.isArray(raw.steps) ||
    !Array.isArray(raw.tasks) || typeof raw.current !== "number" ||
    !["running", "succeeded", "failed"].includes(raw.state as string)
  ) throw new CorruptRecordError(key, "not a chain record");
  const { v: _, ...chain } = raw;
  return { ...chain, sig: typeof chain.sig === "string" ? chain.sig : null } as ChainRecord;
}

/**
 * Validates every step, then stores the chain record and its first step's task in one commit.
 * Nothing is stored when any step is invalid. A step naming an unknown task fails at run time
 * with `TaskNotFoundError`, which ends the chain.
 *
 * @throws {TypeError | RangeError} naming the step and the bad field.
 */
export async function createChain(
  store: Store,
  specs: readonly EnqueueSpec[],
  options: ChainOptions = {},
): Promise<{ chain: ChainRecord; first: string }> {
  if (!Array.isArray(specs) || specs.length === 0) {
    throw new TypeError(`A chain needs at least one step: received ${JSON.stringify(specs)}`);
  }
  if (options.passResult !== undefined && typeof options.passResult !== "boolean") {
    throw new TypeError(
      `Option passResult of a chain must be true or false: received ${
        JSON.stringify(options.passResult)
      }`,
    );
  }
  const steps: ChainStep[] = specs.map((spec, i) => {
    const what = `step ${i} of the chain`;
    const opts: EnqueueOptions = { ...spec.options };
    if (opts.unique !== undefined) {
      throw new TypeError(`Option unique of ${spec.func} (${what}) is not supported in a chain`);
    }
    if (options.group !== undefined && opts.group === undefined) opts.group = options.group;
    if (opts.eta instanceof Date) opts.eta = opts.eta.getTime();
    checkSpec(store, { ...spec, options: opts }, what);
    return { func: spec.func, args: JSON.parse(JSON.stringify(spec.args)), options: opts };
  });
  const id = TaskId.create().id;
  const first = await buildRecord(
    store,
    { func: steps[0]!.func, args: steps[0]!.args, options: steps[0]!.options },
    { chain: { id, index: 0 }, what: "step 0 of the chain" },
  );
  const chain: ChainRecord = {
    id,
    queue: store.queue,
    group: options.group ?? null,
    passResult: options.passResult ?? false,
    steps,
    state: "running",
    current: 0,
    tasks: [first.id],
    error: null,
    createdAt: store.now(),
    stoppedAt: null,
    sig: null,
  };
  // With a secret, the steps are signed where they are written: a cluster with the secret
  // creates no step the secret does not verify.
  if (store.secrets !== null) chain.sig = signChain(store.secrets, chain);
  const bytes = encodeChain(chain);
  if (bytes.length > CHAIN_MAX_BYTES) {
    throw new RangeError(
      `A chain's steps are ${bytes.length} bytes stored, over the ${CHAIN_MAX_BYTES}-byte limit of one KV value: pass references to large data instead`,
    );
  }
  const atomic = store.kv.atomic()
    .check({ key: store.keys.chain(id), versionstamp: null })
    .set(store.keys.chain(id), bytes);
  addEnqueueMutations(store, atomic, [first], store.now());
  if (!(await commitAtomic(atomic)).ok) throw new Error("Storing the chain was refused; retry.");
  store.changes.notifyLocal();
  return { chain, first: first.id };
}

/** Reads a chain record and its versionstamp; null when absent. */
export async function getChain(
  store: Store,
  id: string,
): Promise<{ chain: ChainRecord; versionstamp: string } | null> {
  const e = await store.kv.get(store.keys.chain(id), { consistency: "strong" });
  if (e.versionstamp === null) return null;
  return { chain: decodeChain(e.key, e.value), versionstamp: e.versionstamp };
}

/**
 * A chain's state, current step, results and steps.
 *
 * @throws {NoSuchTaskError} when there is no such chain.
 */
export async function chainStatus(store: Store, id: string): Promise<ChainStatus> {
  const found = await getChain(store, id);
  if (found === null) throw new NoSuchTaskError(id, store.queue, "chain");
  const { chain } = found;
  const results: (JsonValue | null)[] = chain.steps.map(() => null);
  const states = new Map<number, TaskState>();
  for await (const e of store.kv.list({ prefix: store.keys.chainResults(id) })) {
    const index = e.key[e.key.length - 1] as number;
    const r = await readMemberResult(store, e.key, e.value);
    states.set(index, r.state);
    results[index] = r.state === "succeeded" ? r.result : null;
  }
  const steps = chain.steps.map((s, i) => {
    const task = chain.tasks[i] ?? null;
    let state: TaskState | "pending" = states.get(i) ?? "pending";
    if (!states.has(i)) {
      if (i === chain.current && chain.state === "running") state = "queued";
      else if (i === chain.current && chain.state === "failed") state = "failed";
      else if (i > chain.current && chain.state === "failed") state = "cancelled";
    }
    return { func: s.func, task, state };
  });
  return {
    id,
    state: chain.state,
    current: chain.current,
    results,
    steps,
    error: chain.error,
  };
}
