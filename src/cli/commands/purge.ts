/**
 * `kvq purge`: delete finished tasks of one state that stopped before a cutoff, walking the
 * `done` index (ordered by stop time) only up to that cutoff (see `store/purge.ts`). Each
 * delete checks the record's versionstamp, so a task retried meanwhile is left alone; running
 * tasks are never deleted.
 *
 * @module
 */
import { type Command, UsageError } from "../command.ts";
import { FINAL_STATES, type TaskState } from "../../store/keys.ts";
import { purgeFinished } from "../../store/purge.ts";

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/**
 * Parses a duration such as `30s`, `15m`, `2h`, `7d` or `2w` into milliseconds.
 *
 * @throws {RangeError} naming the value.
 */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$/i.exec(text);
  if (!m) {
    throw new RangeError(
      `A duration is a number and a unit (ms, s, m, h, d, w), e.g. 30s, 15m, 2h, 7d: received ${
        JSON.stringify(text)
      }`,
    );
  }
  return Math.round(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
}

/** `kvq purge --state S --older-than D [--dry-run]` */
export const purgeCommand: Command = {
  name: "purge",
  summary: "Delete finished tasks of a state older than a duration",
  usage: "kvq purge --state succeeded|failed|cancelled --older-than DURATION [--dry-run]",
  options: {
    state: { type: "string" },
    "older-than": { type: "string" },
    "dry-run": { type: "boolean" },
  },
  help: `  --state S          succeeded, failed or cancelled
  --older-than D     tasks that stopped more than D ago: 30s, 15m, 2h, 7d, 2w
  --dry-run          count them, delete nothing

A task that changed while being purged (retried, say) is skipped. Running tasks are never
touched.

Example:
  kvq purge --state succeeded --older-than 7d`,
  async run(ctx) {
    if (ctx.positionals.length > 0) {
      throw new UsageError(`Unexpected argument ${JSON.stringify(ctx.positionals[0])}`);
    }
    const state = ctx.values.state;
    if (typeof state !== "string" || !FINAL_STATES.has(state as TaskState)) {
      throw new UsageError(
        `--state must be one of ${[...FINAL_STATES].join(", ")}: received ${
          JSON.stringify(state ?? null)
        }`,
      );
    }
    const olderThan = ctx.values["older-than"];
    if (typeof olderThan !== "string") {
      throw new UsageError("Pass --older-than, e.g. --older-than 7d");
    }
    let age: number;
    try {
      age = parseDuration(olderThan);
    } catch (error) {
      throw new UsageError(`--older-than: ${(error as Error).message}`);
    }
    const dryRun = ctx.values["dry-run"] === true;
    const queue = await ctx.queue();
    const store = queue.store;
    const cutoff = store.now() - age;
    const { deleted, stale: skipped } = await purgeFinished(store, state as TaskState, {
      before: cutoff,
      dryRun,
    });
    if (ctx.json) ctx.out(JSON.stringify({ state, cutoff, dryRun, deleted, skipped }));
    else {
      ctx.out(
        `${
          dryRun ? "Would delete" : "Deleted"
        } ${deleted} ${state} tasks of queue ${store.queue} that stopped before ${
          new Date(cutoff).toISOString()
        }${skipped ? ` (${skipped} skipped: they changed meanwhile)` : ""}`,
      );
    }
    return 0;
  },
};
