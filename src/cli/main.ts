/**
 * The `kvq` command line: parses the command word and options, runs the command, and turns
 * errors into a message on stderr with what to try next and a meaningful exit code.
 *
 * Exit codes: 0 success, 1 failure, 2 usage error (also a bad value, config file or task module),
 * 3 not finished, 4 not found: see {@linkcode exitCodeOf}.
 *
 * @module
 */
import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { secretsOf } from "./_common.ts";
import { type Command, type CommandContext, type OptionSpec, UsageError } from "./command.ts";
import { COMMANDS } from "./commands/mod.ts";
import { openQueue, type Queue } from "../queue/queue.ts";
import { DEFAULT_KV_PATH, KvOpenError, resolveKvLocation } from "../store/kv.ts";
import { SchemaError } from "../store/schema.ts";
import { copyStore, readOnlyReason, type StoreCopy } from "../store/read_copy.ts";
import { InvalidTaskRefError, NoSuchTaskError } from "../store/errors.ts";
import { formatBytes, PayloadTooLargeError } from "../store/chunks.ts";
import { NoSuchScheduleError } from "../schedule/errors.ts";
import { applyConfig, CONFIG_FILE, ConfigError, resolveConfig } from "./config.ts";

const COMMON: OptionSpec = {
  kv: { type: "string" },
  queue: { type: "string" },
  json: { type: "boolean" },
  config: { type: "string" },
  secret: { type: "string" },
  "old-secrets": { type: "string" },
  help: { type: "boolean", short: "h" },
};

const COMMON_HELP = `Common options:
  --kv PATH|URL   the KV store (default: KVQ_KV, else ${DEFAULT_KV_PATH})
  --queue NAME    the queue (default: KVQ_QUEUE, else default)
  --json          print data as JSON
  --config FILE   read settings from FILE (default: ${CONFIG_FILE} here, if present)
  --secret S      sign the tasks this command creates; a cluster or worker with a secret runs
                  only tasks signed with it (default: KVQ_SECRET, none if unset)
  --old-secrets L comma-separated old secrets still accepted, for rotation (KVQ_OLD_SECRETS)
  -h, --help      show help
Settings come from flags, then KVQ_* environment variables, then the config file: see 'kvq config'.`;

/** The top-level help. */
export function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `kvq: a background task queue and worker cluster on Deno KV

Usage: kvq COMMAND [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join("\n")}

${COMMON_HELP}

Run 'kvq COMMAND --help' for a command's options.`;
}

function commandHelp(c: Command): string {
  return `${c.summary}

Usage: ${c.usage}

${c.help}

${COMMON_HELP}`;
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(
        d[i - 1]![j]! + 1,
        d[i]![j - 1]! + 1,
        d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest of `names` to `word`, if it is close enough to be a typo. */
export function closest(word: string, names: Iterable<string>): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const name of names) {
    const dd = distance(word, name);
    if (dd < bestD) [best, bestD] = [name, dd];
  }
  return bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : null;
}

/** Output sinks, replaceable in tests. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** Whether stdout is a terminal and colour is allowed (NO_COLOR unset). */
  tty: boolean;
  /** Whether stderr is a terminal, for progress output. @default false */
  errTty?: boolean;
}

const defaultIo: CliIo = {
  out: (text) => console.log(text),
  err: (text) => console.error(text),
  tty: Boolean(process.stdout.isTTY) && !process.env.NO_COLOR,
  errTty: Boolean(process.stderr.isTTY),
};

/**
 * Checks that each task module given as a file path exists, before a cluster starts workers
 * that would each fail to import it. Returns the message to print, or null when all are there.
 */
export function missingTaskFile(files: readonly string[], cwd = process.cwd()): string | null {
  for (const file of files) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(file) && !/^file:/i.test(file)) continue; // a URL
    const path = /^file:/i.test(file) ? new URL(file).pathname : resolve(cwd, file);
    let isFile = false;
    try {
      isFile = statSync(path).isFile();
    } catch {
      isFile = false;
    }
    if (!isFile) {
      return `The task module ${file} was not found (looked for ${path}). ` +
        "Pass --tasks with the path of the module that exports your task functions.";
    }
  }
  return null;
}

/**
 * For a command that only reads: the message to print when its KV store is a local file that
 * does not exist (a mistyped `--kv` must not create an empty store), else null.
 */
