/**
 * Helpers for the CLI tests: run `main()` in-process with captured output, and temporary
 * folders.
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { main } from "../../src/cli/main.ts";

/** The `main.ts` entry, as `main()` is given it. */
export const ENTRY = new URL("../../main.ts", import.meta.url).href;

/** The task module of the CLI tests. */
export const CLI_TASKS = fileURLToPath(new URL("../fixtures/cli_tasks.ts", import.meta.url));

/** What one in-process run printed. */
export interface Run {
  code: number;
  out: string;
  err: string;
}

/** Runs `kvq ...argv` in this process with captured output. */
export async function kvq(argv: string[], options: { tty?: boolean } = {}): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, ENTRY, {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    tty: options.tty ?? false,
  });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

/** A fresh temporary folder, removed on dispose. */
export function tempDir(): { path: string; kv: string; [Symbol.dispose](): void } {
  const path = mkdtempSync(join(tmpdir(), "kvq-cli-test-"));
  return {
    path,
    kv: join(path, "kv.sqlite3"),
    [Symbol.dispose]() {
      rmSync(path, { recursive: true, force: true });
    },
  };
}
