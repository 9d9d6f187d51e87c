/**
 * `kvq info --history D`: a queue's per-minute history (see `store/stats.ts`) on a terminal, as a
 * sparkline of attempts ended and a table of bins: started, succeeded, failed, retried, mean run
 * and wait time.
 *
 * @module
 */
import type { HistoryBin } from "../store/stats.ts";
import { duration } from "../web/format.ts";

/**
 * The longest history shown: 31 days. The clusters keep 72 hours by default (`--history-keep`);
 * older bins read as zeros.
 */
export const MAX_HISTORY_MS = 31 * 24 * 3_600_000;

/** Rows of the table: the span is cut into about this many bins. */
const ROWS = 24;

/** About how many bins (characters of the sparkline) a history is read in. */
export const SPARK_BINS = 60;

const BARS = "▁▂▃▄▅▆▇█";

/** The bin widths a history is read in, smallest first: whole minutes that read well. */
const STEPS = [1, 5, 10, 15, 30, 60, 120, 180, 360, 720].map((m) => m * 60_000);

/** The bin width for about `n` bins over `spanMs`. */
export function binFor(spanMs: number, n: number): number {
  return STEPS.find((s) => spanMs / s <= n) ?? STEPS[STEPS.length - 1]!;
}

/** A sparkline of `values`, scaled to their largest. */
export function sparkline(values: readonly number[]): string {
  const max = Math.max(0, ...values);
  return values.map((v) =>
    v <= 0 ? " " : BARS[Math.min(BARS.length - 1, Math.floor((v / max) * (BARS.length - 1)))]
  ).join("");
}

/** Sums bins into groups of `k`, each at its first bin's time. */
function regroup(bins: readonly HistoryBin[], k: number): HistoryBin[] {
  const out: HistoryBin[] = [];
  for (let i = 0; i < bins.length; i += k) {
    const group = bins.slice(i, i + k);
    const sum = { ...group[0]! };
    for (const b of group.slice(1)) {
      for (const f of Object.keys(b) as (keyof HistoryBin)[]) if (f !== "at") sum[f] += b[f];
    }
    out.push(sum);
  }
  return out;
}

function time(at: number, spanMs: number): string {
  const iso = new Date(at).toISOString();
  return spanMs > 24 * 3_600_000 ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : iso.slice(11, 16);
}

/**
 * The lines of one queue's history over `spanMs`, from bins read `binFor(spanMs, SPARK_BINS)` wide
 * (times in UTC).
 */
export function historyLines(queue: string, bins: readonly HistoryBin[], spanMs: number): string[] {
  const ended = bins.reduce((n, b) => n + b.ended, 0);
  const lines = [
    `queue ${queue}: the last ${duration(spanMs)}, ${
      ended.toLocaleString("en-US")
    } attempts ended (UTC)`,
    `  ended   |${sparkline(bins.map((b) => b.ended))}|`,
    `  failed  |${sparkline(bins.map((b) => b.failed))}|`,
  ];
  const rows = regroup(bins, Math.max(1, Math.ceil(bins.length / ROWS)));
  const head = ["from", "started", "succeeded", "failed", "retried", "mean run", "mean wait"];
  const table = rows.map((b) => [
    time(b.at, spanMs),
    String(b.started),
    String(b.succeeded),
    String(b.failed),
    String(b.retried),
    b.ended > 0 ? duration(b.runMs / b.ended) : "-",
    b.ended > 0 ? duration(b.waitMs / b.ended) : "-",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
  const row = (cells: string[]) =>
    "  " + cells.map((c, i) => i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join("  ");
  lines.push(row(head), ...table.map(row));
  return lines;
}