export function missingStore(
  command: Command,
  positionals: readonly string[],
  kv: string | undefined,
): string | null {
  const reads = typeof command.readsOnly === "function"
    ? command.readsOnly(positionals)
    : command.readsOnly === true;
  if (!reads) return null;
  const location = resolveKvLocation(kv);
  if (location.path === null || existsSync(location.path)) return null;
  return `There is no KV store at ${location.path}: the file does not exist, and 'kvq ${command.name}' only reads, so it was not created. ` +
    "Check --kv (or KVQ_KV, or kv in kvq.json); 'kvq cluster', 'kvq enqueue' or 'kvq import' create the store.";
}

/**
 * Joins a string option and a value that starts with a minus (`--priority -1`) into
 * `--priority=-1`: `parseArgs` takes `-1` for a flag of its own and calls the option ambiguous.
 * Only values that read as numbers are joined, so a missing value is still reported.
 */
export function joinNegativeValues(args: readonly string[], options: OptionSpec): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = args[i + 1];
    const name = arg.startsWith("--") && !arg.includes("=") ? arg.slice(2) : null;
    if (
      name !== null && options[name]?.type === "string" && next !== undefined &&
      /^-(\d|\.\d|Infinity)/.test(next)
    ) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

/** Errors the JavaScript engine raises for a bug, not for what a user typed. */
const ENGINE_ERROR =
  /is not a function|Cannot read propert|is not defined|is not iterable|Cannot access .* before initialization/;

/**
 * The exit code of an error a command threw, as the README's table says: 2 for what the user
 * gave (a usage mistake, or a value out of its range: kvq validates up front and throws
 * `TypeError`/`RangeError`), 4 for a task or schedule that does not exist, 1 for the rest.
 */
export function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError || error instanceof ConfigError) return 2;
  if (
    error instanceof NoSuchTaskError || error instanceof InvalidTaskRefError ||
    error instanceof NoSuchScheduleError
  ) {
    return 4;
  }
  if (error instanceof PayloadTooLargeError) return 2;
  // A folder, a damaged file, no permission: setup errors, not worth restarting for.
  if (error instanceof KvOpenError) return error.transient ? 1 : 2;
  // A file of another layout: it needs 'kvq migrate' (or a newer kvq), not a restart.
  if (error instanceof SchemaError) return 2;
  if (error instanceof TypeError || error instanceof RangeError) {
    return ENGINE_ERROR.test(error.message) ? 1 : 2;
  }
  return 1;
}

/**
 * Runs the CLI with `argv` (the words after the program name). Resolves with the exit code.
 */
