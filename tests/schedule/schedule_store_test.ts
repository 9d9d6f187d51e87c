import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { addSchedule, type ScheduleInput } from "../../src/schedule/add.ts";
import { Schedules } from "../../src/schedule/api.ts";
import { deleteSchedule } from "../../src/schedule/delete.ts";
import { NoSuchScheduleError, ScheduleExistsError } from "../../src/schedule/errors.ts";
import { fireDueSchedules, nextScheduleAt } from "../../src/schedule/fire.ts";
import { getSchedule } from "../../src/schedule/get.ts";
import { listSchedules } from "../../src/schedule/list.ts";
import { pauseSchedule, resumeSchedule } from "../../src/schedule/pause.ts";
import { CorruptScheduleError } from "../../src/schedule/record.ts";
import { runScheduleNow } from "../../src/schedule/run_now.ts";
import { allKeys, allTasks, dueEntries, openTestStore } from "../fixtures/sched_store.ts";

const T0 = Date.parse("2026-05-01T10:00:00Z");
const MIN = 60_000;

test("addSchedule() stores the record and its due entry, first run now for intervals", async () => {
  await using t = await openTestStore(T0);
  const record = await addSchedule(t.store, {
    name: "poll",
    func: "checkFeeds",
    args: [1, "a"],
    type: "minutes",
    minutes: 15,
  });
  assert.equal(record.nextRun, T0);
  assert.equal(record.anchor, T0);
  assert.equal(record.repeats, -1);
  assert.equal(record.catchUp, false);
  assert.equal(record.queue, "default");
  assert.equal(record.createdAt, T0);
  assert.deepEqual(await getSchedule(t.store, "poll"), record);
  assert.deepEqual(await dueEntries(t.store), [[T0, "poll"]]);
  assert.equal(await nextScheduleAt(t.store), T0);
  const raw = await t.store.kv.get(t.store.keys.schedule("poll"));
  assert.ok(raw.value instanceof Uint8Array, "stored as UTF-8 JSON bytes");
  assert.equal(JSON.parse(new TextDecoder().decode(raw.value)).func, "checkFeeds");
});

test("addSchedule() starts a cron schedule at the next cron time, in its time zone", async () => {
  await using t = await openTestStore(T0 + 1234);
  const record = await addSchedule(t.store, {
    name: "mornings",
    func: "report",
    type: "cron",
    cron: "30 9 * * *",
    tz: "Europe/Berlin",
  });
  // 09:30 in Berlin (CEST, UTC+2) is 07:30 UTC, already past on May 1: May 2.
  assert.equal(new Date(record.nextRun!).toISOString(), "2026-05-02T07:30:00.000Z");
  assert.equal(record.tz, "Europe/Berlin");
});

test("addSchedule() takes nextRun as a Date, epoch ms or ISO text", async () => {
  await using t = await openTestStore(T0);
  const at = T0 + 90 * MIN;
  for (const [name, nextRun] of [["d", new Date(at)], ["n", at], ["s", "2026-05-01T11:30:00Z"]]) {
    const r = await addSchedule(t.store, {
      name: name as string,
      func: "f",
      type: "daily",
      nextRun: nextRun as Date,
    });
    assert.equal(r.nextRun, at);
    assert.equal(r.anchor, at);
  }
});

