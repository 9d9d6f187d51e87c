/**
 * `kvq doctor`: the damaged records of each queue, set aside when a claim or promotion could not
 * decode them; `--scan` finds those no claim has met, `--delete` removes them.
 *
 * @module
 */
import type { Command } from "../command.ts";
import { type DamagedEntry, deleteDamaged, listDamaged, scanDamaged } from "../../store/damaged.ts";
import { openQueues } from "./info.ts";

/** `kvq doctor [--scan] [--delete]` */
export const doctorCommand: Command = {
  name: "doctor",
  readsOnly: true,
  readsCopy: (_positionals, values) => values.delete !== true,
  summary: "List (and find, and delete) damaged records that kvq set aside",
  usage: "kvq doctor [--queue A,B] [--scan] [--delete] [--json]",
  options: { scan: { type: "boolean" }, delete: { type: "boolean" } },
  help: `  --queue A,B   only these queues (default: every queue in the store)
  --scan        read every task record to find damaged ones no claim has met yet (a finished
                task, say), and set them aside too; reads the whole store
  --delete      delete the damaged records listed, with their entries ('kvq delete ID' does one)

A record is damaged when its stored value can't be decoded: another program wrote it, or the file
was broken. A cluster that meets one sets it aside and goes on; 'kvq export' keeps its raw bytes.
Exit codes: 0 when no damaged record is left, 1 when some are.`,
  async run(ctx) {
    const opened = await openQueues(ctx);
    const report: { queue: string; read?: number; damaged: DamagedEntry[]; deleted: number }[] = [];
    try {
      for (const store of opened.stores) {
        let read: number | undefined;
        if (ctx.values.scan === true) {
          read = (await scanDamaged(store, (n) => {
            if (ctx.progress) ctx.err(`kvq doctor: ${store.queue}: ${n} records read…`);
          })).read;
        }
        const damaged = await listDamaged(store);
        let deleted = 0;
        if (ctx.values.delete === true) {
          for (const d of damaged) if (await deleteDamaged(store, d.id)) deleted++;
        }
        report.push({
          queue: store.queue,
          ...(read !== undefined ? { read } : {}),
          damaged,
          deleted,
        });
      }
    } finally {
      opened.close();
    }
    const left = report.reduce((n, q) => n + q.damaged.length - q.deleted, 0);
    if (ctx.json) {
      ctx.out(JSON.stringify(report));
      return left > 0 ? 1 : 0;
    }
    for (const q of report) {
      const scanned = q.read !== undefined ? ` (${q.read} records read)` : "";
      if (q.damaged.length === 0) {
        ctx.out(`queue ${q.queue}: no damaged records${scanned}`);
        continue;
      }
      ctx.out(`queue ${q.queue}: ${q.damaged.length} damaged record(s)${scanned}`);
      for (const d of q.damaged) {
        const when = d.at ? new Date(d.at).toISOString() : "-";
        ctx.out(`  ${d.id}  set aside ${when}  ${d.bytes ?? "?"} bytes  ${d.reason}`);
      }
      if (q.deleted > 0) ctx.out(`  deleted ${q.deleted}`);
    }
    if (left > 0 && ctx.values.delete !== true) {
      ctx.out(
        "Delete them with 'kvq doctor --delete' (after 'kvq export', which keeps their bytes).",
      );
    }
    return left > 0 ? 1 : 0;
  },
};
