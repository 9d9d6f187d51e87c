/**
 * CLI configuration: each setting comes from its flag, else its environment variable, else an
 * optional `kvq.json` (in the working directory, or `--config FILE`), else its default.
 * {@linkcode resolveConfig} reads all three without side effects; {@linkcode applyConfig} fills a
 * command's option values from the environment and the file, so every command sees the resolved
 * values without reading the environment itself.
 *
 * @module
 */
import { readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { DEFAULT_KV_PATH } from "../store/kv.ts";

/** The config file looked for in the working directory. */
export const CONFIG_FILE = "kvq.json";

/** Where a value came from. */
export type ConfigSource = "flag" | "env" | "file" | "default";

/** One setting the CLI reads from flags, the environment and the config file. */
export interface Setting {
  /** Its key in `kvq.json` (camelCase). */
  key: string;
  /** Its flag, without dashes. */
  flag: string;
  /** Its environment variable. */
  env: string;
  /** Commands whose option values it fills (besides `config`); `*` for every command. */
  commands: readonly string[] | "*";
  /** What a value is. */
  kind: "string" | "int" | "path" | "paths" | "secret";
  /** The default, as shown by `kvq config`; null when there is none. */
  fallback: () => string | null;
  /** One line for `kvq config`. */
  about: string;
}

/** Every configurable setting, in the order `kvq config` shows them. */
export const SETTINGS: readonly Setting[] = Object.freeze(
  [
    {
      key: "kv",
      flag: "kv",
      env: "KVQ_KV",
      commands: "*",
      kind: "path",
      fallback: () => DEFAULT_KV_PATH,
      about: "the KV store: a file, :memory: or a KV Connect URL",
    },
    {
      key: "queue",
      flag: "queue",
      env: "KVQ_QUEUE",
      commands: "*",
      kind: "string",
      fallback: () => "default",
      about: "the queue (cluster, dashboard, info, monitor: a comma-separated list)",
    },
    {
      key: "tasks",
      flag: "tasks",
      env: "KVQ_TASKS",
      commands: ["cluster", "work"],
      kind: "paths",
      fallback: () => null,
      about: "task modules (env: comma-separated)",
    },
    {
      key: "workers",
      flag: "workers",
      env: "KVQ_WORKERS",
      commands: ["cluster"],
      kind: "int",
      fallback: () => String(globalThis.navigator?.hardwareConcurrency ?? 1),
      about: "Web Workers per cluster (default: the number of CPUs)",
    },
    {
      key: "concurrency",
      flag: "concurrency",
      env: "KVQ_CONCURRENCY",
      commands: ["cluster"],
      kind: "int",
      fallback: () => "1",
      about: "tasks one worker runs at once",
    },
    {
      key: "prefetch",
      flag: "prefetch",
      env: "KVQ_PREFETCH",
      commands: ["cluster"],
      kind: "int",
      fallback: () => "100",
      about: "most tasks claimed ahead of a free place",
    },
    {
      key: "timeout",
      flag: "timeout",
      env: "KVQ_TIMEOUT",
      commands: ["cluster"],
      kind: "int",
      fallback: () => null,
      about: "default task timeout in ms (none: no limit)",
    },
    {
      key: "maxAttempts",
      flag: "max-attempts",
      env: "KVQ_MAX_ATTEMPTS",
      commands: ["cluster"],
      kind: "int",
      fallback: () => "3",
      about: "default attempts per task",
    },
    {
      key: "maxCrashes",
      flag: "max-crashes",
      env: "KVQ_MAX_CRASHES",
      commands: ["cluster"],
      kind: "int",
      fallback: () => "2",
      about: "crashes of its cluster a task running alone may see before it fails as poison",
    },
    {
      key: "recycle",
      flag: "recycle",
      env: "KVQ_RECYCLE",
      commands: ["cluster"],
      kind: "int",
      fallback: () => null,
      about: "replace a worker after this many tasks (none: never)",
    },
    {
      key: "maxMemory",
      flag: "max-memory",
      env: "KVQ_MAX_MEMORY",
      commands: ["cluster"],
      kind: "int",
      fallback: () => null,
      about: "replace a worker whose heap passes this many MB (none: never)",
    },
    {
      key: "grace",
      flag: "grace",
      env: "KVQ_GRACE",
      commands: ["cluster"],
      kind: "int",
      fallback: () => "10000",
      about: "ms running tasks may finish in after SIGTERM",
    },
    {
      key: "dashboard",
      flag: "dashboard",
      env: "KVQ_DASHBOARD",
      commands: ["cluster"],
      kind: "string",
      fallback: () => null,
      about: "HOST:PORT of the dashboard a cluster serves (none: no dashboard)",
    },
    {
      key: "listen",
      flag: "listen",
      env: "KVQ_LISTEN",
      commands: ["dashboard"],
      kind: "string",
      fallback: () => "127.0.0.1:8080",
      about: "HOST:PORT of kvq dashboard",
    },
    {
      key: "secret",
      flag: "secret",
      env: "KVQ_SECRET",
      commands: "*",
      kind: "secret",
      fallback: () => null,
      about: "signs the tasks a command creates; clusters with one run only signed tasks",
    },
    {
      key: "oldSecrets",
      flag: "old-secrets",
      env: "KVQ_OLD_SECRETS",
      commands: "*",
      kind: "secret",
      fallback: () => null,
      about: "comma-separated old signing secrets still accepted (rotation)",
    },
    {
      key: "dashboardToken",
      flag: "token",
      env: "KVQ_DASHBOARD_TOKEN",
      commands: ["dashboard", "cluster"],
      kind: "secret",
      fallback: () => null,
      about: "the dashboard sign-in token",
    },
  ] satisfies Setting[],
);

/** A resolved setting. */
export interface ResolvedSetting {
  /** The setting. */
  setting: Setting;
  /** The value as an option value (a list for `tasks`); null when unset. */
  value: string | string[] | null;
  /** Where it came from. */
  source: ConfigSource;
}

/** The resolved configuration. */
export interface ResolvedConfig {
  /** The config file read, or null when there was none. */
  file: string | null;
  /** Every setting, in {@linkcode SETTINGS} order. */
  settings: ResolvedSetting[];
}

/** A config file that can't be used: names the file and what is wrong with it. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Options for {@linkcode resolveConfig}. */
export interface ResolveConfigOptions {
  /**
   * The `--config FILE` value; a missing file is then an error.
   * @default `kvq.json` in `cwd`, if it exists
   */
  configFile?: string | undefined;
  /**
   * The environment.
   * @default process.env
   */
  env?: Record<string, string | undefined>;
  /**
   * The working directory.
   * @default process.cwd()
   */
  cwd?: string;
}

/**
 * Resolves every setting from `flags` (parsed option values), the environment and the config
 * file.
 *
 * @throws {ConfigError} naming the file, when it can't be read, is not JSON, or holds an unknown
 *   key or a value of the wrong type.
 */
export function resolveConfig(
  flags: Record<string, unknown>,
  options: ResolveConfigOptions = {},
): ResolvedConfig {
  const env = options.env ?? globalThis.process?.env ?? {};
  const cwd = options.cwd ?? globalThis.process?.cwd() ?? ".";
  const { file, values } = readConfigFile(options.configFile, cwd);
  const settings = SETTINGS.map((setting): ResolvedSetting => {
    const flag = flags[setting.flag];
    if (flag !== undefined && !(Array.isArray(flag) && flag.length === 0)) {
      return { setting, value: flag as string | string[], source: "flag" };
    }
    const fromEnv = env[setting.env];
    if (fromEnv !== undefined && fromEnv.trim() !== "") {
      return {
        setting,
        value: setting.kind === "paths"
          ? fromEnv.split(",").map((s) => s.trim()).filter(Boolean)
          : fromEnv.trim(),
        source: "env",
      };
    }
    if (file !== null && setting.key in values) {
      return { setting, value: fileValue(setting, values[setting.key], file), source: "file" };
    }
    return { setting, value: setting.fallback(), source: "default" };
  });
  return { file, settings };
}

function readConfigFile(
  given: string | undefined,
  cwd: string,
): { file: string | null; values: Record<string, unknown> } {
  const path = resolve(cwd, given ?? CONFIG_FILE);
  let text: string;
  try {
    if (statSync(path).isDirectory()) {
      throw new ConfigError(`Config file ${path} is a folder; pass --config with a JSON file.`);
    }
    text = readFileSync(path, "utf8");
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    if (given === undefined && (error as NodeJS.ErrnoException).code === "ENOENT") {
      return { file: null, values: {} };
    }
    throw new ConfigError(
      `Cannot read config file ${path}: ${(error as Error).message}. ` +
        "Check the --config path.",
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(
      `Config file ${path} is not valid JSON: ${(error as Error).message}. ` +
        `Fix it, or move it away to use flags and environment variables only.`,
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(
      `Config file ${path} must hold a JSON object such as {"kv": "data/kv.sqlite3"}: found ${
        Array.isArray(parsed) ? "an array" : typeof parsed
      }.`,
    );
  }
  const values = parsed as Record<string, unknown>;
  const known = SETTINGS.map((s) => s.key);
  for (const key of Object.keys(values)) {
    if (key === "$schema" || key.startsWith("//")) continue;
    if (!known.includes(key)) {
      throw new ConfigError(
        `Config file ${path} has an unknown key ${JSON.stringify(key)}. Known keys: ${
          known.join(", ")
        }.`,
      );
    }
  }
  return { file: path, values };
}

function fileValue(setting: Setting, raw: unknown, file: string): string | string[] {
  const bad = (want: string) =>
    new ConfigError(
      `Config file ${file}: ${JSON.stringify(setting.key)} must be ${want}: found ${
        JSON.stringify(raw)
      }.`,
    );
  const base = dirname(file);
  // Paths in the file are relative to the file, so `--config /etc/kvq/kvq.json` works anywhere.
  const path = (p: string) =>
    /^[a-z][a-z0-9+.-]*:/i.test(p) || isAbsolute(p) ? p : resolve(base, p);
  switch (setting.kind) {
    case "int":
      if (typeof raw === "number" && Number.isSafeInteger(raw)) return String(raw);
      if (typeof raw === "string" && /^-?\d+$/.test(raw.trim())) return raw.trim();
      throw bad("a whole number");
    case "paths": {
      const list = typeof raw === "string" ? [raw] : raw;
      if (!Array.isArray(list) || !list.every((p) => typeof p === "string" && p !== "")) {
        throw bad("a path or a list of paths");
      }
      return list.map(path);
    }
    case "path":
      if (typeof raw !== "string" || raw === "") throw bad("a path or URL");
      return raw === ":memory:" ? raw : path(raw);
    default:
      if (typeof raw === "string") return raw;
      if (
        setting.key === "queue" && Array.isArray(raw) && raw.every((q) => typeof q === "string")
      ) {
        return raw.join(",");
      }
      throw bad("a string");
  }
}

/**
 * Fills the option values of `command` from the environment and the file, where no flag was
 * given. Only settings that are options of the command (or that it reads, such as the dashboard
 * token of `cluster`) are filled; defaults are left to the command.
 */
export function applyConfig(
  command: string,
  values: Record<string, unknown>,
  config: ResolvedConfig,
): void {
  for (const { setting, value, source } of config.settings) {
    if (source === "flag" || source === "default" || value === null) continue;
    if (setting.commands !== "*" && !setting.commands.includes(command)) continue;
    values[setting.flag] = value;
  }
}

/** A value for display: secrets masked. */
export function displayValue(r: ResolvedSetting): string {
  if (r.value === null) return "(none)";
  if (r.setting.kind === "secret") return `(set, ${String(r.value).length} characters)`;
  return Array.isArray(r.value) ? r.value.join(", ") : r.value;
}
