/**
 * `kvq task`: show one task.
 *
 * @module
 */
import { storedBytes } from "../../store/damaged.ts";
import { type Command, UsageError } from "../command.ts";
import { taskDetail } from "../_common.ts";
import { Buffer } from "node:buffer";
import { NoSuchTaskError } from "../../store/errors.ts";
import { CorruptRecordError } from "../../task/record.ts";

/** `kvq task ID|NAME` */
export const taskCommand: Command = {
  name: "task",
  readsOnly: true,
  readsCopy: true,
  summary: "Show one task: args, state, timeline, errors, progress",
  usage: "kvq task ID|NAME",
  options: {},
  help: `  ID|NAME   the task id or its human name`,
  async run(ctx) {
    const ref = ctx.positionals[0];
    if (!ref) throw new UsageError("Name the task: kvq task ID|NAME");
    const queue = await ctx.queue();
    let record;
    try {
      record = await queue.fetch(ref);
    } catch (error) {
      if (!(error instanceof CorruptRecordError)) throw error;
      // What can be said of a record that can't be read: its key, size and first bytes.
      const bytes = await storedBytes(queue.store, error.key);
      ctx.err(error.message.replace(/ It was skipped;.*$/, ""));
      if (bytes) {
        ctx.err(
          `  ${bytes.length} bytes stored, starting ${
            Buffer.from(bytes.subarray(0, 32)).toString("hex")
          }`,
        );
      }
      ctx.err(
        `  ${
          bytes ? "'kvq export' keeps its raw bytes; " : ""
        }'kvq delete ${ref}' removes it; 'kvq doctor' lists every damaged record.`,
      );
      return 1;
    }
    if (record === null) {
      ctx.err(new NoSuchTaskError(ref, queue.name).message);
      return 4;
    }
    ctx.out(ctx.json ? JSON.stringify(record) : taskDetail(record));
    return 0;
  },
};
