import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CliIo, main } from "../../src/cli/main.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { check, fc, SEED } from "./_fuzz.ts";
import { report } from "../_report.ts";

const ENTRY = new URL("../../main.ts", import.meta.url).href;

/** The commands that end by themselves (not cluster, work or dashboard, which run on). */
const COMMANDS = [
  "enqueue",
  "result",
  "task",
  "tasks",
  "cancel",
  "retry",
  "delete",
  "schedule",
  "help",
  "version",
  "--help",
  "-h",
  "--version",
  "enqeue",
  "bogus",
  "",
];

const FLAGS = [
  "--args",
  "--group",
  "--priority",
  "--delay",
  "--eta",
  "--timeout",
  "--max-attempts",
  "--state",
  "--func",
  "--since",
  "--limit",
  "--failed",
  "--json",
  "--help",
  "-h",
  "--queue",
  "--type",
  "--cron",
  "--tz",
  "--minutes",
  "--repeats",
  "--next-run",
  "--catch-up",
  "--no-overlap",
  "--intended-date",
  "--paused",
  "--replace",
  "--unknown",
  "-x",
  "--",
];

const WORDS = [
  "add",
  "list",
  "show",
  "pause",
  "resume",
  "run",
  "rm",
  "nightly",
  "queued",
  "failed",
  "succeeded",
  "cron",
  "daily",
  "minutes",
  "*/5 * * * * *",
  "Europe/Berlin",
  "2026-01-01T00:00:00Z",
  "[1, 2]",
  "{}",
  "[",
  "0",
  "-1",
  "1e3",
  "99999999999999999999",
  "NaN",
  "0199a3f0-0000-7000-8000-000000000000",
  "tango-alpha-nine-river",
];

/** A small `--wait`, so no command waits long for a task no cluster runs. */
const WAIT = fc.constantFrom("0", "1", "20", "-5", "x").map((v) => ["--wait", v]);

const token = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...FLAGS).map((f) => [f]) },
  { weight: 4, arbitrary: fc.constantFrom(...WORDS).map((w) => [w]) },
  { weight: 1, arbitrary: WAIT },
  {
    weight: 2,
    arbitrary: fc.string({ maxLength: 12 }).filter((s) =>
      !s.startsWith("--kv") && !s.startsWith("--wait")
    )
      .map((s) => [s]),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.constantFrom(...FLAGS), fc.jsonValue()).map((
      [f, v],
    ) => [`${f}=${JSON.stringify(v)}`]),
  },
);

const argv = fc.tuple(
  fc.constantFrom(...COMMANDS),
  fc.array(token, { maxLength: 8 }).map((t) => t.flat()),
);

/** An io that keeps what was printed. */
function capture(): CliIo & { outText: string[]; errText: string[] } {
  const outText: string[] = [];
  const errText: string[] = [];
  return {
    outText,
    errText,
    out: (t) => void outText.push(t),
    err: (t) => void errText.push(t),
    tty: false,
  };
}

test(`main() with fuzzed argv exits 0-4, with a message on err when non-zero, and never throws (seed ${SEED})`, async () => {
  const dir = mkdtempSync(join(tmpdir(), "kvq-fuzz-cli-"));
  const kv = join(dir, "kv.sqlite3");
  try {
    const queue = await openQueue({ kv });
    const known = await queue.enqueue({ func: "add", args: [1, 2] });
    queue.close();
    const codes = new Map<number, number>();
    await check(
      "kvq main(argv)",
      fc.asyncProperty(argv, async ([command, rest]) => {
        const io = capture();
        const args = command === "" ? rest : [command, ...rest];
        // `--kv` is appended last, so it wins over nothing the fuzzer wrote.
        const code = await main([...args, "--kv", kv], ENTRY, io);
        codes.set(code, (codes.get(code) ?? 0) + 1);
        assert.ok([0, 1, 2, 3, 4].includes(code), `exit ${code} for ${JSON.stringify(args)}`);
        if (code !== 0 && !(code === 2 && args.length === 0)) {
          assert.ok(
            io.errText.join("").trim().length > 0,
            `exit ${code} with nothing on err for ${JSON.stringify(args)}`,
          );
        }
      }),
      400,
    );
    report(`fuzz: kvq main(argv) exit codes: ${JSON.stringify(Object.fromEntries(codes))}`);
    // The task written before is still there, untouched or moved on by the fuzzed commands.
    const after = await openQueue({ kv });
    try {
      const record = await after.fetch(known.id);
      assert.ok(record === null || record.func === "add");
    } finally {
      after.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(`kvq enqueue --args with fuzzed JSON text stores exactly the parsed array, or exits 2 (seed ${SEED})`, async () => {
  const dir = mkdtempSync(join(tmpdir(), "kvq-fuzz-args-"));
  const kv = join(dir, "kv.sqlite3");
  try {
    const text = fc.oneof(
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.json(),
      fc.string({ maxLength: 30 }),
      fc.constantFrom(
        "[1, 2",
        "[1,]",
        '{"a":1',
        "NaN",
        "-0",
        "1e400",
        '"\\ud800"',
        "[[[[[[[[]]]]]]]]",
      ),
    );
    let stored = 0;
    await check(
      "kvq enqueue --args",
      // "-" reads standard input (tested apart); "@…" names a file.
      fc.asyncProperty(text.filter((t) => t !== "-"), async (args) => {
        const io = capture();
        const code = await main(
          ["enqueue", "add", `--args=${args}`, "--json", "--kv", kv],
          ENTRY,
          io,
        );
        if (args.startsWith("@")) {
          assert.equal(code, 2, `exit ${code} for ${JSON.stringify(args)}: ${io.errText}`);
          assert.match(io.errText.join(""), /--args @.*can't read the file/);
          return;
        }
        let parsed: unknown;
        let valid = true;
        try {
          parsed = JSON.parse(args);
        } catch {
          valid = false;
        }
        if (!valid || !Array.isArray(parsed)) {
          assert.equal(code, 2, `exit ${code} for ${JSON.stringify(args)}: ${io.errText}`);
          assert.match(io.errText.join(""), /--args must be a JSON array/);
          return;
        }
        assert.ok(code === 0 || code === 1 || code === 2, `exit ${code}: ${io.errText}`);
        if (code !== 0) {
          assert.ok(io.errText.join("").length > 0);
          return;
        }
        const out = JSON.parse(io.outText.join("\n")) as { id: string };
        const queue = await openQueue({ kv });
        try {
          const record = await queue.fetch(out.id);
          assert.equal(JSON.stringify(record?.args), JSON.stringify(parsed));
          stored++;
        } finally {
          queue.close();
        }
      }),
      300,
    );
    report(`fuzz: kvq enqueue --args: ${stored} stored`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
