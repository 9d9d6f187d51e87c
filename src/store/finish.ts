/**
 * What a task's final outcome changes besides its record, all in the commit that stores the
 * outcome (completion, cancel, lease recovery's final failure, the replace of a unique task):
 *
 * - its `done` entry (by state and stop time; its value names the func and group, for retention
 *   per func or group), with `expireIn` for a `cached` task; or, in a cluster's outcome commit,
 *   its place in that commit's batch entry (see `done_index.ts`);
 * - the release of its `unique` key;
 * - its hook tasks (`hook`, `onFailure`, `onTimeout`), created given the finished record;
 * - its iter outcome and the iter's done counter;
 * - its chain: the step's result, and the next step's task or the chain's end.
 *
 * Everything but the chain is written blind. The chain record is read first and checked in the
 * commit; only the holder of a step's lease (or of its waiting record) changes a chain, so the
 * check fails only when something else went wrong, and the caller re-plans.
 *
 * @module
 */
import type { ErrorInfo } from "../task/errors.ts";
import type { TaskRecord } from "../task/record.ts";
import { type ChainRecord, decodeChain, encodeChain } from "./chain.ts";
import type { CountDeltas } from "./counters.ts";
import { addCreatedTask, doorbell } from "./_entries.ts";
import { buildRecord } from "./build.ts";
import type { TraceContext } from "../telemetry/otel.ts";
import { KV_MAX_QUEUE_DELAY_MS } from "./limits.ts";
import { encodeMemberResult } from "./member_result.ts";
import type { Store } from "./store.ts";
import { type DoneBatches, encodeDone } from "./done_index.ts";
import { SignatureError, verifyChain } from "../task/signature.ts";
import { toErrorInfo } from "../task/errors.ts";

/** The finish effects of one outcome, ready to add to a commit. */
export interface FinishPlan {
  /** Checks the commit must hold (the chain record's versionstamp). */
  readonly checks: Deno.AtomicCheck[];
  /** About how many mutations {@linkcode apply} adds. */
  readonly mutations: number;
  /** About how many bytes it adds. */
  readonly bytes: number;
  /** Tasks it creates. */
  readonly created: readonly TaskRecord[];
  /** Adds the mutations; counters of created tasks go to `counts`. */
  apply(atomic: Deno.AtomicOperation, counts: CountDeltas): void;
}

const EMPTY: FinishPlan = Object.freeze({
  checks: [],
  mutations: 0,
  bytes: 0,
  created: [],
  apply() {},
});

const u64One = 1n;

/**
 * Writes a finished record and its `done` index entry, and counts it in its state (a cached
 * task is not counted: it expires on its own). The caller has counted it out of its old state.
 * With `batches`, the commit's batch entry names it instead of an entry of its own (see
 * `done_index.ts`).
 */
export function addFinishedRecord(
  atomic: Deno.AtomicOperation,
  store: Store,
  record: TaskRecord,
  counts: CountDeltas,
  batches?: DoneBatches,
): void {
  const k = store.keys;
  const stoppedAt = record.stoppedAt!;
  if (record.cached !== null) {
    const options = { expireIn: record.cached };
    atomic.set(k.task(record.id), record.encode(), options);
    atomic.set(k.done(record.state, stoppedAt, record.id), encodeDone(record), options);
    atomic.set(k.name(record.name, record.id), new Uint8Array(), options);
    // Not moved into a look-up that would outlive the record.
    atomic.delete(k.nameTail(record.id));
    atomic.delete(k.nameTailOne(record.id));
    atomic.set(k.func(record.func, record.id), new Uint8Array(), options);
    if (record.group !== null) {
      atomic.set(k.group(record.group, record.id), new Uint8Array(), options);
    }
    return;
  }
  atomic.set(k.task(record.id), record.encode());
  addFinishedIndex(atomic, store, record, counts, batches);
}

/**
 * The `done` entry of a finished, not cached record (or its place in `batches`), and its
 * counters: its state's, and the per func and group counts that retention per func or group
 * reads.
 */
export function addFinishedIndex(
  atomic: Deno.AtomicOperation,
  store: Store,
  record: TaskRecord,
  counts: CountDeltas,
  batches?: DoneBatches,
): void {
  const k = store.keys;
  if (batches) batches.add(record);
  else atomic.set(k.done(record.state, record.stoppedAt!, record.id), encodeDone(record));
  counts.add(k.stat("done_by", "func", record.func, record.state));
  if (record.group !== null) counts.add(k.stat("done_by", "group", record.group, record.state));
  counts.move(null, record.state);
}

/**
 * Works out what finishing `record` (already in its final state) does besides writing it.
 * `resultJson` is the result even when the record keeps none (`save: false`). Returns an empty
 * plan for a record that is not finished.
 */
