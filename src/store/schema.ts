/**
 * The layout version of a KV file, and the upgrade from older layouts.
 *
 * `["kvq_schema"]` holds `{"version": N}`. A file without it that holds kvq data was written by
 * a release before layout versions (layout 1). Opening a file checks the version: a fresh file
 * gets the current one; an older layout is refused with a message that names `kvq migrate`; a
 * newer one is refused with a message to upgrade kvq.
 *
 * Layouts:
 * - 1: a `lease, id` key per running task, holding its cluster, worker and attempt; a
 *   `done_by, func|group, value, state, stoppedAt, id` entry per finished task.
 * - 2: the running record is the lease; one `lease, cluster, claim` entry per claim commit
 *   names the tasks it took (see `leases.ts`). No `done_by` entries: a `done` entry's value
 *   names the task's func and group.
 * - 3: a `func, func, id` look-up per task (empty), beside its `name` and `group` ones, so a
 *   search or a listing by func reads an index instead of every record. Enqueue writes a
 *   `name_tail, id` entry in place of the `name` look-up, which a cluster writes later (see
 *   `names.ts`).
 * - 4: a bulk enqueue writes one `name_tail, lastId, "b"` entry per commit (its tasks' ids,
 *   names and funcs) instead of a `name_tail` entry and a `func` look-up per task; a cluster
 *   writes both look-ups later. A release of layout 3 would take that entry's last part for an
 *   id and drop the entry, so it must not open such a file. Nothing is converted: a layout-3
 *   file is valid layout 4, and `kvq migrate` only writes the version.
 * - 5: an outcome commit of a cluster writes one `done, state, stoppedAt, firstId, "b"` entry
 *   per state naming the tasks it finished, instead of a `done` entry per task (see
 *   `done_index.ts`). A release of layout 4 would take `"b"` for a task id and drop the entry.
 *   Nothing is converted: a layout-4 file's per-task entries are read as they are.
 *
 * `migrate.ts` upgrades an older layout.
 *
 * @module
 */
import type { Kv } from "../runtime/mod.ts";
import { ROOT } from "./keys.ts";

/** The layout this release writes. */
export const SCHEMA_VERSION = 5;

/** The key of the layout version. */
export const SCHEMA_KEY: Deno.KvKey = ["kvq_schema"];

/** A KV file of a layout this release does not run on. */
export class SchemaError extends Error {
  override name = "SchemaError";
  /** The file's layout version. */
  readonly version: number;

  constructor(message: string, version: number) {
    super(message);
    this.version = version;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The file's layout version: 0 for a file with no kvq data, 1 for one from before versions. */
export async function schemaVersion(kv: Kv): Promise<number> {
  const entry = await kv.get(SCHEMA_KEY, { consistency: "strong" });
  if (entry.versionstamp !== null) {
    try {
      const v = JSON.parse(decoder.decode(entry.value as Uint8Array))?.version;
      if (Number.isSafeInteger(v) && v >= 1) return v;
    } catch {
      // fall through
    }
    throw new SchemaError(
      `The layout version at ${
        JSON.stringify(SCHEMA_KEY)
      } is damaged; restore the file from a backup or 'kvq export' it with the release that wrote it.`,
      NaN,
    );
  }
  for await (const _ of kv.list({ prefix: [ROOT] }, { limit: 1 })) return 1;
  return 0;
}

/**
 * Checks that the file at `where` has this release's layout, writing it on a fresh file.
 *
 * @throws {SchemaError} for an older layout (it names `kvq migrate`) or a newer one.
 */
export async function ensureSchema(kv: Kv, where: string): Promise<void> {
  const version = await schemaVersion(kv);
  if (version === SCHEMA_VERSION) return;
  if (version === 0) {
    // Fresh: claim the current layout, unless someone else wrote a version meanwhile.
    const ok = await kv.atomic().check({ key: SCHEMA_KEY, versionstamp: null })
      .set(SCHEMA_KEY, encodeVersion(SCHEMA_VERSION)).commit();
    if (ok.ok) return;
    return await ensureSchema(kv, where);
  }
  if (version > SCHEMA_VERSION) {
    throw new SchemaError(
      `KV file ${where} has kvq layout ${version}, newer than this kvq's (${SCHEMA_VERSION}); upgrade kvq to open it.`,
      version,
    );
  }
  throw new SchemaError(
    `KV file ${where} has kvq layout ${version}, from an older kvq; this kvq needs layout ${SCHEMA_VERSION}. Stop every cluster on it, then run 'kvq migrate --kv ${where}' (it keeps every task).`,
    version,
  );
}

/** A layout version's value. */
export function encodeVersion(version: number): Uint8Array {
  return encoder.encode(JSON.stringify({ version }));
}
