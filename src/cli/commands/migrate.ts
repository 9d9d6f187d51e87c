/**
 * `kvq migrate`: upgrade a KV file written by an older kvq to this release's layout (see
 * `store/migrate.ts`).
 *
 * @module
 */
import { type Command, UsageError } from "../command.ts";
import { migrate } from "../../store/migrate.ts";
import { KvHandle } from "../../store/store.ts";

/** `kvq migrate [--force]` */
export const migrateCommand: Command = {
  name: "migrate",
  summary: "Upgrade a KV file written by an older kvq to this release's layout",
  usage: "kvq migrate [--kv PATH] [--force]",
  options: { force: { type: "boolean" } },
  help: `  --force    migrate even though a cluster's heartbeat is recent (it crashed, say)

Stop every cluster on the file first: an older cluster can't run on the new layout. Every task
is kept. The upgrade goes in small commits and writes the new layout version last, so if it is
interrupted, run it again: it carries on. A file that is already current is left as it is.

Example:
  kvq migrate --kv /var/lib/app/kv.sqlite3`,
  async run(ctx) {
    if (ctx.positionals.length > 0) {
      throw new UsageError(`Unexpected argument ${JSON.stringify(ctx.positionals[0])}`);
    }
    await using handle = await KvHandle.open({ kv: ctx.kv, checkSchema: false });
    const report = await migrate(handle.kv, { force: ctx.values.force === true });
    if (ctx.json) ctx.out(JSON.stringify({ kv: handle.location.location, ...report }));
    else if (report.from === report.to) {
      ctx.out(`${handle.location.location} already has kvq layout ${report.to}; nothing to do.`);
    } else {
      ctx.out(
        `${handle.location.location}: kvq layout ${
          report.from === 0 ? "none (empty)" : report.from
        } → ${report.to}; ${report.leases} running task lease(s) moved to claim entries, ${report.doneBy} done_by entries dropped, ${report.funcs} func look-up(s) added.`,
      );
    }
    return 0;
  },
};
