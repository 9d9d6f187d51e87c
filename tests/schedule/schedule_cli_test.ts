import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { parseArgs } from "node:util";
import { type CommandContext, UsageError } from "../../src/cli/command.ts";
import { scheduleCommand } from "../../src/cli/commands/schedule.ts";
import { Queue } from "../../src/queue/queue.ts";
import { NoSuchScheduleError, ScheduleExistsError } from "../../src/schedule/errors.ts";
import { getSchedule } from "../../src/schedule/get.ts";
import { allKeys, allTasks, openTestStore, type TestStore } from "../fixtures/sched_store.ts";
import { kvq as cli } from "../cli/_helpers.ts";
import { startCluster, tempDir } from "../cluster/_process.ts";

const T0 = Date.parse("2026-05-01T10:00:00Z");

/** Runs `kvq schedule ARGS…` against the test store, parsing options as main does. */
async function kvq(t: TestStore, ...args: string[]) {
  const parsed = parseArgs({
    args,
    options: { ...scheduleCommand.options, json: { type: "boolean" } },
    allowPositionals: true,
    strict: true,
  });
  const out: string[] = [];
  const err: string[] = [];
  const ctx: CommandContext = {
    values: parsed.values as CommandContext["values"],
    positionals: parsed.positionals,
    json: parsed.values.json === true,
    queue: () => Promise.resolve(new Queue(t.store)),
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    tty: false,
    kv: t.path,
    argv: ["schedule", ...args],
    entry: "main.ts",
  };
  const code = await scheduleCommand.run(ctx);
  return { code, out: out.join("\n"), err: err.join("\n") };
}

test("scheduleCommand add stores a schedule from its flags", async () => {
  await using t = await openTestStore(T0);
  const { code, out } = await kvq(
    t,
    ...["add", "nightly", "sendReport", "--type", "cron", "--cron", "0 2 * * *"],
    ...["--tz", "Europe/Berlin", "--args", '["ops@example.com"]', "--repeats", "5"],
    ...["--catch-up", "--no-overlap", "--intended-date", "--priority", "2", "--timeout", "900"],
  );
  assert.equal(code, 0);
  assert.match(out, /Added schedule nightly: sendReport cron "0 2 \* \* \*" \(Europe\/Berlin\)/);
  const r = await getSchedule(t.store, "nightly");
  assert.deepEqual(r!.args, ["ops@example.com"]);
  assert.equal(r!.repeats, 5);
  assert.equal(r!.catchUp, true);
  assert.equal(r!.noOverlap, true);
  assert.equal(r!.intendedDateArg, true);
  assert.equal(r!.priority, 2);
  assert.equal(r!.timeout, 900);
  assert.equal(new Date(r!.nextRun!).toISOString(), "2026-05-02T00:00:00.000Z");
});

test("scheduleCommand add --next-run and --json", async () => {
  await using t = await openTestStore(T0);
  const { out } = await kvq(
    t,
    ...["add", "p", "poll", "--type", "minutes", "--minutes", "15"],
    ...["--next-run", "2026-05-01T12:00:00Z", "--json"],
  );
  const json = JSON.parse(out);
  assert.equal(json.name, "p");
  assert.equal(json.minutes, 15);
  assert.equal(json.nextRun, Date.parse("2026-05-01T12:00:00Z"));
});

test("scheduleCommand add refuses usage mistakes with a UsageError, storing nothing", async () => {
  await using t = await openTestStore(T0);
  const usage: [string[], RegExp][] = [
    [["add", "x", "f", "--type", "hourly", "--args", "[1,"], /--args/],
    [["add", "x", "f"], /--type/],
    [["add", "x"], /Name the schedule and its task/],
    [["add", "x", "f", "extra", "--type", "hourly"], /"extra"/],
    [["add", "x", "f", "--type", "minutes", "--minutes", "five"], /--minutes/],
    [["frobnicate"], /Unknown action/],
    [[], /Name an action/],
    [["pause"], /Name the schedule/],
    [["show", "a", "b"], /Unexpected argument "b"/],
  ];
  for (const [args, message] of usage) {
    await assert.rejects(kvq(t, ...args), (error: Error) => {
      assert.ok(error instanceof UsageError, args.join(" "));
      assert.match(error.message, message);
      return true;
    });
  }
  assert.deepEqual(await allKeys(t.store), []);
});

