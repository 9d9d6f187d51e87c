/**
 * Listing a finished state's tasks, newest first, from its `done` entries (a task's own, or a
 * batch entry naming the tasks of one outcome commit: see `done_index.ts`). A page may end
 * inside a batch entry, so the cursor names the entry and how many of its tasks were passed.
 *
 * @module
 */
import type { TaskRecord } from "../task/record.ts";
import { type DoneMember, isCurrent, readDoneEntry } from "./done_index.ts";
import type { TaskState } from "./keys.ts";
import type { ListOptions, TaskPage } from "./list.ts";
import { readTaskRecords } from "./read_records.ts";
import type { Store } from "./store.ts";

/**
 * Cursors of a finished state's list: the last parts of the `done` entry the page ended in, and
 * how many of its tasks were passed (a batch entry names many; see `done_index.ts`).
 */
const DONE = "done:";

/** A finished state's tasks, newest first, from its `done` entries. */
export async function listDone(
  store: Store,
  state: TaskState,
  limit: number,
  options: ListOptions,
): Promise<TaskPage> {
  const prefix = store.keys.doneState(state);
  const from = options.cursor === undefined ? null : parseDoneCursor(options.cursor);
  // Up to just past the entry the last page ended in, so that entry is listed first again.
  const selector = from === null
    ? { prefix }
    : { start: prefix, end: [...prefix, ...from.tail, ""] };
  const walk = new DoneWalk(
    // A batch entry names up to a commit's tasks (tens of KiB): fetch no more entries at a time
    // than the page could need if each named one task.
    store.kv.list(selector, {
      reverse: true,
      consistency: "eventual",
      batchSize: Math.min(limit, 100),
    }),
    prefix.length,
    from,
  );
  const tasks: TaskRecord[] = [];
  try {
    for (;;) {
      // The next tasks named, enough to fill the page if each is current.
      const named = await walk.take(limit - tasks.length);
      if (named.length === 0) return { tasks, cursor: null };
      const records = new Map(
        (await readTaskRecords(store, named.map((n) => n.member.id), options.onCorrupt))
          .map((r) => [r.id, r]),
      );
      for (let i = 0; i < named.length; i++) {
        const { member, tail, passed } = named[i]!;
        // A task enqueued since then stopped since then: entries older than that name none.
        if (options.since !== undefined && (tail[0] as number) < options.since) {
          return { tasks, cursor: null };
        }
        const record = records.get(member.id);
        if (record === undefined || !isCurrent(member, record, state)) continue;
        if (options.since !== undefined && record.enqueuedAt < options.since) continue;
        tasks.push(record);
        if (tasks.length < limit) continue;
        const more = i < named.length - 1 || await walk.more();
        return { tasks, cursor: more ? doneCursor(tail, passed) : null };
      }
    }
  } finally {
    walk.close();
  }
}

/** The tasks a state's `done` entries name, newest first, from a place a cursor gave. */
class DoneWalk {
  readonly #entries: AsyncIterator<Deno.KvEntry<unknown>>;
  readonly #prefixLength: number;
  #from: { tail: Deno.KvKey; passed: number } | null;
  #tail: Deno.KvKey = [];
  #members: readonly DoneMember[] = [];
  #passed = 0;
  #ended = false;

  constructor(
    entries: Deno.KvListIterator<unknown>,
    prefixLength: number,
    from: { tail: Deno.KvKey; passed: number } | null,
  ) {
    this.#entries = entries[Symbol.asyncIterator]();
    this.#prefixLength = prefixLength;
    this.#from = from;
  }

  /** Up to `n` more tasks, each with the place after it. */
  async take(n: number): Promise<{ member: DoneMember; tail: Deno.KvKey; passed: number }[]> {
    const out = [];
    while (out.length < n) {
      if (this.#passed < this.#members.length) {
        const member = this.#members[this.#passed++]!;
        out.push({ member, tail: this.#tail, passed: this.#passed });
      } else if (!await this.#advance()) break;
    }
    return out;
  }

  /** Whether any task is left. */
  async more(): Promise<boolean> {
    while (this.#passed >= this.#members.length) {
      if (!await this.#advance()) return false;
    }
    return true;
  }

  close(): void {
    void this.#entries.return?.();
  }

  async #advance(): Promise<boolean> {
    if (this.#ended) return false;
    const next = await this.#entries.next();
    if (next.done) {
      this.#ended = true;
      return false;
    }
    this.#tail = next.value.key.slice(this.#prefixLength);
    this.#members = [...readDoneEntry(next.value).members].reverse();
    this.#passed = 0;
    // The entry the last page ended in, if it is still there: go on after what it showed.
    const from = this.#from;
    this.#from = null;
    if (from !== null && sameKey(from.tail, this.#tail)) {
      this.#passed = Math.min(from.passed, this.#members.length);
    }
    return true;
  }
}

function sameKey(a: Deno.KvKey, b: Deno.KvKey): boolean {
  return a.length === b.length && a.every((p, i) => p === b[i]);
}

function doneCursor(tail: Deno.KvKey, passed: number): string {
  return DONE + JSON.stringify([...tail, passed]);
}

function parseDoneCursor(cursor: string): { tail: Deno.KvKey; passed: number } {
  const bad = () =>
    new RangeError(
      `A list by finished state continues from the cursor its previous page gave ("${DONE}…"): received ${
        JSON.stringify(cursor)
      }; list again without the cursor`,
    );
  if (!cursor.startsWith(DONE)) throw bad();
  let parts: unknown;
  try {
    parts = JSON.parse(cursor.slice(DONE.length));
  } catch {
    throw bad();
  }
  if (!Array.isArray(parts) || parts.length < 3 || parts.length > 4) throw bad();
  const passed = parts[parts.length - 1];
  const tail = parts.slice(0, -1);
  if (!Number.isSafeInteger(passed) || passed < 0) throw bad();
  if (typeof tail[0] !== "number" || tail.slice(1).some((p) => typeof p !== "string")) throw bad();
  return { tail: tail as Deno.KvKey, passed };
}
