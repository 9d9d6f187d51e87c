/**
 * `kvq export`: back up every key kvq keeps, as NDJSON (see `src/store/export.ts`).
 *
 * @module
 */
import { closeSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { resolve } from "node:path";
import process from "node:process";
import { type Command, UsageError } from "../command.ts";
import { exportLines } from "../../store/export.ts";
import { formatKey } from "../../store/keys.ts";
import { KvHandle } from "../../store/store.ts";
import { isUndecodable } from "../../store/kv.ts";
import { bytes as formatBytes } from "../../web/format.ts";

/** A line on stderr rewritten in place, at most ten times a second; nothing when off. */
export function progressLine(on: boolean): { update(text: string): void; done(): void } {
  let last = 0;
  let shown = false;
  return {
    update(text) {
      if (!on || Date.now() - last < 100) return;
      last = Date.now();
      shown = true;
      process.stderr.write(`\r${text}\x1b[K`);
    },
    done() {
      if (shown) process.stderr.write("\r\x1b[K");
    },
  };
}

/** `kvq export [--out FILE]` */
export const exportCommand: Command = {
  name: "export",
  readsOnly: true,
  readsCopy: true,
  summary: "Back up every kvq key as NDJSON (to stdout or --out FILE)",
  usage: "kvq export [--out FILE]",
  options: { out: { type: "string", short: "o" } },
  help: `  -o, --out FILE   write to FILE (written aside, then renamed: never half a backup)

One JSON object per line, in key order: a header, then {"key": [...], "value": "<base64>"} or
{"key": [...], "u64": "<decimal>"}. Key part types are kept. A value KV can't decode (another
program wrote it, or the file was damaged) is kept as stored, {"key": [...], "raw": "<base64>",
"encoding": N}, and named on stderr; import leaves it out. Expiry is not kept (heartbeats
get theirs back on import). Entries written during the export may be missed: stop the clusters, or
take it when idle, for an exact snapshot. Restore with kvq import.

Examples:
  kvq export --out backup-$(date +%F).ndjson
  kvq export --kv /var/lib/kvq/kv.sqlite3 | gzip > backup.ndjson.gz`,
  async run(ctx) {
    if (ctx.positionals.length > 0) {
      throw new UsageError(`Unexpected argument ${JSON.stringify(ctx.positionals[0])}`);
    }
    const out = typeof ctx.values.out === "string" ? resolve(ctx.values.out) : null;
    const handle = await KvHandle.open({ kv: ctx.kv });
    const progress = progressLine(ctx.progress === true);
    let keys = -1; // the header is not a key
    let size = 0;
    const tmp = out ? `${out}.${process.pid}.partial` : null;
    const fd = tmp ? openSync(tmp, "w") : null;
    try {
      let chunk: string[] = [];
      let chunkBytes = 0;
      const flush = () => {
        if (chunk.length === 0) return;
        if (fd !== null) writeSync(fd, `${chunk.join("\n")}\n`);
        else ctx.out(chunk.join("\n"));
        chunk = [];
        chunkBytes = 0;
      };
      const raw: Deno.KvKey[] = [];
      const options = {
        ...(handle.location.path
          ? { file: handle.location.path, release: () => handle.close() }
          : {}),
        onRaw: (key: Deno.KvKey) => raw.push(key),
      };
      for await (const line of exportLines(handle.kv, options)) {
        chunk.push(line);
        chunkBytes += line.length + 1;
        size += line.length + 1;
        keys++;
        if (chunkBytes > 256 * 1024) flush();
        progress.update(`kvq export: ${keys.toLocaleString("en-US")} keys, ${formatBytes(size)}`);
      }
      flush();
      if (raw.length > 0) {
        ctx.err(
          `kvq export: kept ${raw.length} value${
            raw.length === 1 ? "" : "s"
          } raw, as stored, because KV can't decode them (another program wrote them, or the file was damaged): ${
            raw.slice(0, 10).map(formatKey).join(", ")
          }${
            raw.length > 10 ? ", …" : ""
          }. 'kvq import' leaves such values out; 'kvq doctor --scan' finds the damaged tasks.`,
        );
      }
      if (fd !== null) closeSync(fd);
      if (tmp && out) renameSync(tmp, out);
    } catch (error) {
      if (fd !== null) {
        try {
          closeSync(fd);
        } catch {
          // already closed
        }
      }
      if (tmp) rmSync(tmp, { force: true });
      if (isUndecodable(error)) {
        // KV's list stops at a value its engine can't decode, with no way past it.
        throw new Error(
          `A stored value${keys > 0 ? ` after ${keys} keys` : ""} can't be decoded by KV (${
            (error as Error).message
          }), so the export stopped and wrote nothing. Back up the KV file itself (copy it with its -wal file while no cluster writes), then 'kvq doctor --scan' and 'kvq doctor --delete' to find and remove the damaged record.`,
          { cause: error },
        );
      }
      throw error;
    } finally {
      progress.done();
      handle.close();
    }
    if (out) {
      if (ctx.json) ctx.out(JSON.stringify({ out, keys, bytes: size }));
      else ctx.err(`Exported ${keys} keys (${formatBytes(size)}) to ${out}`);
    }
    return 0;
  },
};
