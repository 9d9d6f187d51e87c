/**
 * Where the KV store lives and how it is opened: a local file (the default,
 * `.kvq/kv.sqlite3` under the working directory), `:memory:`, or a remote `http(s)://` KV
 * Connect URL.
 *
 * @module
 */
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  realpathSync,
  statSync,
} from "node:fs";
import { dirname, resolve } from "node:path";
import process from "node:process";
import { readOnlyReason } from "./read_copy.ts";
import { type Kv, runtime } from "../runtime/mod.ts";
import { commitStats, retryBusy } from "./commit.ts";
import { UNREADABLE } from "../task/record.ts";

/** The KV file used when nothing else is configured. */
export const DEFAULT_KV_PATH = ".kvq/kv.sqlite3";

/** A resolved KV location. */
export interface KvLocation {
  /** What to pass to `openKv`: an absolute path, `:memory:`, or a URL. */
  readonly location: string;
  /** True for `http(s)://` URLs (KV Connect): no native queue, no file to watch. */
  readonly remote: boolean;
  /** The file path, for local files. */
  readonly path: string | null;
}

/** Raised when the KV store can't be opened. Names the location and what to try. */
export class KvOpenError extends Error {
  /**
   * Whether trying again later may work (a remote server that did not answer, a file another
   * process holds locked). False for what needs a person: a folder, a damaged file, no write
   * permission. The CLI exits 2 for those, so a supervisor does not restart it in vain.
   */
  readonly transient: boolean;
  constructor(location: string, reason: string, options: { transient?: boolean } = {}) {
    super(`Cannot open the KV store at ${location}: ${reason}`);
    this.name = "KvOpenError";
    this.transient = options.transient ?? false;
  }
}

/** What to tell a person about a failure to open a local KV file, from SQLite's message. */
function localOpenHint(message: string): { hint: string; transient: boolean } {
  if (/malformed|not a database|file is encrypted|corrupt/i.test(message)) {
    return {
      hint:
        "the file is damaged (it is not a whole SQLite database; it was left as it is). Restore it from a backup with 'kvq import', or pass another --kv path.",
      transient: false,
    };
  }
  if (/locked|busy/i.test(message)) {
    return { hint: "another process holds it locked; try again shortly.", transient: true };
  }
  if (/readonly|read-only|permission|denied|unable to open/i.test(message)) {
    return {
      hint:
        "check that the file and its folder are writable by this user, or pass another --kv path.",
      transient: false,
    };
  }
  return { hint: "check the path, or pass another --kv path.", transient: false };
}

/**
 * Resolves `--kv` / `KVQ_KV` / the default into a location.
 *
 * @param value a path, `:memory:`, a URL, or undefined for the default.
 */