test("addSchedule() refuses each bad input, naming the field, and stores nothing", async () => {
  await using t = await openTestStore(T0);
  const good: ScheduleInput = { name: "ok", func: "f", type: "minutes", minutes: 5 };
  const cases: [string, Partial<ScheduleInput> | Record<string, unknown>, RegExp][] = [
    ["invalid cron", { type: "cron", minutes: undefined, cron: "61 * * * *" }, /"cron"/],
    ["cron of 7 fields", { type: "cron", minutes: undefined, cron: "* * * * * * *" }, /"cron"/],
    ["unknown tz", { type: "daily", minutes: undefined, tz: "Mars/Olympus" }, /"tz"/],
    ["minutes 0", { minutes: 0 }, /"minutes"/],
    ["minutes -5", { minutes: -5 }, /"minutes"/],
    ["minutes 1.5", { minutes: 1.5 }, /"minutes"/],
    ["minutes for daily", { type: "daily" }, /"minutes"/],
    ["unknown type", { type: "fortnightly" }, /"type"/],
    ["unparseable next run", { nextRun: "tomorrow" }, /"nextRun"/],
    ["invalid ISO next run", { nextRun: "2026-13-45T99:00:00Z" }, /"nextRun"/],
    ["empty name", { name: "" }, /"name"/],
    ["long name", { name: "x".repeat(129) }, /"name"/],
    ["control character in name", { name: "a\nb" }, /"name"/],
    ["func not an identifier", { func: "send email" }, /"func"/],
    ["args not an array", { args: "x" as unknown as unknown[] }, /"args"/],
    ["args not JSON", { args: [() => 1] }, /args/],
    ["args with a BigInt", { args: [1n] }, /args/],
    ["args too large", { args: ["x".repeat(60_000)] }, /"args"/],
    ["repeats -2", { repeats: -2 }, /"repeats"/],
    ["repeats 1.5", { repeats: 1.5 }, /"repeats"/],
    ["catchUp not boolean", { catchUp: "yes" }, /"catchUp"/],
    ["timeout 0", { timeout: 0 }, /"timeout"/],
    ["maxAttempts 0", { maxAttempts: 0 }, /"maxAttempts"/],
    ["priority 0.5", { priority: 0.5 }, /"priority"/],
    ["unknown field", { minute: 5 }, /"minute"/],
  ];
  for (const [what, patch, field] of cases) {
    await assert.rejects(
      addSchedule(t.store, { ...good, ...patch } as ScheduleInput),
      (error: Error) => {
        assert.ok(error instanceof TypeError || error instanceof RangeError, what);
        assert.match(error.message, field, what);
        return true;
      },
      what,
    );
  }
  assert.deepEqual(await allKeys(t.store), [], "nothing stored");
});

test("addSchedule() refuses a duplicate name unless replace is set", async () => {
  await using t = await openTestStore(T0);
  const first = await addSchedule(t.store, { name: "job", func: "f", type: "hourly" });
  await assert.rejects(
    addSchedule(t.store, { name: "job", func: "g", type: "daily", nextRun: T0 + MIN }),
    (error: Error) => {
      assert.ok(error instanceof ScheduleExistsError);
      assert.match(error.message, /"name"/);
      assert.match(error.message, /"job"/);
      return true;
    },
  );
  assert.deepEqual(await getSchedule(t.store, "job"), first, "the first is untouched");
  assert.deepEqual(await dueEntries(t.store), [[T0, "job"]]);

  t.clock.now = T0 + 5;
  const replaced = await addSchedule(
    t.store,
    { name: "job", func: "g", type: "daily", nextRun: T0 + MIN },
    { replace: true },
  );
  assert.equal(replaced.func, "g");
  assert.equal(replaced.createdAt, T0, "keeps the creation time");
  assert.deepEqual(await getSchedule(t.store, "job"), replaced);
  assert.deepEqual(await dueEntries(t.store), [[T0 + MIN, "job"]], "the due entry moved");
});

test("addSchedule() with repeats 0 stores a done schedule with no due entry", async () => {
  await using t = await openTestStore(T0);
  const r = await addSchedule(t.store, { name: "never", func: "f", type: "hourly", repeats: 0 });
  assert.equal(r.nextRun, null);
  assert.equal(r.done, true);
  assert.deepEqual(await dueEntries(t.store), []);
  assert.equal(await nextScheduleAt(t.store), null);
});

test("listSchedules() returns every schedule sorted by name", async () => {
  await using t = await openTestStore(T0);
  for (const name of ["b", "c", "a"]) {
    await addSchedule(t.store, { name, func: "f", type: "hourly" });
  }
  assert.deepEqual((await listSchedules(t.store)).map((r) => r.name), ["a", "b", "c"]);
  assert.equal(await getSchedule(t.store, "zzz"), null);
});

test("pauseSchedule() stops firing; resumeSchedule() restarts at the next slot after now", async () => {
  await using t = await openTestStore(T0);
  await addSchedule(t.store, { name: "h", func: "f", type: "hourly", catchUp: true });
  assert.equal(await fireDueSchedules(t.store), 1);
  const paused = await pauseSchedule(t.store, "h");
  assert.equal(paused.paused, true);
  assert.equal(paused.nextRun, T0 + 60 * MIN, "nextRun is kept for display");
  assert.deepEqual(await dueEntries(t.store), []);
  assert.equal(await nextScheduleAt(t.store), null);

  t.clock.now = T0 + 200 * MIN; // 3 slots pass while paused
  assert.equal(await fireDueSchedules(t.store), 0);
  const resumed = await resumeSchedule(t.store, "h");
  assert.equal(resumed.paused, false);
  assert.equal(resumed.nextRun, T0 + 240 * MIN, "the paused slots are skipped, even with catchUp");
  assert.deepEqual(await dueEntries(t.store), [[T0 + 240 * MIN, "h"]]);
  assert.equal(await fireDueSchedules(t.store), 0);
  t.clock.now = T0 + 240 * MIN;
  assert.equal(await fireDueSchedules(t.store), 1);
  assert.equal((await allTasks(t.store)).length, 2);

  await assert.rejects(pauseSchedule(t.store, "nope"), NoSuchScheduleError);
  await assert.rejects(resumeSchedule(t.store, "nope"), NoSuchScheduleError);
});

