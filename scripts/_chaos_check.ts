/**
 * The checks of the chaos run (`scripts/chaos.ts`), as pure functions over the task log and the
 * record of kills and stops, so they can be tested on hand-written logs.
 *
 * A log line is `<id> <attempt> <pid> <epoch ms> [<intended ISO time>]`, written by
 * `tests/fixtures/chaos_tasks.ts` as each attempt starts.
 *
 * @module
 */

/** One line of the task log. */
export interface LogLine {
  /** The task id. */
  id: string;
  /** Its attempt number (1 for the first). */
  attempt: number;
  /** The cluster process that ran it. */
  pid: number;
  /** When it started (epoch ms). */
  at: number;
  /** For schedule ticks: the slot's intended time; else null. */
  intended: string | null;
  /** Its place in the file. */
  index: number;
}

/** A SIGKILL the chaos run sent. */
export interface Kill {
  /** The killed cluster process. */
  pid: number;
  /** When `kill()` returned (epoch ms): no line of `pid` can be later. */
  at: number;
}

/** A SIGSTOP … SIGCONT the chaos run sent. */
export interface Stop {
  /** The stopped cluster process. */
  pid: number;
  /** When it was stopped (epoch ms). */
  stoppedAt: number;
  /** When it was continued (epoch ms). */
  resumedAt: number;
}

/** Parses the task log; lines that don't parse are returned apart. */
export function parseLog(text: string): { lines: LogLine[]; bad: string[] } {
  const lines: LogLine[] = [];
  const bad: string[] = [];
  for (const raw of text.split("\n")) {
    if (raw === "") continue;
    const [id, attempt, pid, at, intended, extra] = raw.split(" ");
    const line = {
      id: id ?? "",
      attempt: Number(attempt),
      pid: Number(pid),
      at: Number(at),
      intended: intended ?? null,
      index: lines.length,
    };
    if (
      !/^[0-9a-f-]{36}$/.test(line.id) || !Number.isSafeInteger(line.attempt) ||
      line.attempt < 1 || !Number.isSafeInteger(line.pid) || !Number.isSafeInteger(line.at) ||
      extra !== undefined
    ) {
      bad.push(raw);
    } else {
      lines.push(line);
    }
  }
  return { lines, bad };
}

/** The runs of each id, by attempt and then by place in the log. */
export function runsById(lines: readonly LogLine[]): Map<string, LogLine[]> {
  const runs = new Map<string, LogLine[]>();
  for (const line of lines) {
    const list = runs.get(line.id);
    if (list) list.push(line);
    else runs.set(line.id, [line]);
  }
  for (const list of runs.values()) {
    list.sort((a, b) => a.attempt - b.attempt || a.index - b.index);
  }
  return runs;
}

/** What {@linkcode explainDuplicates} found. */
export interface DuplicateReport {
  /** Ids that ran more than once. */
  duplicates: number;
  /** Runs beyond the first, over all ids. */
  extraRuns: number;
  /** Ids whose every re-run is explained by a kill or stop. */
  explained: number;
  /** The others, with why, at most 20. */
  unexplained: string[];
  /** How many re-runs each kind of event explains. */
  byKill: number;
  /** Re-runs explained by the stop. */
  byStop: number;
}

/**
 * Explains every duplicate execution. A re-run of a task is explained when the run before it
 * (by attempt number) was on a cluster that was then killed (the earlier line is logged before
 * the kill) or stopped past its lease (the earlier line is logged before it was continued, plus
 * `slackMs` for a start already handed to a worker when it stopped), and the re-run is a new
 * attempt.
 */