export function resolveKvLocation(value?: string | null): KvLocation {
  const v = value?.trim() || process.env.KVQ_KV?.trim() || DEFAULT_KV_PATH;
  if (/^https?:\/\//i.test(v)) return { location: v, remote: true, path: null };
  if (v === ":memory:") return { location: v, remote: false, path: null };
  const path = resolve(v);
  return { location: path, remote: false, path };
}

const SQLITE_MAGIC = "SQLite format 3\0";

/**
 * Opens KV at `location`, creating the folder of a local file when missing. A file that exists
 * but is not a SQLite database is refused untouched.
 *
 * @throws {KvOpenError} naming the location.
 */
export async function openKvAt(location: KvLocation): Promise<Kv> {
  if (location.path) {
    const path = location.path;
    try {
      mkdirSync(dirname(path), { recursive: true });
    } catch (error) {
      throw new KvOpenError(
        path,
        `its folder can't be created (${
          (error as Error).message
        }). Pass --kv with a writable path.`,
      );
    }
    // Opening it anyway (even SQLite's read-only mode, as checkIsKv does) would fail, or leave
    // journal files this user owns beside it, which the owner's cluster then can't write.
    const readOnly = readOnlyReason(path);
    if (readOnly) {
      throw new KvOpenError(
        path,
        `${readOnly}, and Deno KV opens a file only for writing. Open it as the user that owns it, or make it writable; 'kvq info', 'tasks', 'task' and 'export' read a copy of a read-only store.`,
      );
    }
    if (checkIsSqlite(path)) await checkIsKv(path);
  }
  try {
    // Opening switches a new file to WAL mode, which another process may hold locked briefly.
    return countWrites(await retryBusy(() => runtime.openKv(location.location)));
  } catch (error) {
    const message = (error as Error).message;
    const { hint, transient } = location.remote
      ? {
        hint: "check the URL, that the server is running, and DENO_KV_ACCESS_TOKEN.",
        transient: true,
      }
      : localOpenHint(message);
    throw new KvOpenError(location.location, `${message}; ${hint}`, { transient });
  }
}

/**
 * Counts the writes (atomic commits, `set`, `delete`, `enqueue`) made through `kv`, and their
 * mutations, in {@linkcode commitStats}, for the cluster's stop line and the benchmarks.
 */
function countWrites(kv: Kv): Kv {
  const atomic = kv.atomic.bind(kv);
  const patched = kv as unknown as Record<string, unknown>;
  /** Set while a direct write runs (synchronously: up to the commit it makes, if any). */
  let direct = false;
  patched.atomic = () => {
    const op = atomic();
    const commit = op.commit.bind(op);
    const sum = op.sum.bind(op);
    const summed: Deno.KvKey[] = [];
    let mutations = 0;
    op.sum = (key, n) => {
      summed.push(key);
      mutations++;
      return sum(key, n);
    };
    const ops = op as unknown as Record<string, (...args: unknown[]) => unknown>;
    for (const name of ["set", "delete", "enqueue", "min", "max"]) {
      const mutate = ops[name]!.bind(op);
      ops[name] = (...args: unknown[]) => {
        mutations++;
        return mutate(...args);
      };
    }
    op.commit = async () => {
      // A direct set/delete/enqueue that commits through an atomic of its own (`@deno/kv` on
      // Bun does) was counted already.
      if (!direct) {
        commitStats.commits++;
        commitStats.mutations += mutations;
      }
      try {
        return await commit();
      } catch (error) {
        // KV says only "non-U64 value": name the counter another program overwrote.
        if (/non-U64/i.test(String((error as Error)?.message))) {
          throw await foreignCounterError(kv, summed, error as Error);
        }
        throw error;
      }
    };
    return op;
  };
  // A value the KV engine itself can't decode (written by another program) makes a whole
  // getMany throw. Read such a batch key by key, and give each unreadable value as a marker
  // (see UNREADABLE) that the record decoders report as damaged, naming the key.
  const getMany = kv.getMany.bind(kv);
  const get = kv.get.bind(kv);
  const readOne = async (key: Deno.KvKey, options?: { consistency?: Deno.KvConsistencyLevel }) => {
    try {
      return await get(key, options);
    } catch (error) {
      if (!isUndecodable(error)) throw error;
      return unreadableEntry(key, error as Error);
    }
  };
  patched.get = readOne;
  patched.getMany = async (
    keys: Deno.KvKey[],
    options?: { consistency?: Deno.KvConsistencyLevel },
  ) => {
    try {
      return await getMany(keys, options);
    } catch (error) {
      if (!isUndecodable(error)) throw error;
      return await Promise.all(keys.map((key) => readOne(key, options)));
    }
  };
  for (const name of ["set", "delete", "enqueue"] as const) {
    const write = (kv[name] as (...args: unknown[]) => unknown).bind(kv);
    patched[name] = (...args: unknown[]) => {
      commitStats.commits++;
      commitStats.mutations++;
      direct = true;
      try {
        return write(...args);
      } finally {
        direct = false;
      }
    };
  }
  return kv;
}

/**
 * Refuses an SQLite file of another program, before Deno KV adds its tables to it and switches
 * it to WAL mode: one whose tables do not include KV's `kv`. It is read through `node:sqlite`,
 * read-only; a file that can't be read that way is left to Deno KV to judge.
 */
async function checkIsKv(path: string): Promise<void> {
  let tables: string[];
  try {
    const { DatabaseSync } = await import("node:sqlite");
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      tables = (db.prepare("select name from sqlite_master where type = 'table'").all() as {
        name: string;
      }[]).map((r) => r.name);
    } finally {
      db.close();
    }
  } catch {
    return;
  }
  if (tables.length === 0 || tables.includes("kv")) return;
  const shown = tables.slice(0, 5).join(", ") + (tables.length > 5 ? ", …" : "");
  throw new KvOpenError(
    path,
    `it is an SQLite database of another program (its tables: ${shown}), not a KV store; it was left untouched. Pass --kv with another path.`,
  );
}