test("runScheduleNow() enqueues a task now without moving nextRun", async () => {
  await using t = await openTestStore(T0);
  await addSchedule(t.store, {
    name: "later",
    func: "f",
    args: [7],
    type: "daily",
    nextRun: T0 + 60 * MIN,
    priority: -1,
    intendedDateArg: true,
  });
  const task = await runScheduleNow(t.store, "later");
  assert.equal(task.state, "queued");
  assert.equal(task.priority, -1);
  assert.deepEqual(task.args, [7, new Date(T0).toISOString()]);
  const after = await getSchedule(t.store, "later");
  assert.equal(after!.nextRun, T0 + 60 * MIN);
  assert.equal(after!.repeats, -1);
  assert.equal(after!.lastTaskId, task.id);
  assert.equal(after!.lastRunAt, T0);
  assert.deepEqual(await dueEntries(t.store), [[T0 + 60 * MIN, "later"]]);
  assert.deepEqual((await allTasks(t.store)).map((r) => r.id), [task.id]);
  await assert.rejects(runScheduleNow(t.store, "nope"), NoSuchScheduleError);
});

test("deleteSchedule() removes the record and its due entry", async () => {
  await using t = await openTestStore(T0);
  await addSchedule(t.store, { name: "x", func: "f", type: "hourly" });
  assert.equal(await deleteSchedule(t.store, "x"), true);
  assert.equal(await deleteSchedule(t.store, "x"), false);
  assert.equal(await getSchedule(t.store, "x"), null);
  assert.deepEqual(await dueEntries(t.store), []);
});

test("a corrupt schedule is reported, and its due entry dropped when it comes due", async () => {
  await using t = await openTestStore(T0);
  await addSchedule(t.store, { name: "bad", func: "f", type: "hourly" });
  await t.store.kv.set(t.store.keys.schedule("bad"), new TextEncoder().encode('{"v":1}'));
  await assert.rejects(getSchedule(t.store, "bad"), CorruptScheduleError);
  const reported: Error[] = [];
  assert.deepEqual(await listSchedules(t.store, { onCorrupt: (e) => reported.push(e) }), []);
  assert.equal(reported.length, 1);
  assert.equal(await fireDueSchedules(t.store, { onCorrupt: (e) => reported.push(e) }), 0);
  assert.equal(reported.length, 2);
  assert.ok(reported[1] instanceof CorruptScheduleError);
  assert.deepEqual(await dueEntries(t.store), []);
  // replace repairs it
  await addSchedule(t.store, { name: "bad", func: "f", type: "hourly" }, { replace: true });
  assert.equal((await getSchedule(t.store, "bad"))!.func, "f");
});

test("Schedules facade adds, lists, gets, pauses, resumes, runs and deletes", async () => {
  await using t = await openTestStore(T0);
  const schedules = new Schedules(t.store);
  function sendReport(_to: string) {}
  const added = await schedules.add("r", sendReport, ["ops@example.com"], {
    type: "weekly",
    repeats: 2,
  });
  assert.equal(added.func, "sendReport");
  assert.deepEqual((await schedules.list()).map((r) => r.name), ["r"]);
  assert.equal((await schedules.get("r"))!.repeats, 2);
  assert.equal((await schedules.pause("r")).paused, true);
  assert.equal((await schedules.resume("r")).paused, false);
  assert.equal((await schedules.runNow("r")).func, "sendReport");
  assert.equal(await schedules.nextAt(), T0);
  assert.equal(await schedules.fireDue(), 1);
  await assert.rejects(
    schedules.add("r", "g", [], { type: "hourly" }),
    ScheduleExistsError,
  );
  assert.equal((await schedules.add("r", "g", [], { type: "hourly", replace: true })).func, "g");
  assert.equal(await schedules.delete("r"), true);
  assert.deepEqual(await schedules.list(), []);
});
