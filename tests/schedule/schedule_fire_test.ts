import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { addSchedule } from "../../src/schedule/add.ts";
import { fireDueSchedules, nextScheduleAt } from "../../src/schedule/fire.ts";
import { getSchedule } from "../../src/schedule/get.ts";
import { doorbellDelay } from "../../src/schedule/_write.ts";
import { KV_MAX_QUEUE_DELAY_MS } from "../../src/store/limits.ts";
import { Store } from "../../src/store/store.ts";
import { allTasks, dueEntries, openTestStore } from "../fixtures/sched_store.ts";

const T0 = Date.parse("2026-05-01T10:00:00Z");
const MIN = 60_000;
const HOUR = 60 * MIN;

/** The intended-date argument of each task, sorted. */
async function intendedDates(store: Store): Promise<string[]> {
  return (await allTasks(store)).map((r) => r.args!.at(-1) as string).sort();
}

test("fireDueSchedules() creates exactly one task per slot and advances nextRun", async () => {
  await using t = await openTestStore(T0);
  await addSchedule(t.store, {
    name: "p",
    func: "poll",
    args: ["feed"],
    type: "minutes",
    minutes: 5,
  });
  assert.equal(await fireDueSchedules(t.store), 1);
  assert.equal(await fireDueSchedules(t.store), 0, "the slot fired already");
  let record = await getSchedule(t.store, "p");
  assert.equal(record!.nextRun, T0 + 5 * MIN);
  assert.deepEqual(await dueEntries(t.store), [[T0 + 5 * MIN, "p"]]);
  const [task] = await allTasks(t.store);
  assert.equal(task!.func, "poll");
  assert.deepEqual(task!.args, ["feed"]);
  assert.equal(task!.state, "queued");
  assert.equal(record!.lastTaskId, task!.id);
  assert.equal(record!.lastRunAt, T0);

  t.clock.now = T0 + 5 * MIN - 1;
  assert.equal(await fireDueSchedules(t.store), 0, "not due yet");
  t.clock.now = T0 + 5 * MIN;
  assert.equal(await fireDueSchedules(t.store), 1);
  record = await getSchedule(t.store, "p");
  assert.equal(record!.nextRun, T0 + 10 * MIN);
  assert.equal((await allTasks(t.store)).length, 2);
});

test("nextScheduleAt() is the earliest due time over all schedules, null when none", async () => {
  await using t = await openTestStore(T0);
  assert.equal(await nextScheduleAt(t.store), null);
  await addSchedule(t.store, { name: "late", func: "f", type: "daily", nextRun: T0 + 3 * HOUR });
  await addSchedule(t.store, { name: "soon", func: "f", type: "daily", nextRun: T0 + HOUR });
  assert.equal(await nextScheduleAt(t.store), T0 + HOUR);
  assert.equal(await fireDueSchedules(t.store), 0);
});

test("fireDueSchedules() counts repeats down to 0 and then stops", async () => {
  await using t = await openTestStore(T0);
  await addSchedule(t.store, { name: "thrice", func: "f", type: "hourly", repeats: 3 });
  for (let i = 0; i < 3; i++) {
    t.clock.now = T0 + i * HOUR;
    assert.equal(await fireDueSchedules(t.store), 1);
    assert.equal((await getSchedule(t.store, "thrice"))!.repeats, 2 - i);
  }
  const done = await getSchedule(t.store, "thrice");
  assert.equal(done!.nextRun, null);
  assert.equal(done!.done, true);
  assert.deepEqual(await dueEntries(t.store), []);
  assert.equal(await nextScheduleAt(t.store), null);
  t.clock.now = T0 + 10 * HOUR;
  assert.equal(await fireDueSchedules(t.store), 0);
  assert.equal((await allTasks(t.store)).length, 3);
});

test("fireDueSchedules() with catchUp fires every slot missed in a 3-slot outage", async () => {
  await using t = await openTestStore(T0);
  await addSchedule(t.store, {
    name: "c",
    func: "f",
    type: "hourly",
    catchUp: true,
    intendedDateArg: true,
  });
  t.clock.now = T0 + 2 * HOUR + 30 * MIN; // slots 10:00, 11:00 and 12:00 were missed
  assert.equal(await fireDueSchedules(t.store), 3);
  assert.deepEqual(await intendedDates(t.store), [
    "2026-05-01T10:00:00.000Z",
    "2026-05-01T11:00:00.000Z",
    "2026-05-01T12:00:00.000Z",
  ]);
  assert.equal((await getSchedule(t.store, "c"))!.nextRun, T0 + 3 * HOUR);
  assert.equal(await fireDueSchedules(t.store), 0);
});

