/**
 * Retry by hand (Django Q's resubmit): a finished task goes back to `queued` with a fresh
 * attempt count, in one checked commit.
 *
 * @module
 */
import { sign } from "../task/signature.ts";
import type { TaskRecord } from "../task/record.ts";
import { addWaitingEntries, uncountDeleted } from "./_entries.ts";
import { TurnBook } from "./turns.ts";
import { readChunks } from "./chunks.ts";
import { commitAtomic } from "./commit.ts";
import { addStateCounts, CountDeltas } from "./counters.ts";
import { addFinishedIndexRemoval } from "./delete.ts";
import { forgetDone } from "./done_index.ts";
import { NoSuchTaskError, TaskStateError } from "./errors.ts";
import { getRecord, getTask, resolveTaskRef } from "./get.ts";
import { UniqueTaskError } from "./spec.ts";
import type { Store } from "./store.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Puts a failed, cancelled or succeeded task back in the queue with a fresh attempt count.
 * With a secret, the retried task is signed runnable again (its final record carries only the
 * finished mark).
 *
 * @throws {NoSuchTaskError} when there is no such task.
 * @throws {TaskStateError} when it has not finished.
 * @throws {UniqueTaskError} when another waiting task holds its unique key now.
 */
export async function retryTask(store: Store, ref: string): Promise<TaskRecord> {
  for (let i = 0; i < 10; i++) {
    const id = await resolveTaskRef(store, ref);
    const found = id === null ? null : await getRecord(store, id);
    if (found === null) throw new NoSuchTaskError(ref, store.queue);
    const { record, versionstamp } = found;
    if (!record.finished) {
      throw new TaskStateError(
        `Task ${record.id} (${record.name}) is ${record.state}; only finished tasks can be retried.`,
      );
    }
    const turns = new TurnBook(store);
    let [queued] = await turns.place([record.resubmit(store.now())]);
    const secrets = store.secrets;
    if (secrets !== null) {
      const argsJson = record.args !== null
        ? JSON.stringify(record.args)
        : decoder.decode(await readChunks(store, record.id, "args", record.argsChunks));
      queued = queued!.signed(sign(secrets, queued!, argsJson));
    }
    const k = store.keys;
    const atomic = store.kv.atomic().check({ key: k.task(record.id), versionstamp });
    // The finished entries (and the per func/group counters) out, the waiting ones in: a cached
    // record's look-ups, set to expire, are kept again.
    addFinishedIndexRemoval(atomic, store, record);
    addWaitingEntries(atomic, k, queued!);
    turns.add(atomic, [queued!]);
    store.addSignal(atomic);
    if (record.unique !== null) {
      // It holds its unique key again while it waits, if no other task took it meanwhile.
      const held = await store.kv.get(k.unique(record.unique));
      if (held.versionstamp !== null) {
        const holder = decoder.decode(held.value as Uint8Array);
        const other = await getTask(store, holder).catch(() => null);
        if (other !== null && !other.finished) {
          throw new UniqueTaskError(record.unique, holder, other.state);
        }
      }
      atomic.check({ key: k.unique(record.unique), versionstamp: held.versionstamp });
      atomic.set(k.unique(record.unique), encoder.encode(record.id));
    }
    const counts = new CountDeltas().move(null, "queued", 1, record.partition);
    uncountDeleted(counts, record);
    addStateCounts(atomic, store, counts);
    if ((await commitAtomic(atomic)).ok) {
      await forgetDone(store, record);
      store.changes.notifyLocal();
      return queued!;
    }
  }
  throw new Error(`Task ${ref} kept changing while being retried; try again.`);
}