export function explainDuplicates(
  lines: readonly LogLine[],
  kills: readonly Kill[],
  stops: readonly Stop[],
  slackMs = 1000,
): DuplicateReport {
  const report: DuplicateReport = {
    duplicates: 0,
    extraRuns: 0,
    explained: 0,
    unexplained: [],
    byKill: 0,
    byStop: 0,
  };
  for (const [id, runs] of runsById(lines)) {
    if (runs.length < 2) continue;
    report.duplicates++;
    report.extraRuns += runs.length - 1;
    let ok = true;
    for (let i = 1; i < runs.length; i++) {
      const before = runs[i - 1]!;
      const after = runs[i]!;
      let why: string | null = null;
      if (after.attempt <= before.attempt) {
        why = `attempt ${after.attempt} ran twice (pids ${before.pid}, ${after.pid})`;
      } else if (kills.some((k) => k.pid === before.pid && before.at <= k.at)) {
        report.byKill++;
      } else if (
        stops.some((s) => s.pid === before.pid && before.at <= s.resumedAt + slackMs)
      ) {
        report.byStop++;
      } else {
        why = `attempt ${before.attempt} on pid ${before.pid} at ${before.at} ran again as ` +
          `attempt ${after.attempt} on pid ${after.pid}, with no kill or stop of ${before.pid}`;
      }
      if (why !== null) {
        ok = false;
        if (report.unexplained.length < 20) report.unexplained.push(`${id}: ${why}`);
      }
    }
    if (ok) report.explained++;
  }
  return report;
}

/**
 * Recovery after each kill: the time from the kill until every task the killed cluster held
 * (its latest run before the kill was on that cluster, and it ran again later) has started
 * again. Kills whose cluster held no such task give `null`.
 */
export function recoveryTimes(
  lines: readonly LogLine[],
  events: readonly { pid: number; at: number }[],
): (number | null)[] {
  const runs = runsById(lines);
  return events.map((event) => {
    let worst: number | null = null;
    for (const list of runs.values()) {
      let last: LogLine | null = null;
      let next: LogLine | null = null;
      for (const line of list) {
        if (line.at <= event.at) {
          if (last === null || line.index > last.index) last = line;
        } else if (line.pid !== event.pid && (next === null || line.at < next.at)) {
          next = line;
        }
      }
      if (last?.pid === event.pid && next !== null) {
        worst = Math.max(worst ?? 0, next.at - event.at);
      }
    }
    return worst;
  });
}

/** What {@linkcode checkTicks} found. */
export interface TickReport {
  /** Distinct slots logged. */
  slots: number;
  /** The first and last slot. */
  first: string | null;
  last: string | null;
  /** Slots that created more than one task. */
  firedTwice: string[];
  /** Slots between the first and last that never ran. */
  missing: string[];
}

/** Checks a `*\/1 * * * * *` schedule's ticks: one task per second, none missing between. */
export function checkTicks(lines: readonly LogLine[], stepMs = 1000): TickReport {
  const tasksBySlot = new Map<number, Set<string>>();
  for (const line of lines) {
    if (line.intended === null) continue;
    const t = Date.parse(line.intended);
    const ids = tasksBySlot.get(t) ?? new Set();
    ids.add(line.id);
    tasksBySlot.set(t, ids);
  }
  const slots = [...tasksBySlot.keys()].sort((a, b) => a - b);
  const report: TickReport = {
    slots: slots.length,
    first: slots.length ? new Date(slots[0]!).toISOString() : null,
    last: slots.length ? new Date(slots[slots.length - 1]!).toISOString() : null,
    firedTwice: [],
    missing: [],
  };
  for (const [t, ids] of tasksBySlot) {
    if (ids.size > 1 || Number.isNaN(t)) {
      report.firedTwice.push(`${new Date(t).toISOString()} (${ids.size} tasks)`);
    }
  }
  if (slots.length > 0) {
    for (let t = slots[0]!; t <= slots[slots.length - 1]!; t += stepMs) {
      if (!tasksBySlot.has(t)) report.missing.push(new Date(t).toISOString());
    }
  }
  return report;
}

/** The `q` quantile (0-1) of `values`, by nearest rank; null when empty. */
export function quantile(values: readonly number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
