/**
 * Helpers shared by the CLI commands: printing records, parsing JSON arguments.
 *
 * @module
 */
import { attemptRows, traceIdOf } from "../task/timeline.ts";
import type { TaskRecord } from "../task/record.ts";
import { readFileSync } from "node:fs";
import { Buffer } from "node:buffer";
import process from "node:process";
import { UsageError } from "./command.ts";
import { isoTime } from "../web/format.ts";

/**
 * The text of a JSON option: the value itself, the contents of a file for `@FILE` (for values
 * too long for a command line), or standard input for `-`.
 *
 * @throws {UsageError} naming the flag and the file when it can't be read.
 */
export async function jsonOptionText(
  value: string | undefined,
  flag: string,
  stdin: AsyncIterable<Uint8Array | string> = process.stdin,
): Promise<string | undefined> {
  if (value === undefined) return undefined;
  if (value === "-") {
    const parts: Uint8Array[] = [];
    for await (const chunk of stdin) {
      parts.push(typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk);
    }
    return new TextDecoder().decode(Buffer.concat(parts));
  }
  if (value.startsWith("@")) {
    const file = value.slice(1);
    try {
      return readFileSync(file, "utf8");
    } catch (error) {
      throw new UsageError(
        `${flag} @${file}: can't read the file (${
          (error as Error).message
        }). Give a path after @, or - for standard input.`,
      );
    }
  }
  return value;
}

/**
 * Parses a `--args` value: a JSON array of the task's arguments.
 *
 * @throws {UsageError} naming the flag, when the text is not JSON or not an array.
 */
export function parseArgsJson(text: string | undefined, flag = "--args"): unknown[] {
  if (text === undefined) return [];
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(
      `${flag} must be a JSON array of the arguments, e.g. ${flag} '[1, 2]': ${
        (error as Error).message
      } in ${JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text)}`,
    );
  }
  if (!Array.isArray(value)) {
    const shown = text.length > 200 ? `${text.slice(0, 200)}…` : text;
    throw new UsageError(
      `${flag} must be a JSON array of the arguments, e.g. ${flag} '[${shown.trim()}]' for one argument: received ${
        JSON.stringify(shown)
      }`,
    );
  }
  return value;
}

/** One line describing a task, for lists. */
export function taskLine(r: TaskRecord): string {
  const when = isoTime(r.stoppedAt ?? r.startedAt ?? r.enqueuedAt);
  const extra = r.state === "failed" && r.error
    ? `  ${r.error.name}: ${r.error.message.split("\n")[0]}`
    : "";
  return `${r.id}  ${r.name.padEnd(30)} ${r.state.padEnd(9)} ${r.func.padEnd(16)} ${when}${extra}`;
}

/** A task as several lines, for `kvq task`. */
export function taskDetail(r: TaskRecord): string {
  const t = (ms: number | null) => (ms === null ? "-" : isoTime(ms));
  const lines = [
    `id          ${r.id}`,
    `name        ${r.name}`,
    `func        ${r.func}`,
    `queue       ${r.queue}${r.group ? `   group ${r.group}` : ""}${
      r.partition !== null ? `   partition ${r.partition}` : ""
    }   priority ${r.priority}`,
    `state       ${r.state}   attempt ${r.attempt}${r.maxAttempts ? ` of ${r.maxAttempts}` : ""}`,
    `args        ${JSON.stringify(r.args)}`,
    `enqueued    ${t(r.enqueuedAt)}`,
    `run at      ${t(r.runAt)}`,
    `started     ${t(r.startedAt)}`,
    `stopped     ${t(r.stoppedAt)}`,
  ];
  if (r.expiresAt !== null) lines.push(`start by    ${t(r.expiresAt)}`);
  if (r.chain) lines.push(`chain       ${r.chain.id} step ${r.chain.index}`);
  if (r.iter) lines.push(`iter        ${r.iter.id} item ${r.iter.index}`);
  if (r.unique) lines.push(`unique      ${r.unique}`);
  if (r.cluster) lines.push(`ran on      ${r.worker} of cluster ${r.cluster}`);
  if (r.crashes > 0) {
    lines.push(`crashes     ${r.crashes}: its cluster died as it ran (${r.crashedOn!.join(", ")})`);
  }
  if (r.progress) {
    lines.push(
      `progress    ${(r.progress.fraction * 100).toFixed(0)}%${
        r.progress.message ? ` ${r.progress.message}` : ""
      }`,
    );
  }
  if (r.state === "succeeded") lines.push(`result      ${r.resultJson ?? "(not kept)"}`);
  r.errors.forEach((e, i) => {
    lines.push(`error ${i + 1}     ${e.name}: ${e.message}`);
    if (e.stack) {
      lines.push(...e.stack.split("\n").slice(1, 6).map((l) => `            ${l.trim()}`));
    }
  });
  const trace = traceIdOf(r);
  if (trace !== null) lines.push(`trace       ${trace}`);
  const attempts = attemptRows(r);
  if (attempts.length > 1 || r.errors.length > 0) {
    lines.push("attempts");
    for (const a of attempts) {
      const ran = a.startedAt !== null && a.stoppedAt !== null
        ? ` ran ${Math.max(0, a.stoppedAt - a.startedAt)} ms`
        : "";
      lines.push(
        `  ${a.attempt ?? "-"}  ${a.outcome.padEnd(9)} started ${t(a.startedAt)}${ran}${
          a.worker ? ` on ${a.worker}${a.cluster ? ` of ${a.cluster}` : ""}` : ""
        }${a.error && a.outcome !== "succeeded" ? `  ${a.error.name}` : ""}`,
      );
    }
  }
  // Why a task was cancelled (by a user, a replace, or its start-by deadline).
  const last = r.errors.at(-1);
  if (
    r.state === "cancelled" && r.error !== null &&
    (last?.name !== r.error.name || last?.message !== r.error.message)
  ) lines.push(`cancelled   ${r.error.name}: ${r.error.message}`);
  return lines.join("\n");
}

/** The signing secrets a command's flags (or KVQ_SECRET / KVQ_OLD_SECRETS) give: current first. */
export function secretsOf(values: Record<string, unknown>): string[] | null {
  const current = values.secret as string | undefined;
  if (!current) return null;
  const old = String(values["old-secrets"] ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  return [current, ...old];
}

/**
 * What a task that did not succeed says: its error when it finished, else that it is still
 * waiting or running and how to wait longer.
 */
export function unsuccessfulLine(r: TaskRecord, waited: number): string {
  if (r.finished) {
    return `Task ${r.id} ${r.state}${r.error ? `: ${r.error.name}: ${r.error.message}` : ""}`;
  }
  const after = waited > 0 ? ` after waiting ${waited} ms` : "";
  return `Task ${r.id} is still ${r.state}${after}. Wait longer with: kvq result ${r.id} --wait MS`;
}