export async function planFinish(
  store: Store,
  record: TaskRecord,
  resultJson: string | null,
  options: { keepUnique?: boolean } = {},
): Promise<FinishPlan> {
  if (!record.finished) return EMPTY;
  const k = store.keys;
  const checks: Deno.AtomicCheck[] = [];
  const created: TaskRecord[] = [];
  const steps: ((atomic: Deno.AtomicOperation) => void)[] = [];
  let mutations = 0;
  let bytes = 0;

  if (record.unique !== null && !options.keepUnique) {
    steps.push((a) => a.delete(k.unique(record.unique!)));
    mutations++;
  }

  // Hooks, given the finished record (with its result) as JSON.
  const hooks: string[] = [];
  if (record.hook !== null) hooks.push(record.hook);
  if (record.state === "failed") {
    if (record.onFailure !== null) hooks.push(record.onFailure);
    if (record.onTimeout !== null && record.error?.name === "TaskTimeoutError") {
      hooks.push(record.onTimeout);
    }
  }
  if (hooks.length > 0) {
    const finished = record.toJSON();
    if (resultJson !== null && record.state === "succeeded") {
      finished.result = JSON.parse(resultJson);
    }
    for (const func of hooks) {
      created.push(
        await buildRecord(store, {
          func,
          args: [finished],
          options: record.group === null ? {} : { group: record.group },
        }, { what: `hook of task ${record.id}`, trace: traceOf(record) }),
      );
    }
  }

  if (record.iter !== null) {
    const { id, index } = record.iter;
    const value = encodeMemberResult(record, resultJson);
    steps.push((a) => {
      a.set(k.iterResult(id, index), value);
      a.sum(k.iterDone(id), u64One);
    });
    mutations += 2;
    bytes += value.length;
  }

  if (record.chain !== null) {
    const { id, index } = record.chain;
    const entry = await store.kv.get(k.chain(id), { consistency: "strong" });
    if (entry.versionstamp !== null) {
      const chain = decodeChain(entry.key, entry.value);
      if (chain.state === "running" && chain.current === index) {
        checks.push({ key: entry.key, versionstamp: entry.versionstamp });
        const value = encodeMemberResult(record, resultJson);
        const now = store.now();
        let next = chain;
        const refused = record.state === "succeeded" && index + 1 < chain.steps.length
          ? chainRefusal(store, chain)
          : null;
        if (refused !== null) {
          next = { ...chain, state: "failed", stoppedAt: now, error: toErrorInfo(refused) };
        } else if (record.state === "succeeded" && index + 1 < chain.steps.length) {
          const step = chain.steps[index + 1]!;
          const args = chain.passResult
            ? [...step.args, resultJson === null ? null : JSON.parse(resultJson)]
            : step.args;
          const task = await buildRecord(store, {
            func: step.func,
            args,
            options: step.options,
          }, {
            chain: { id, index: index + 1 },
            what: `step ${index + 1} of chain ${id}`,
            trace: traceOf(record),
          });
          created.push(task);
          next = { ...chain, current: index + 1, tasks: [...chain.tasks, task.id] };
        } else if (record.state === "succeeded") {
          next = { ...chain, state: "succeeded", stoppedAt: now };
        } else {
          const error: ErrorInfo = record.error ??
            { name: "TaskCancelledError", message: `Step ${index} was ${record.state}` };
          next = { ...chain, state: "failed", stoppedAt: now, error };
        }
        const chainBytes = encodeChain(next);
        steps.push((a) => {
          a.set(k.chainResult(id, index), value);
          a.set(k.chain(id), chainBytes);
        });
        mutations += 2;
        bytes += value.length + chainBytes.length;
      }
    }
  }

  for (const task of created) {
    mutations += 5; // record, ready or delayed, name, group, start-by deadline
    // Its record, and a copy in its ready entry when it is small (see `addReadyEntry`).
    bytes += 2 * task.encode().length + 1024;
  }
  return {
    checks,
    mutations: mutations + (created.length > 0 ? 2 : 0),
    bytes,
    created,
    apply(atomic, counts) {
      for (const step of steps) step(atomic);
      if (created.length === 0) return;
      let earliest = Infinity;
      for (const task of created) {
        earliest = Math.min(earliest, addCreatedTask(store, atomic, task, counts));
      }
      store.addSignal(atomic);
      if (Number.isFinite(earliest) && store.handle.nativeQueue) {
        atomic.enqueue(doorbell(store.queue), {
          delay: Math.min(KV_MAX_QUEUE_DELAY_MS, Math.max(0, earliest - store.now())),
        });
      }
    },
  };
}

/** Why a cluster with a secret must not create the next step of `chain`; null when it may. */
function chainRefusal(store: Store, chain: ChainRecord): SignatureError | null {
  if (store.secrets === null) return null;
  try {
    verifyChain(store.secrets, chain, chain.sig);
    return null;
  } catch (error) {
    if (error instanceof SignatureError) return error;
    throw error;
  }
}

/** The trace context a task carries, for the tasks it creates. */
function traceOf(record: TaskRecord): TraceContext | null {
  return record.traceparent === null
    ? null
    : { traceparent: record.traceparent, tracestate: record.tracestate };
}
