/**
 * Reading a KV file this user may not write. Deno KV (on Deno and in `@deno/kv` on Bun) has no
 * read-only mode: opening a file sets it up for writing, and fails with "attempt to write a
 * readonly database" when SQLite can't. So a command that reads once (`kvq info`, `tasks`,
 * `task`, `export`…) reads a private copy of such a file, made when it starts; the original is
 * never opened by SQLite, so nothing of it changes and no journal file is left beside it.
 *
 * @module
 */
import {
  accessSync,
  chmodSync,
  constants,
  copyFileSync,
  existsSync,
  mkdtempSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";

/**
 * Why this user can't open the local KV file at `path` for writing, or null when it can (or
 * there is no file at `path`).
 *
 * SQLite needs write access to the file, and to its `-wal` and `-shm` journal files beside it:
 * to the folder, when they have to be created.
 */
export function readOnlyReason(path: string): string | null {
  // A folder at the path, or nothing yet: the open reports or creates it.
  if (!existsSync(path) || !statSync(path).isFile()) return null;
  if (!writable(path)) return `the file is read-only for this user (${ownership(path)})`;
  const journals = [`${path}-wal`, `${path}-shm`];
  for (const j of journals) {
    if (existsSync(j) && !writable(j)) {
      return `its journal file ${basename(j)} is read-only for this user (${ownership(j)})`;
    }
  }
  if (journals.some((j) => !existsSync(j)) && !writable(dirname(path))) {
    return `its folder ${
      dirname(path)
    } is read-only for this user, and SQLite must create its journal files there (${
      ownership(dirname(path))
    })`;
  }
  return null;
}

function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function ownership(path: string): string {
  const s = statSync(path);
  return `mode ${(s.mode & 0o777).toString(8).padStart(4, "0")}, owner uid ${s.uid}`;
}

/** A private copy of a KV file, removed on dispose. */
export interface StoreCopy {
  /** The path of the copy, to open instead of the original. */
  path: string;
  /** Its size in bytes (the file and its write-ahead log). */
  bytes: number;
  [Symbol.dispose](): void;
}

/**
 * Copies the KV file at `path`, with its write-ahead log, into a new private folder (mode 0700)
 * under the system's temporary folder. A copy made while the owner's cluster wrote is made again
 * (up to 5 times), so that it is one state of the store, not a mix of two.
 *
 * @throws {Error} when the file can't be read, naming it.
 */
export function copyStore(path: string): StoreCopy {
  const dir = mkdtempSync(join(tmpdir(), "kvq-copy-"));
  const copy = join(dir, basename(path));
  const wal = `${path}-wal`;
  const stamp = () =>
    [path, wal].map((p) => {
      try {
        const s = statSync(p);
        return `${s.size}:${s.mtimeMs}`;
      } catch {
        return "-";
      }
    }).join("|");
  try {
    for (let attempt = 0;; attempt++) {
      const before = stamp();
      copyFileSync(path, copy);
      rmSync(`${copy}-wal`, { force: true });
      if (existsSync(wal)) copyFileSync(wal, `${copy}-wal`);
      if (stamp() === before || attempt === 4) break;
    }
    // The copy keeps the original's mode (0444, say); KV must be able to open it for writing.
    chmodSync(copy, 0o600);
    if (existsSync(`${copy}-wal`)) chmodSync(`${copy}-wal`, 0o600);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(
      `Cannot read the KV file ${path} to copy it: ${
        (error as Error).message
      }. Run the command as a user that can read the file.`,
      { cause: error },
    );
  }
  const size = (p: string) => existsSync(p) ? statSync(p).size : 0;
  return {
    path: copy,
    bytes: size(copy) + size(`${copy}-wal`),
    [Symbol.dispose]() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