test("scheduleCommand add lets validation errors through, naming the field", async () => {
  await using t = await openTestStore(T0);
  await assert.rejects(
    kvq(t, "add", "x", "f", "--type", "cron", "--cron", "99 * * * *"),
    (error: Error) => error instanceof TypeError && /"cron"/.test(error.message),
  );
  await assert.rejects(
    kvq(t, "add", "x", "f", "--type", "daily", "--tz", "Nowhere/City"),
    (error: Error) => error instanceof RangeError && /"tz"/.test(error.message),
  );
  await assert.rejects(
    kvq(t, "add", "x", "f", "--type", "daily", "--next-run", "soon"),
    (error: Error) => error instanceof TypeError && /"nextRun"/.test(error.message),
  );
  assert.deepEqual(await allKeys(t.store), []);
  await kvq(t, "add", "x", "f", "--type", "daily");
  await assert.rejects(kvq(t, "add", "x", "g", "--type", "daily"), ScheduleExistsError);
  await kvq(t, "add", "x", "g", "--type", "daily", "--replace");
  assert.equal((await getSchedule(t.store, "x"))!.func, "g");
});

test("scheduleCommand list, show, pause, resume, run and rm", async () => {
  await using t = await openTestStore(T0);
  assert.match((await kvq(t, "list")).out, /No schedules in queue default/);
  await kvq(t, "add", "b", "beta", "--type", "hourly");
  await kvq(t, "add", "a", "alpha", "--type", "minutes", "--minutes", "5", "--repeats", "3");

  const list = (await kvq(t, "list")).out.split("\n");
  assert.match(list[0]!, /^NAME\s+FUNC\s+WHEN\s+NEXT RUN\s+REPEATS\s+STATE$/);
  assert.match(list[1]!, /^a\s+alpha\s+every 5 minutes\s+2026-05-01T10:00:00.000Z\s+3\s+active$/);
  assert.match(list[2]!, /^b\s+beta\s+hourly\s+2026-05-01T10:00:00.000Z\s+forever\s+active$/);
  assert.deepEqual(
    JSON.parse((await kvq(t, "list", "--json")).out).map((r: { name: string }) => r.name),
    [
      "a",
      "b",
    ],
  );

  assert.match((await kvq(t, "show", "a")).out, /func\s+alpha/);
  assert.equal(JSON.parse((await kvq(t, "show", "a", "--json")).out).repeats, 3);

  assert.match((await kvq(t, "pause", "a")).out, /Paused schedule a/);
  assert.match((await kvq(t, "list")).out, /paused/);
  assert.match((await kvq(t, "resume", "a")).out, /Resumed schedule a: next run 2026-05-01T10:00/);

  const run = await kvq(t, "run", "b", "--json");
  const [task] = await allTasks(t.store);
  assert.equal(JSON.parse(run.out).id, task!.id);
  assert.equal(task!.func, "beta");

  assert.match((await kvq(t, "rm", "a")).out, /Removed schedule a/);
  await assert.rejects(kvq(t, "rm", "a"), NoSuchScheduleError);
  await assert.rejects(kvq(t, "show", "a"), NoSuchScheduleError);
  await assert.rejects(kvq(t, "run", "a"), NoSuchScheduleError);
});

test("kvq schedule add --cron implies --type cron, and warns when no running cluster exports the func", async () => {
  using dir = tempDir();
  const lone = await cli([
    "schedule",
    "add",
    "hourly",
    "add",
    "--cron",
    "0 * * * *",
    "--kv",
    dir.kv,
  ]);
  assert.equal(lone.code, 0, lone.err);
  assert.match(lone.out, /Added schedule hourly/);
  assert.match(lone.err, /warning: no cluster serves queue default now/);
  const cluster = await startCluster(dir.kv, ["--workers", "1", "--no-sentinel"]);
  try {
    const typo = await cli([
      "schedule",
      "add",
      "typo",
      "addd",
      "--cron",
      "0 * * * *",
      "--kv",
      dir.kv,
    ]);
    assert.equal(typo.code, 0, typo.err);
    assert.match(
      typo.err,
      /no running cluster of queue default exports "addd" \(they export .*\badd\b/,
    );
    const fine = await cli([
      "schedule",
      "add",
      "fine",
      "add",
      "--cron",
      "0 * * * *",
      "--kv",
      dir.kv,
    ]);
    assert.equal(fine.code, 0, fine.err);
    assert.equal(fine.err, "");
    const wrong = await cli([
      "schedule",
      "add",
      "w",
      "add",
      "--type",
      "daily",
      "--cron",
      "0 * * * *",
      "--kv",
      dir.kv,
    ]);
    assert.equal(wrong.code, 2);
    assert.match(wrong.err, /--cron goes with --type cron/);
  } finally {
    await cluster.stop();
  }
});