test("fireDueSchedules() without catchUp fires only the latest slot after an outage", async () => {
  await using t = await openTestStore(T0);
  await addSchedule(t.store, { name: "c", func: "f", type: "hourly", intendedDateArg: true });
  t.clock.now = T0 + 2 * HOUR + 30 * MIN;
  assert.equal(await fireDueSchedules(t.store), 1);
  assert.deepEqual(await intendedDates(t.store), ["2026-05-01T12:00:00.000Z"]);
  assert.equal((await getSchedule(t.store, "c"))!.nextRun, T0 + 3 * HOUR);
});

test("fireDueSchedules() with catchUp and repeats fires no more tasks than repeats left", async () => {
  await using t = await openTestStore(T0);
  await addSchedule(t.store, { name: "c", func: "f", type: "hourly", catchUp: true, repeats: 2 });
  t.clock.now = T0 + 5 * HOUR;
  assert.equal(await fireDueSchedules(t.store), 2);
  assert.equal((await getSchedule(t.store, "c"))!.nextRun, null);
});

test("fireDueSchedules() splits a long catch-up into commits and leaves the rest due", async () => {
  await using t = await openTestStore(T0);
  await addSchedule(t.store, {
    name: "m",
    func: "f",
    type: "minutes",
    minutes: 1,
    catchUp: true,
    intendedDateArg: true,
  });
  t.clock.now = T0 + 1499 * MIN; // 1500 slots due
  const first = await fireDueSchedules(t.store);
  assert.ok(first > 100 && first < 1500, `fired ${first} slots in several capped commits`);
  assert.ok((await nextScheduleAt(t.store))! <= t.clock.now, "the rest stays due");
  const second = await fireDueSchedules(t.store);
  assert.equal(first + second, 1500);
  const dates = await intendedDates(t.store);
  assert.equal(new Set(dates).size, 1500, "each slot once");
  assert.equal(dates[0], new Date(T0).toISOString());
  assert.equal(dates.at(-1), new Date(T0 + 1499 * MIN).toISOString());
  assert.equal((await getSchedule(t.store, "m"))!.nextRun, T0 + 1500 * MIN);
});

test("fireDueSchedules() with noOverlap skips slots while the last task is unfinished", async () => {
  await using t = await openTestStore(T0);
  await addSchedule(t.store, {
    name: "n",
    func: "f",
    type: "hourly",
    noOverlap: true,
    catchUp: true,
    intendedDateArg: true,
  });
  assert.equal(await fireDueSchedules(t.store), 1);
  t.clock.now = T0 + HOUR; // the first task is still queued
  assert.equal(await fireDueSchedules(t.store), 0);
  let record = await getSchedule(t.store, "n");
  assert.equal(record!.nextRun, T0 + 2 * HOUR, "the skipped slot is passed");
  assert.equal((await allTasks(t.store)).length, 1);

  // The task runs and finishes.
  const [task] = await allTasks(t.store);
  const finished = task!.claim(T0 + HOUR, "c1", "kvq-w1.g1").succeed(T0 + HOUR, "null");
  await t.store.kv.set(t.store.keys.task(task!.id), finished.encode());

  t.clock.now = T0 + 4 * HOUR + 5; // slots 12:00, 13:00, 14:00 due: only the latest runs
  assert.equal(await fireDueSchedules(t.store), 1);
  assert.deepEqual(await intendedDates(t.store), [
    "2026-05-01T10:00:00.000Z",
    "2026-05-01T14:00:00.000Z",
  ]);
  record = await getSchedule(t.store, "n");
  assert.equal(record!.nextRun, T0 + 5 * HOUR);
});

test("fireDueSchedules() passes the slot's intended time as the last argument", async () => {
  await using t = await openTestStore(T0 + 1234);
  await addSchedule(t.store, {
    name: "i",
    func: "f",
    args: [1, { a: 2 }],
    type: "cron",
    cron: "*/10 * * * * *",
    tz: "Asia/Kolkata",
    intendedDateArg: true,
  });
  t.clock.now = T0 + 10_500; // the slot is 10:00:10, fired half a second late
  assert.equal(await fireDueSchedules(t.store), 1);
  const [task] = await allTasks(t.store);
  assert.deepEqual(task!.args, [1, { a: 2 }, "2026-05-01T10:00:10.000Z"]);
});