/** Refuses a folder or a file that is not SQLite; true when there is an SQLite file to check. */
/** Whether KV failed to decode a stored value (not a kvq value: another program wrote it). */
export function isUndecodable(error: unknown): boolean {
  // Deno: "could not deserialize value"; `@deno/kv` on Bun: "decode error: Unsupported …".
  return /could not deserialize|deserializ|^decode error:/i.test(
    String((error as Error)?.message),
  );
}

/**
 * The versionstamp given to an unreadable entry: no real commit has it, so an atomic check
 * against it fails and nothing is ever written on the strength of such a read.
 */
const UNREADABLE_STAMP = "00000000000000000000";

/** Whether `entry` stands for a value KV could not decode (see {@linkcode isUndecodable}). */
export function isUnreadable(entry: Deno.KvEntryMaybe<unknown>): boolean {
  return entry.versionstamp === UNREADABLE_STAMP;
}

/** An entry for a value KV could not decode: its value is the {@linkcode UNREADABLE} marker. */
function unreadableEntry(key: Deno.KvKey, error: Error): Deno.KvEntry<unknown> {
  return { key, value: { [UNREADABLE]: error.message }, versionstamp: UNREADABLE_STAMP };
}

/** The error for a commit whose counter sums met a value that is not a counter. */
async function foreignCounterError(
  kv: Kv,
  keys: readonly Deno.KvKey[],
  cause: Error,
): Promise<Error> {
  const bad: string[] = [];
  for (const key of [...new Map(keys.map((k) => [JSON.stringify(k), k])).values()]) {
    let entry: Deno.KvEntryMaybe<unknown>;
    try {
      entry = await kv.get(key);
    } catch {
      bad.push(`${JSON.stringify(key)} (holds a value that can't be read)`);
      continue;
    }
    const v = entry.value as { value?: unknown } | null;
    if (entry.versionstamp !== null && typeof v?.value !== "bigint") {
      bad.push(`${JSON.stringify(key)} (holds ${typeof entry.value})`);
    }
  }
  return new Error(
    bad.length > 0
      ? `A kvq counter in KV holds a value that is not a counter: ${
        bad.join(", ")
      }. Another program wrote it; nothing of this commit was stored. Delete that key, or restore the store from a backup (kvq import).`
      : `A counter sum was refused: ${cause.message}`,
    { cause },
  );
}

function checkIsSqlite(path: string): boolean {
  let size: number;
  try {
    const stat = statSync(path);
    if (stat.isDirectory()) {
      throw new KvOpenError(
        path,
        "it is a folder. Pass --kv with a file path such as ./kv.sqlite3.",
      );
    }
    size = stat.size;
  } catch (error) {
    if (error instanceof KvOpenError) throw error;
    return false; // does not exist yet: it will be created
  }
  if (size === 0) return false;
  // Closing any descriptor of a SQLite file drops every POSIX lock this process holds on it, so
  // SQLite in another process may take it for unused and reset its shared memory: SIGBUS and a
  // corrupt file. Never open the file while this process already has it open.
  if (openInThisProcess(path)) return false;
  const head = new Uint8Array(16);
  const fd = openSync(path, "r");
  try {
    readSync(fd, head, 0, 16, 0);
  } finally {
    closeSync(fd);
  }
  if (new TextDecoder().decode(head) !== SQLITE_MAGIC) {
    throw new KvOpenError(
      path,
      "the file exists but is not a KV database (no SQLite header); it was left untouched. Pass --kv with another path.",
    );
  }
  return true;
}

/** Whether this process has `path` open already (Linux: its /proc fd table). */
function openInThisProcess(path: string): boolean {
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return false;
  }
  let fds: string[];
  try {
    fds = readdirSync("/proc/self/fd");
  } catch {
    // Not Linux: be safe and skip the check rather than risk the locks.
    return true;
  }
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === real) return true;
    } catch {
      // the descriptor closed meanwhile
    }
  }
  return false;
}
