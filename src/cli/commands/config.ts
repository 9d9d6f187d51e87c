/**
 * `kvq config`: the effective configuration and where each value came from (flag, environment,
 * config file or default), like Django Q's `qinfo --config`.
 *
 * @module
 */
import { type Command, type OptionSpec, UsageError } from "../command.ts";
import { CONFIG_FILE, displayValue, resolveConfig, SETTINGS } from "../config.ts";
import { resolveKvLocation } from "../../store/kv.ts";

const OPTIONS: OptionSpec = Object.fromEntries(
  SETTINGS.filter((s) => s.flag !== "kv" && s.flag !== "queue").map((s) => [
    s.flag,
    s.kind === "paths" ? { type: "string", multiple: true } : { type: "string" },
  ]),
);

/** `kvq config [--config FILE] [any setting's flag]` */
export const configCommand: Command = {
  name: "config",
  summary: "Show the effective configuration and where each value came from",
  usage: "kvq config [--config FILE] [--json]",
  options: OPTIONS,
  help: `Each setting comes from its flag, else its environment variable, else the config file
(${CONFIG_FILE} in the working directory, or --config FILE), else its default. Paths in the file
are relative to the file. Any setting's flag may be given here to see its effect.

Settings (file key, environment variable, flag):
${
    SETTINGS.map((s) =>
      `  ${s.key.padEnd(15)} ${s.env.padEnd(20)} --${s.flag.padEnd(13)} ${s.about}`
    ).join("\n")
  }

Example ${CONFIG_FILE}:
  {"kv": "/var/lib/kvq/kv.sqlite3", "tasks": ["./tasks.ts"], "workers": 4, "timeout": 60000}`,
  run(ctx) {
    if (ctx.positionals.length > 0) {
      throw new UsageError(`Unexpected argument ${JSON.stringify(ctx.positionals[0])}`);
    }
    const config = resolveConfig(ctx.values, {
      configFile: ctx.values.config as string | undefined,
    });
    const kv = config.settings.find((r) => r.setting.key === "kv")!;
    const location = resolveKvLocation(String(kv.value)).location;
    if (ctx.json) {
      ctx.out(JSON.stringify({
        file: config.file,
        kvLocation: location,
        settings: Object.fromEntries(
          config.settings.map((r) => [r.setting.key, {
            value: r.setting.kind === "secret" && r.value !== null ? "(set)" : r.value,
            source: r.source,
            env: r.setting.env,
            flag: `--${r.setting.flag}`,
          }]),
        ),
      }));
      return Promise.resolve(0);
    }
    ctx.out(`config file  ${config.file ?? `(none: no ${CONFIG_FILE} here)`}`);
    ctx.out(`KV store     ${location}`);
    ctx.out("");
    const width = Math.max(...config.settings.map((r) => displayValue(r).length), 5);
    ctx.out(`${"SETTING".padEnd(15)} ${"VALUE".padEnd(width)}  SOURCE`);
    for (const r of config.settings) {
      const from = r.source === "env"
        ? `env ${r.setting.env}`
        : r.source === "flag"
        ? `flag --${r.setting.flag}`
        : r.source;
      ctx.out(`${r.setting.key.padEnd(15)} ${displayValue(r).padEnd(width)}  ${from}`);
    }
    return Promise.resolve(0);
  },
};