export async function main(argv: string[], entry: string, io: CliIo = defaultIo): Promise<number> {
  const [word, ...rest] = argv;
  if (word === undefined || word === "--help" || word === "-h" || word === "help") {
    io.out(mainHelp());
    return word === undefined ? 2 : 0;
  }
  if (word === "--version" || word === "version") {
    io.out("kvq 0.1.0");
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === word);
  if (!command) {
    const guess = closest(word, COMMANDS.map((c) => c.name));
    io.err(
      `kvq: unknown command ${JSON.stringify(word)}.${
        guess ? ` Did you mean '${guess}'?` : ""
      } Run 'kvq --help' for the list.`,
    );
    return 2;
  }
  const options = { ...COMMON, ...command.options };
  let parsed;
  try {
    parsed = parseArgs({
      args: joinNegativeValues(rest, options),
      options,
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    const message = (error as Error).message.replace(/\. To specify a positional.*$/s, ".");
    const flag = /'(--?[\w-]+)/.exec(message)?.[1];
    const name = flag?.replace(/^-+/, "");
    const guess = name && !(name in options) ? closest(name, Object.keys(options)) : null;
    io.err(
      `kvq ${command.name}: ${message}${
        guess ? ` Did you mean '--${guess}'?` : ""
      }\nUsage: ${command.usage}`,
    );
    return 2;
  }
  const values = parsed.values as CommandContext["values"];
  if (values.help) {
    io.out(commandHelp(command));
    return 0;
  }
  try {
    const config = resolveConfig(values, { configFile: values.config as string | undefined });
    // `kvq config` shows where each value came from, so it gets the flags alone.
    if (command.name !== "config") applyConfig(command.name, values, config);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    io.err(`kvq ${command.name}: ${error.message}`);
    return 2;
  }
  const missingKv = missingStore(command, parsed.positionals, values.kv as string | undefined);
  if (missingKv) {
    io.err(`kvq ${command.name}: ${missingKv}`);
    return 2;
  }
  if (Array.isArray(values.tasks)) {
    const missing = missingTaskFile(values.tasks as string[]);
    if (missing) {
      io.err(`kvq ${command.name}: ${missing}`);
      return 2;
    }
  }
  let copy: StoreCopy | null = null;
  const readOnly = readOnlyStore(command, parsed.positionals, values);
  if (readOnly?.error) {
    io.err(`kvq ${command.name}: ${readOnly.error}`);
    return 2;
  }
  if (readOnly) {
    try {
      copy = copyStore(readOnly.path);
    } catch (error) {
      io.err(`kvq ${command.name}: ${(error as Error).message}`);
      return 2;
    }
    values.kv = copy.path;
    io.err(
      `kvq ${command.name}: note: ${readOnly.reason}, so this reads a copy of it made now (${
        formatBytes(copy.bytes)
      }); nothing is written to ${readOnly.path}.`,
    );
  }
  const opened: { queue: Queue | null } = { queue: null };
  const ctx: CommandContext = {
    values,
    positionals: parsed.positionals,
    json: values.json === true,
    tty: io.tty,
    progress: io.errTty ?? false,
    kv: (values.kv as string | undefined) ?? null,
    ...(readOnly ? { copyOf: readOnly.path } : {}),
    argv,
    entry,
    out: io.out,
    err: io.err,
    // `name` (a command's QUEUE argument) overrides --queue.
    queue: async (name?: string) => {
      const wanted = name ?? (values.queue !== undefined ? String(values.queue) : undefined);
      if (opened.queue !== null && (wanted === undefined || opened.queue.name === wanted)) {
        return opened.queue;
      }
      opened.queue?.close();
      return opened.queue = await openQueue({
        ...(values.kv !== undefined ? { kv: String(values.kv) } : {}),
        ...(wanted !== undefined ? { name: wanted } : {}),
        secret: secretsOf(values),
      });
    },
  };
  try {
    return await command.run(ctx);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`kvq ${command.name}: ${error.message}\nUsage: ${command.usage}`);
      return 2;
    }
    const e = error as Error;
    if (/^Cannot load task module /.test(e.message ?? "")) {
      // A module that does not import is a setup error: exit 2, so a sentinel does not restart.
      io.err(
        `kvq ${command.name}: ${e.message}\nFix the error in that module, or pass --tasks with another one.`,
      );
      return 2;
    }
    const code = exitCodeOf(error);
    // A value out of range: the command's options say what it takes.
    const badValue = code === 2 && (error instanceof TypeError || error instanceof RangeError);
    const hint = badValue ? `\nRun 'kvq ${command.name} --help' for its options.` : "";
    io.err(`kvq ${command.name}: ${e.message ?? String(error)}${hint}`);
    if (process.env.KVQ_DEBUG && e.stack) io.err(e.stack);
    return code;
  } finally {
    opened.queue?.close();
    copy?.[Symbol.dispose]();
  }
}

/**
 * For a local KV file this user can't write: the file to copy for a command that
 * {@linkcode Command.readsCopy | reads a copy}, or the error for one that can't; else null.
 */
export function readOnlyStore(
  command: Command,
  positionals: readonly string[],
  values: CommandContext["values"],
): { path: string; reason: string; error?: string } | null {
  const { path } = resolveKvLocation(values.kv as string | undefined);
  if (path === null) return null;
  const reason = readOnlyReason(path);
  if (reason === null) return null;
  const copies = typeof command.readsCopy === "function"
    ? command.readsCopy(positionals, values)
    : command.readsCopy === true;
  if (copies) return { path, reason };
  // A command that reads a copy in some forms (doctor without --delete) writes in the others.
  const what = command.readsOnly === true && command.readsCopy === undefined
    ? "follows the live store"
    : "writes to it";
  return {
    path,
    reason,
    error: `Cannot open the KV store at ${path}: ${reason}. 'kvq ${command.name}' ${what}, ` +
      "and Deno KV opens a file only for writing. Run it as the user that owns the store, or " +
      "make the file and its folder writable; 'kvq info', 'tasks', 'task', 'export' and 'doctor' " +
      "read a copy of a read-only store.",
  };
}
