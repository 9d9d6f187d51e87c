/**
 * `kvq import`: restore an export. The whole file is read and checked first; only then is
 * anything written, in batched commits.
 *
 * @module
 */
import { createReadStream, existsSync, statSync } from "node:fs";
import { createInterface } from "node:readline";
import { type Command, UsageError } from "../command.ts";
import {
  type ExportEntry,
  ExportLineError,
  holdsKvqData,
  importEntries,
  parseExportLine,
  type RawExportEntry,
} from "../../store/export.ts";
import { formatKey } from "../../store/keys.ts";
import { KvHandle } from "../../store/store.ts";
import { progressLine } from "./export.ts";

/** How many bad lines are listed before the rest are only counted. */
const SHOWN_ERRORS = 10;

async function* lines(file: string): AsyncGenerator<[string, number]> {
  const input = createReadStream(file, { encoding: "utf8" });
  const reader = createInterface({ input, crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const line of reader) yield [line, ++n];
  } finally {
    reader.close();
    input.destroy();
  }
}

/** The entries of an export, skipping malformed lines (reported by the first pass). */
async function* goodEntries(file: string): AsyncGenerator<ExportEntry> {
  for await (const [text, n] of lines(file)) {
    let entry: ExportEntry | RawExportEntry | null;
    try {
      entry = parseExportLine(text, n);
    } catch {
      continue;
    }
    if (entry && !("raw" in entry)) yield entry;
  }
}

/** `kvq import FILE [--continue] [--force]` */
export const importCommand: Command = {
  name: "import",
  summary: "Restore a backup made by kvq export",
  usage: "kvq import FILE [--continue] [--force]",
  options: { continue: { type: "boolean" }, force: { type: "boolean" } },
  help: `  FILE         an export (NDJSON) written by kvq export
  --continue   skip malformed lines (each is reported) and import the rest; without it, one
               malformed line means nothing is imported
  --force      import into a store that already holds kvq keys (keys in the file overwrite
               theirs; others are kept)

The file is checked in full before anything is written; then it is written in batches of
commits within the KV limits. Restore into an empty store with the clusters stopped.

Example:
  kvq import backup.ndjson --kv /var/lib/kvq/kv.sqlite3`,
  async run(ctx) {
    const file = ctx.positionals[0];
    if (!file) throw new UsageError("Name the export to restore: kvq import FILE");
    if (ctx.positionals.length > 1) {
      throw new UsageError(`Unexpected argument ${JSON.stringify(ctx.positionals[1])}`);
    }
    if (!existsSync(file) || !statSync(file).isFile()) {
      ctx.err(`kvq import: ${file} is not a file. Pass the path of a file written by kvq export.`);
      return 4;
    }
    const keepGoing = ctx.values.continue === true;
    // Pass 1: check every line.
    const errors: ExportLineError[] = [];
    let entries = 0;
    let total = 0;
    const raw: Deno.KvKey[] = [];
    for await (const [text, n] of lines(file)) {
      total = n;
      try {
        const entry = parseExportLine(text, n);
        if (entry && "raw" in entry) raw.push(entry.key);
        else if (entry !== null) entries++;
      } catch (error) {
        if (!(error instanceof ExportLineError)) throw error;
        errors.push(error);
        if (n === 1) break; // not an export at all
      }
    }
    if (total === 0) errors.push(new ExportLineError(1, "the file is empty"));
    for (const e of errors.slice(0, SHOWN_ERRORS)) ctx.err(`kvq import: ${file}: ${e.message}`);
    if (errors.length > SHOWN_ERRORS) {
      ctx.err(`kvq import: ... and ${errors.length - SHOWN_ERRORS} more malformed lines`);
    }
    const fatal = errors.some((e) => e.line === 1);
    if (errors.length > 0 && (!keepGoing || fatal)) {
      ctx.err(
        fatal
          ? "kvq import: nothing was imported: this is not a file written by kvq export."
          : "kvq import: nothing was imported. Fix the lines above, or pass --continue to import the others.",
      );
      return 1;
    }
    const handle = await KvHandle.open({ kv: ctx.kv });
    const progress = progressLine(ctx.progress === true);
    let written: number;
    try {
      if (ctx.values.force !== true && await holdsKvqData(handle.kv)) {
        ctx.err(
          `kvq import: the KV store at ${handle.location.location} already holds kvq data; nothing was imported. Import into an empty store (another --kv), or pass --force to write over it.`,
        );
        return 1;
      }
      // Pass 2: write.
      written = await importEntries(handle.kv, goodEntries(file), {
        onProgress: (done) => {
          const width = 30;
          const filled = Math.round(done / Math.max(1, entries) * width);
          progress.update(
            `kvq import: [${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${entries}`,
          );
        },
      });
    } finally {
      progress.done();
      handle.close();
    }
    if (raw.length > 0) {
      ctx.err(
        `kvq import: left out ${raw.length} value${
          raw.length === 1 ? "" : "s"
        } that the export kept raw (KV could not decode ${
          raw.length === 1 ? "it" : "them"
        } in the exported store): ${raw.slice(0, SHOWN_ERRORS).map(formatKey).join(", ")}${
          raw.length > SHOWN_ERRORS ? ", …" : ""
        }. Their bytes stay in ${file}.`,
      );
    }
    if (ctx.json) {
      ctx.out(
        JSON.stringify({
          file,
          imported: written,
          skipped: errors.map((e) => e.line),
          raw: raw.length,
        }),
      );
    } else {
      ctx.out(
        `Imported ${written} keys from ${file} into ${handle.location.location}${
          errors.length ? `; skipped ${errors.length} malformed lines` : ""
        }`,
      );
    }
    return 0;
  },
};
