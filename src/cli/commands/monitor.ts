/**
 * `kvq monitor` (Django Q's `qmonitor`): a live terminal view of the clusters, drawn from their
 * heartbeats. It reads again when the change feed says KV changed (throttled to once a second)
 * and at least every two seconds (a heartbeat's interval; remote KV has no feed for heartbeats),
 * and redraws each second so elapsed times move. No loop spins: timers and events only.
 *
 * Keys: `q` or Ctrl-C quits. On a terminal, stdin is put in raw mode so a key needs no Enter.
 *
 * @module
 */
import process from "node:process";
import { type Command, UsageError } from "../command.ts";
import { readStateCounts, type StateCounts } from "../../store/counters.ts";
import { TASK_STATES } from "../../store/keys.ts";
import { type ClusterView, readClusters } from "../../web/data.ts";
import { bytes, duration, plural } from "../../web/format.ts";
import { openQueues, styles } from "./info.ts";

/** What one frame shows. */
export interface MonitorSnapshot {
  /** Where the KV store is. */
  kv: string;
  /** When it was read. */
  readAt: number;
  /** The clusters, from their heartbeats. */
  clusters: ClusterView[];
  /** Task counts per queue. */
  counts: Map<string, StateCounts>;
}

/** Options for {@linkcode renderMonitor}. */
export interface RenderOptions {
  /** Terminal columns: every line is cut to fit. */
  width: number;
  /**
   * Whether the frame is drawn live on a terminal (it then says how to quit).
   * @default false
   */
  live?: boolean;
  /** "Now", for uptimes and elapsed times. */
  now: number;
  /**
   * Bold headers and coloured states.
   * @default false
   */
  color?: boolean;
}

/** Cuts `line` to `width` columns, marking the cut with `…`. */
export function fit(line: string, width: number): string {
  if (width <= 0) return "";
  return line.length <= width ? line : `${line.slice(0, Math.max(0, width - 1))}…`;
}

/** The lines of one frame. */
export function renderMonitor(s: MonitorSnapshot, options: RenderOptions): string[] {
  const { width, now } = options;
  const c = styles(options.color ?? false);
  const lines: string[] = [];
  const push = (text: string, style: (s: string) => string = (x) => x) =>
    lines.push(style(fit(text, width)));
  push(
    `kvq monitor  ${s.kv}  ${new Date(now).toISOString().slice(11, 19)}Z${
      options.live ? "  (q to quit)" : ""
    }`,
    c.bold,
  );
  for (const [queue, counts] of s.counts) {
    push(`queue ${queue}: ${TASK_STATES.map((st) => `${st} ${counts[st]}`).join("  ")}`);
  }
  push("");
  if (s.clusters.length === 0) push("No cluster is running. Start one: kvq cluster --tasks FILE");
  for (const { stat: k, silent: stale } of s.clusters) {
    // What matters most first, so a narrow terminal keeps it.
    push(
      `${k.host}  ${stale ? `silent ${duration(now - k.beatAt)}` : k.state}  cpu ${
        k.cpu ?? 0
      }%  rss ${bytes(k.rss)}  up ${duration(now - k.startedAt)}  ${k.id}`,
      stale ? c.yellow : c.bold,
    );
    push(
      `  ${plural(k.processed ?? 0, "attempt")} run (${k.failed ?? 0} failed)  reincarnations ${
        k.reincarnations ?? 0
      }  pid ${k.pid}  queues ${k.queues.join(",")}`,
    );
    push(
      `  ${"WORKER".padEnd(14)} ${"STATE".padEnd(8)} ${"CPU".padStart(6)} ${"HEAP".padStart(8)} ${
        "TASKS".padStart(6)
      }  CURRENT TASK`,
      c.dim,
    );
    for (const w of k.workers) {
      const t = w.tasks[0];
      const current = t
        ? `${t.func} ${t.name} ${duration(now - t.startedAt)}${
          w.tasks.length > 1 ? ` (+${w.tasks.length - 1})` : ""
        }`
        : "-";
      const stuck = k.stuck?.includes(w.name) ? "  STUCK" : "";
      push(
        `  ${w.name.padEnd(14)} ${w.state.padEnd(8)} ${`${w.cpu ?? 0}%`.padStart(6)} ${
          bytes(w.heap).padStart(8)
        } ${String(w.tasksRun ?? 0).padStart(6)}  ${current}${stuck}`,
        stuck ? c.red : undefined,
      );
    }
    push("");
  }
  return lines;
}

