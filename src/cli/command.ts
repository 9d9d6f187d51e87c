/**
 * The shape of a CLI command and what it gets to run. Each command lives in its own file under
 * `commands/` and is listed in `commands/mod.ts`.
 *
 * @module
 */
import type { ParseArgsConfig } from "node:util";
import type { Queue } from "../queue/queue.ts";

/** The option declarations of `node:util` `parseArgs`. */
export type OptionSpec = NonNullable<ParseArgsConfig["options"]>;

/** A CLI command. */
export interface Command {
  /** The command word, e.g. `"enqueue"`. */
  name: string;
  /** One line for the command list. */
  summary: string;
  /** The usage line, e.g. `"kvq enqueue FUNC [--args JSON]"`. */
  usage: string;
  /** Its options besides the common ones (`--kv`, `--queue`, `--json`, `--help`). */
  options: OptionSpec;
  /** Lines explaining each option and example calls, shown by `--help`. */
  help: string;
  /**
   * Whether the command only reads the store (for `schedule`, it depends on the sub-command, the
   * first positional). A command that only reads refuses a local KV file that does not exist,
   * instead of creating an empty store at a mistyped path.
   * @default {false}
   */
  readsOnly?: boolean | ((positionals: readonly string[]) => boolean);
  /**
   * Whether the command reads the store once and writes nothing that must last, so that it can
   * read a copy of a local KV file this user may not write (Deno KV can't open a file read-only;
   * see `store/read_copy.ts`). Without it, such a file is refused with the reason. It is given
   * the positionals and option values.
   * @default {false}
   */
  readsCopy?:
    | boolean
    | ((positionals: readonly string[], values: CommandContext["values"]) => boolean);
  /** Runs it; resolves with the exit code. */
  run(ctx: CommandContext): Promise<number>;
}

/** What a running command gets. */
export interface CommandContext {
  /** Parsed option values. */
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  /** Positional arguments after the command word. */
  positionals: string[];
  /** `--json` was given: print data as JSON. */
  json: boolean;
  /**
   * When the command reads a copy of a read-only KV file (see {@linkcode Command.readsCopy}):
   * the path of the original. `kv` then names the copy.
   */
  copyOf?: string;
  /**
   * Opens the queue `name`, else the one `--queue` names, in the KV named by `--kv` (closed
   * after the command).
   */
  queue(name?: string): Promise<Queue>;
  /** Prints a line to stdout. */
  out(text: string): void;
  /** Prints a line to stderr. */
  err(text: string): void;
  /** Whether stdout is a terminal (colour and progress only then, and not with NO_COLOR). */
  tty: boolean;
  /** Whether stderr is a terminal: progress output only then. */
  progress?: boolean;
  /** The `--kv` value, if given. */
  kv: string | null;
  /** The whole command line after the program (for re-running it, as the sentinel does). */
  argv: string[];
  /** The main module, for re-running this program. */
  entry: string;
}

/** A usage mistake: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Reads an integer option, or throws a {@linkcode UsageError} naming it. */
export function intOption(
  values: CommandContext["values"],
  name: string,
  range: { min?: number; max?: number } = {},
): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  // Decimal digits only: Number() would take "" as 0 and "0x10" as 16.
  const n = typeof raw === "string" && /^[+-]?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < (range.min ?? -Infinity) || n > (range.max ?? Infinity)) {
    const bounds = range.min !== undefined ? ` (at least ${range.min})` : "";
    throw new UsageError(
      `--${name} must be a whole number${bounds}: received ${JSON.stringify(raw)}`,
    );
  }
  return n;
}