test("fireDueSchedules() passes the task options of the schedule", async () => {
  await using t = await openTestStore(T0);
  await addSchedule(t.store, {
    name: "o",
    func: "f",
    type: "once",
    priority: 3,
    timeout: 5000,
    maxAttempts: 2,
  });
  assert.equal(await fireDueSchedules(t.store), 1);
  const [task] = await allTasks(t.store);
  assert.equal(task!.priority, 3);
  assert.equal(task!.timeout, 5000);
  assert.equal(task!.maxAttempts, 2);
  assert.equal((await getSchedule(t.store, "o"))!.done, true, "a once schedule is done");
});

test("fireDueSchedules() from two stores on one KV fires each slot once", async () => {
  await using a = await openTestStore(T0);
  const b = new Store(a.handle, "default", { clock: () => a.clock.now });
  await addSchedule(a.store, { name: "x", func: "f", type: "minutes", minutes: 1, catchUp: true });
  let created = 0;
  for (let minute = 0; minute < 20; minute++) {
    a.clock.now = T0 + minute * MIN;
    const counts = await Promise.all([fireDueSchedules(a.store), fireDueSchedules(b)]);
    created += counts[0] + counts[1];
  }
  assert.equal(created, 20);
  assert.equal((await allTasks(a.store)).length, 20);
});

test("doorbellDelay() chains waits over 30 days in links that end at the next run", () => {
  const now = T0;
  assert.equal(doorbellDelay(now + HOUR, now), HOUR);
  assert.equal(doorbellDelay(now - HOUR, now), 0);
  assert.equal(doorbellDelay(now + KV_MAX_QUEUE_DELAY_MS, now), KV_MAX_QUEUE_DELAY_MS);
  const day = 24 * HOUR;
  assert.equal(doorbellDelay(now + 45 * day, now), 15 * day);
  assert.equal(doorbellDelay(now + 60 * day, now), KV_MAX_QUEUE_DELAY_MS);
});

test("fireDueSchedules() in three racing processes fires each slot of a 1-second cron once", async () => {
  await using t = await openTestStore(Date.now());
  const record = await addSchedule(
    new Store(t.handle, "default"), // the real clock
    {
      name: "every-second",
      func: "tick",
      type: "cron",
      cron: "*/1 * * * * *",
      catchUp: true,
      intendedDateArg: true,
    },
  );
  const deadline = Date.now() + 3000;
  const fixture = fileURLToPath(new URL("../fixtures/sched_racer.ts", import.meta.url));
  const command = "Deno" in globalThis ? ["run", "-A", fixture] : [fixture];
  const root = fileURLToPath(new URL("../..", import.meta.url));
  const runs = await Promise.all(
    [1, 2, 3].map(() =>
      new Promise<{ created: number; calls: number }>((resolve, reject) => {
        const child = spawn(process.execPath, [...command, t.path, String(deadline)], {
          cwd: root,
          stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "";
        let err = "";
        child.stdout.on("data", (chunk) => out += chunk);
        child.stderr.on("data", (chunk) => err += chunk);
        child.on("error", reject);
        child.on("close", (code) => {
          if (code !== 0) reject(new Error(`racer exited with ${code}: ${err}`));
          else resolve(JSON.parse(out.trim().split("\n").at(-1)!));
        });
      })
    ),
  );
  const dates = await intendedDates(t.store);
  const created = runs.reduce((sum, r) => sum + r.created, 0);
  assert.equal(created, dates.length, "every created task is stored");
  assert.ok(dates.length >= 2, `at least 2 slots fired, got ${dates.length}`);
  assert.equal(new Set(dates).size, dates.length, `no slot fired twice: ${dates.join(", ")}`);
  const first = record.nextRun!;
  dates.forEach((date, i) => assert.equal(date, new Date(first + i * 1000).toISOString()));
  assert.ok(
    runs.filter((r) => r.calls > 0).length === 3,
    `all three processes raced: ${JSON.stringify(runs)}`,
  );
});