/** `kvq monitor [--queue A,B] [--once]` */
export const monitorCommand: Command = {
  name: "monitor",
  readsOnly: true,
  summary: "Live view of clusters and workers (Django Q's qmonitor); q quits",
  usage: "kvq monitor [--queue A,B] [--once]",
  options: { once: { type: "boolean" } },
  help: `  --queue A,B   only these queues (default: every queue found)
  --once        print one frame and exit (also what happens when stdout is not a terminal)

Per cluster: host, state, CPU, RSS, uptime, id; then the attempts it ran since it started (a
retried task counts each attempt), reincarnations, pid and queues. Per worker: its name
with its generation (kvq-w2.g3 is slot 2's third life), state, CPU, heap, tasks run, and the task
it runs now with how long it has run. Redraws when KV changes, at most once a second.`,
  async run(ctx) {
    if (ctx.positionals.length > 0) {
      throw new UsageError(`Unexpected argument ${JSON.stringify(ctx.positionals[0])}`);
    }
    const opened = await openQueues(ctx);
    const read = async (): Promise<MonitorSnapshot> => {
      const clusters = await readClusters(opened.stores, undefined, { confirm: true });
      const counts = new Map<string, StateCounts>();
      for (const store of opened.stores) counts.set(store.queue, await readStateCounts(store));
      return { kv: opened.handle.location.location, readAt: Date.now(), clusters, counts };
    };
    const live = ctx.values.once !== true && process.stdout.isTTY === true && !ctx.json;
    if (!live) {
      try {
        const snap = await read();
        if (ctx.json) {
          ctx.out(
            JSON.stringify({
              kv: snap.kv,
              clusters: snap.clusters.map((v) => v.stat),
              counts: Object.fromEntries(snap.counts),
            }),
          );
        } else {
          const width = process.stdout.columns ?? 160;
          for (const line of renderMonitor(snap, { width, now: Date.now(), color: ctx.tty })) {
            ctx.out(line);
          }
        }
        return 0;
      } finally {
        opened.close();
      }
    }
    return await runLive(ctx.tty, read, opened);
  },
};

function runLive(
  color: boolean,
  read: () => Promise<MonitorSnapshot>,
  opened: { stores: { changes: { subscribe(fn: () => void): () => void } }[]; close(): void },
): Promise<number> {
  const out = process.stdout;
  const stdin = process.stdin;
  let snap: MonitorSnapshot | null = null;
  let lastRead = 0;
  let readTimer: ReturnType<typeof setTimeout> | null = null;
  let reading = false;
  let stopped = false;

  const draw = () => {
    if (stopped || snap === null) return;
    const lines = renderMonitor(snap, {
      width: out.columns ?? 80,
      now: Date.now(),
      color,
      live: true,
    });
    const rows = out.rows ?? lines.length;
    // Home, each line cleared to its end, then everything below cleared: no flicker.
    out.write(`\x1b[H${lines.slice(0, rows).map((l) => `${l}\x1b[K`).join("\n")}\x1b[J`);
  };
  const readNow = async () => {
    readTimer = null;
    if (reading || stopped) return;
    reading = true;
    try {
      snap = await read();
      lastRead = Date.now();
      draw();
    } catch (error) {
      if (!stopped) out.write(`\x1b[H\x1b[Jkvq monitor: ${(error as Error).message}\n`);
    } finally {
      reading = false;
    }
  };
  /** Reads again, no sooner than a second after the last read. */
  const schedule = () => {
    if (readTimer !== null || stopped) return;
    readTimer = setTimeout(() => void readNow(), Math.max(0, lastRead + 1000 - Date.now()));
  };
  const unsubscribe = opened.stores.map((s) => s.changes.subscribe(schedule));
  const tick = setInterval(() => {
    if (Date.now() - lastRead >= 2000) schedule();
    else draw();
  }, 1000);

  return new Promise<number>((resolve) => {
    const stop = () => {
      if (stopped) return;
      stopped = true;
      clearInterval(tick);
      if (readTimer !== null) clearTimeout(readTimer);
      for (const off of unsubscribe) off();
      out.off("resize", draw);
      stdin.off("data", onKey);
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      if (stdin.isTTY) stdin.setRawMode?.(false);
      stdin.pause();
      out.write("\x1b[?25h\n");
      opened.close();
      resolve(0);
    };
    const onKey = (chunk: Buffer | string) => {
      const text = String(chunk);
      if (text.includes("q") || text.includes("Q") || text.includes("\x03")) stop();
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    if (stdin.isTTY) stdin.setRawMode?.(true);
    stdin.on("data", onKey);
    stdin.resume();
    out.on("resize", draw);
    out.write("\x1b[?25l\x1b[2J");
    void readNow();
  });
}
