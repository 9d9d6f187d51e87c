import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { dueSlots, nextRun } from "../../src/schedule/next_run.ts";
import type { ScheduleSpec } from "../../src/schedule/spec.ts";

/** `count` successive slots after the anchor, each found from the one before. */
function slots(spec: ScheduleSpec, anchor: string, count: number): string[] {
  const result: string[] = [];
  let after = new Date(anchor);
  for (let i = 0; i < count; i++) {
    const next = nextRun(spec, { anchor: new Date(anchor), after });
    assert.ok(next !== null, `slot ${i + 1} exists`);
    result.push(next.toISOString());
    after = next;
  }
  return result;
}

function iso(dates: Date[]): string[] {
  return dates.map((date) => date.toISOString());
}

const at = (text: string) => new Date(text);

test("nextRun() steps a minutes schedule by its elapsed minutes", () => {
  const spec: ScheduleSpec = { type: "minutes", minutes: 15 };
  assert.deepEqual(slots(spec, "2026-05-01T10:00:00.000Z", 3), [
    "2026-05-01T10:15:00.000Z",
    "2026-05-01T10:30:00.000Z",
    "2026-05-01T10:45:00.000Z",
  ]);
  const anchor = at("2026-05-01T10:00:00Z");
  assert.equal(
    nextRun(spec, { anchor, after: at("2026-05-01T10:20:00Z") })?.toISOString(),
    "2026-05-01T10:30:00.000Z",
  );
  assert.equal(
    nextRun(spec, { anchor, after: at("2026-05-01T10:30:00Z") })?.toISOString(),
    "2026-05-01T10:45:00.000Z",
    "strictly after a slot",
  );
  assert.equal(
    nextRun(spec, { anchor, after: at("2026-05-01T09:00:00Z") })?.toISOString(),
    "2026-05-01T10:00:00.000Z",
    "the anchor when asked before it",
  );
});

test("nextRun() keeps an hourly schedule at 60 elapsed minutes across the Berlin spring-forward", () => {
  const spec: ScheduleSpec = { type: "hourly", tz: "Europe/Berlin" };
  assert.deepEqual(slots(spec, "2026-03-29T00:30:00.000Z", 3), [
    "2026-03-29T01:30:00.000Z",
    "2026-03-29T02:30:00.000Z",
    "2026-03-29T03:30:00.000Z",
  ]);
});

test("nextRun() steps a daily UTC schedule by 24 hours", () => {
  assert.deepEqual(slots({ type: "daily" }, "2026-02-27T06:45:00.000Z", 3), [
    "2026-02-28T06:45:00.000Z",
    "2026-03-01T06:45:00.000Z",
    "2026-03-02T06:45:00.000Z",
  ]);
});

test("nextRun() keeps 09:00 local across the Berlin spring-forward day", () => {
  // 09:00 CET is 08:00Z; from 2026-03-29 09:00 CEST is 07:00Z.
  assert.deepEqual(slots({ type: "daily", tz: "Europe/Berlin" }, "2026-03-27T08:00:00.000Z", 3), [
    "2026-03-28T08:00:00.000Z",
    "2026-03-29T07:00:00.000Z",
    "2026-03-30T07:00:00.000Z",
  ]);
});

test("nextRun() keeps 09:00 local across the Berlin fall-back day", () => {
  assert.deepEqual(slots({ type: "daily", tz: "Europe/Berlin" }, "2026-10-23T07:00:00.000Z", 3), [
    "2026-10-24T07:00:00.000Z",
    "2026-10-25T08:00:00.000Z",
    "2026-10-26T08:00:00.000Z",
  ]);
});

test("nextRun() keeps 09:00 local across the New York spring-forward and fall-back days", () => {
  const spec: ScheduleSpec = { type: "daily", tz: "America/New_York" };
  // 09:00 EST is 14:00Z, 09:00 EDT is 13:00Z.
  assert.deepEqual(slots(spec, "2026-03-06T14:00:00.000Z", 3), [
    "2026-03-07T14:00:00.000Z",
    "2026-03-08T13:00:00.000Z",
    "2026-03-09T13:00:00.000Z",
  ]);
  assert.deepEqual(slots(spec, "2026-10-30T13:00:00.000Z", 3), [
    "2026-10-31T13:00:00.000Z",
    "2026-11-01T14:00:00.000Z",
    "2026-11-02T14:00:00.000Z",
  ]);
});

test("nextRun() moves 02:30 in the Berlin spring-forward gap to 03:30 CEST", () => {
  // 02:30 CET is 01:30Z; 02:30 does not exist on 2026-03-29, 03:30 CEST is 01:30Z.
  assert.deepEqual(slots({ type: "daily", tz: "Europe/Berlin" }, "2026-03-28T01:30:00.000Z", 2), [
    "2026-03-29T01:30:00.000Z",
    "2026-03-30T00:30:00.000Z",
  ]);
});

test("nextRun() takes the earlier 02:30 on the Berlin fall-back day", () => {
  // 02:30 occurs at 00:30Z (CEST) and 01:30Z (CET) on 2026-10-25.
  assert.deepEqual(slots({ type: "daily", tz: "Europe/Berlin" }, "2026-10-24T00:30:00.000Z", 2), [
    "2026-10-25T00:30:00.000Z",
    "2026-10-26T01:30:00.000Z",
  ]);
});

test("nextRun() resolves New York's gap forward and its overlap to the earlier time", () => {
  const spec: ScheduleSpec = { type: "daily", tz: "America/New_York" };
  // 02:30 EST is 07:30Z; 02:30 does not exist on 2026-03-08, so 03:30 EDT (07:30Z).
  assert.deepEqual(slots(spec, "2026-03-07T07:30:00.000Z", 2), [
    "2026-03-08T07:30:00.000Z",
    "2026-03-09T06:30:00.000Z",
  ]);
  // 01:30 occurs twice on 2026-11-01: 05:30Z (EDT) and 06:30Z (EST).
  assert.deepEqual(slots(spec, "2026-10-31T05:30:00.000Z", 2), [
    "2026-11-01T05:30:00.000Z",
    "2026-11-02T06:30:00.000Z",
  ]);
});

test("nextRun() steps weekly and biweekly schedules by local days across DST", () => {
  // Friday 09:00 Europe/Berlin.
  assert.deepEqual(slots({ type: "weekly", tz: "Europe/Berlin" }, "2026-03-20T08:00:00.000Z", 2), [
    "2026-03-27T08:00:00.000Z",
    "2026-04-03T07:00:00.000Z",
  ]);
  assert.deepEqual(
    slots({ type: "biweekly", tz: "Europe/Berlin" }, "2026-03-20T08:00:00.000Z", 2),
    ["2026-04-03T07:00:00.000Z", "2026-04-17T07:00:00.000Z"],
  );
});

test("nextRun() clamps monthly Jan 31 to Feb 29 in 2028 and returns to Mar 31", () => {
  assert.deepEqual(slots({ type: "monthly" }, "2028-01-31T09:00:00.000Z", 4), [
    "2028-02-29T09:00:00.000Z",
    "2028-03-31T09:00:00.000Z",
    "2028-04-30T09:00:00.000Z",
    "2028-05-31T09:00:00.000Z",
  ]);
});

test("nextRun() clamps monthly Jan 31 to Feb 28 in 2027 and returns to Mar 31", () => {
  assert.deepEqual(slots({ type: "monthly" }, "2027-01-31T09:00:00.000Z", 2), [
    "2027-02-28T09:00:00.000Z",
    "2027-03-31T09:00:00.000Z",
  ]);
});

test("nextRun() keeps the anchor day for bimonthly, quarterly and yearly schedules", () => {
  assert.deepEqual(slots({ type: "bimonthly" }, "2026-12-31T00:00:00.000Z", 4), [
    "2027-02-28T00:00:00.000Z",
    "2027-04-30T00:00:00.000Z",
    "2027-06-30T00:00:00.000Z",
    "2027-08-31T00:00:00.000Z",
  ]);
  assert.deepEqual(slots({ type: "quarterly" }, "2026-11-30T12:00:00.000Z", 3), [
    "2027-02-28T12:00:00.000Z",
    "2027-05-30T12:00:00.000Z",
    "2027-08-30T12:00:00.000Z",
  ]);
  assert.deepEqual(slots({ type: "yearly" }, "2028-02-29T12:00:00.000Z", 4), [
    "2029-02-28T12:00:00.000Z",
    "2030-02-28T12:00:00.000Z",
    "2031-02-28T12:00:00.000Z",
    "2032-02-29T12:00:00.000Z",
  ]);
});

test("nextRun() keeps a monthly schedule's local time across DST", () => {
  assert.deepEqual(slots({ type: "monthly", tz: "Europe/Berlin" }, "2026-03-15T08:00:00.000Z", 2), [
    "2026-04-15T07:00:00.000Z",
    "2026-05-15T07:00:00.000Z",
  ]);
});

test("nextRun() jumps straight to the first slot after a distant time", () => {
  const anchor = at("2026-01-10T08:00:00Z"); // 09:00 CET
  const daily: ScheduleSpec = { type: "daily", tz: "Europe/Berlin" };
  assert.equal(
    nextRun(daily, { anchor, after: at("2026-07-04T12:00:00Z") })?.toISOString(),
    "2026-07-05T07:00:00.000Z",
  );
  assert.equal(
    nextRun(daily, { anchor, after: at("2026-07-05T06:59:59.999Z") })?.toISOString(),
    "2026-07-05T07:00:00.000Z",
  );
  assert.equal(
    nextRun({ type: "monthly" }, { anchor: at("2026-01-31T00:00:00Z"), after: at("2030-06-15Z") })
      ?.toISOString(),
    "2030-06-30T00:00:00.000Z",
  );
  assert.equal(
    nextRun({ type: "minutes", minutes: 7 }, {
      anchor: at("2026-01-01T00:00:00Z"),
      after: at("2026-01-01T01:00:00Z"),
    })?.toISOString(),
    "2026-01-01T01:03:00.000Z",
  );
});

test("nextRun() gives a once schedule its anchor, then nothing", () => {
  const spec: ScheduleSpec = { type: "once" };
  const anchor = at("2026-05-01T10:00:00Z");
  assert.equal(
    nextRun(spec, { anchor, after: at("2026-05-01T09:00:00Z") })?.toISOString(),
    "2026-05-01T10:00:00.000Z",
  );
  assert.equal(nextRun(spec, { anchor, after: anchor }), null);
  assert.equal(nextRun(spec, { anchor, after: at("2027-01-01T00:00:00Z") }), null);
});

test("nextRun() runs a 6-field cron every second", () => {
  assert.deepEqual(
    slots({ type: "cron", cron: "*/1 * * * * *" }, "2026-05-01T23:59:58.000Z", 4),
    [
      "2026-05-01T23:59:59.000Z",
      "2026-05-02T00:00:00.000Z",
      "2026-05-02T00:00:01.000Z",
      "2026-05-02T00:00:02.000Z",
    ],
  );
});

test("nextRun() follows a cron at 09:00 local across the Berlin DST days", () => {
  const spec: ScheduleSpec = { type: "cron", cron: "0 9 * * *", tz: "Europe/Berlin" };
  assert.deepEqual(slots(spec, "2026-03-28T08:00:00.000Z", 2), [
    "2026-03-29T07:00:00.000Z",
    "2026-03-30T07:00:00.000Z",
  ]);
  assert.deepEqual(slots(spec, "2026-10-24T07:00:00.000Z", 2), [
    "2026-10-25T08:00:00.000Z",
    "2026-10-26T08:00:00.000Z",
  ]);
});

test("nextRun() follows a cron at 09:00 local across the New York DST days", () => {
  const spec: ScheduleSpec = { type: "cron", cron: "0 9 * * *", tz: "America/New_York" };
  assert.deepEqual(slots(spec, "2026-03-07T14:00:00.000Z", 2), [
    "2026-03-08T13:00:00.000Z",
    "2026-03-09T13:00:00.000Z",
  ]);
  assert.deepEqual(slots(spec, "2026-10-31T13:00:00.000Z", 2), [
    "2026-11-01T14:00:00.000Z",
    "2026-11-02T14:00:00.000Z",
  ]);
});

test("nextRun() runs a cron in the Berlin gap after the gap, and once in the overlap", () => {
  const spec: ScheduleSpec = { type: "cron", cron: "30 2 * * *", tz: "Europe/Berlin" };
  // croner runs a fixed-time job in a gap at the first valid time: 03:00 CEST (01:00Z).
  assert.deepEqual(slots(spec, "2026-03-28T01:30:00.000Z", 2), [
    "2026-03-29T01:00:00.000Z",
    "2026-03-30T00:30:00.000Z",
  ]);
  assert.deepEqual(slots(spec, "2026-10-24T00:30:00.000Z", 2), [
    "2026-10-25T00:30:00.000Z",
    "2026-10-26T01:30:00.000Z",
  ]);
});

test("nextRun() runs a cron in New York's gap after the gap, and once in the overlap", () => {
  const spec: ScheduleSpec = { type: "cron", cron: "30 1,2 * * *", tz: "America/New_York" };
  // 01:30 and 02:30 local. A list is not a fixed-time job for croner, so 02:30, which does not
  // exist on 2026-03-08, is skipped rather than moved.
  assert.deepEqual(slots(spec, "2026-03-07T07:30:00.000Z", 3), [
    "2026-03-08T06:30:00.000Z",
    "2026-03-09T05:30:00.000Z",
    "2026-03-09T06:30:00.000Z",
  ]);
  // A fixed-time 01:30, which exists twice on 2026-11-01, runs once, at the earlier (EDT) one.
  const fixed: ScheduleSpec = { type: "cron", cron: "30 1 * * *", tz: "America/New_York" };
  assert.deepEqual(slots(fixed, "2026-10-31T05:30:00.000Z", 2), [
    "2026-11-01T05:30:00.000Z",
    "2026-11-02T06:30:00.000Z",
  ]);
});

test("nextRun() gives no cron slot before the anchor", () => {
  const spec: ScheduleSpec = { type: "cron", cron: "0 * * * *" };
  const anchor = at("2026-05-01T10:00:00Z");
  assert.equal(
    nextRun(spec, { anchor, after: at("2026-05-01T08:10:00Z") })?.toISOString(),
    "2026-05-01T10:00:00.000Z",
  );
  assert.equal(
    nextRun(spec, { anchor, after: anchor })?.toISOString(),
    "2026-05-01T11:00:00.000Z",
  );
});

test("nextRun() rejects an invalid date, naming the option", () => {
  assert.throws(
    () => nextRun({ type: "daily" }, { anchor: new Date("nope"), after: new Date(0) }),
    { name: "RangeError", message: /^Option "anchor" must be a valid Date, got Invalid Date/ },
  );
});

test("dueSlots() fires every missed slot after a 3-slot outage with catch-up on", () => {
  const due = dueSlots({ type: "hourly" }, {
    anchor: at("2026-05-01T08:00:00Z"),
    nextRun: at("2026-05-01T11:00:00Z"),
    now: at("2026-05-01T13:30:00Z"),
    catchUp: true,
  });
  assert.deepEqual(iso(due.fire), [
    "2026-05-01T11:00:00.000Z",
    "2026-05-01T12:00:00.000Z",
    "2026-05-01T13:00:00.000Z",
  ]);
  assert.equal(due.next?.toISOString(), "2026-05-01T14:00:00.000Z");
});

test("dueSlots() fires only the latest missed slot after a 3-slot outage with catch-up off", () => {
  const due = dueSlots({ type: "hourly" }, {
    anchor: at("2026-05-01T08:00:00Z"),
    nextRun: at("2026-05-01T11:00:00Z"),
    now: at("2026-05-01T13:30:00Z"),
    catchUp: false,
  });
  assert.deepEqual(iso(due.fire), ["2026-05-01T13:00:00.000Z"]);
  assert.equal(due.next?.toISOString(), "2026-05-01T14:00:00.000Z");
});

test("dueSlots() catches up a daily Berlin schedule across the spring-forward day", () => {
  const spec: ScheduleSpec = { type: "daily", tz: "Europe/Berlin" };
  const options = {
    anchor: at("2026-03-20T08:00:00Z"),
    nextRun: at("2026-03-28T08:00:00Z"),
    now: at("2026-03-30T12:00:00Z"),
  };
  const on = dueSlots(spec, { ...options, catchUp: true });
  assert.deepEqual(iso(on.fire), [
    "2026-03-28T08:00:00.000Z",
    "2026-03-29T07:00:00.000Z",
    "2026-03-30T07:00:00.000Z",
  ]);
  assert.equal(on.next?.toISOString(), "2026-03-31T07:00:00.000Z");
  const off = dueSlots(spec, { ...options, catchUp: false });
  assert.deepEqual(iso(off.fire), ["2026-03-30T07:00:00.000Z"]);
  assert.equal(off.next?.toISOString(), "2026-03-31T07:00:00.000Z");
});

test("dueSlots() catches up a cron schedule, or fires its latest slot", () => {
  const spec: ScheduleSpec = { type: "cron", cron: "*/10 * * * *" };
  const options = {
    anchor: at("2026-05-01T10:00:00Z"),
    nextRun: at("2026-05-01T10:20:00Z"),
    now: at("2026-05-01T10:40:00Z"),
  };
  const on = dueSlots(spec, { ...options, catchUp: true });
  assert.deepEqual(iso(on.fire), [
    "2026-05-01T10:20:00.000Z",
    "2026-05-01T10:30:00.000Z",
    "2026-05-01T10:40:00.000Z",
  ]);
  assert.equal(on.next?.toISOString(), "2026-05-01T10:50:00.000Z");
  const off = dueSlots(spec, { ...options, catchUp: false });
  assert.deepEqual(iso(off.fire), ["2026-05-01T10:40:00.000Z"]);
  assert.equal(off.next?.toISOString(), "2026-05-01T10:50:00.000Z");
});

test("dueSlots() fires a slot that falls exactly on now", () => {
  const due = dueSlots({ type: "minutes", minutes: 5 }, {
    anchor: at("2026-05-01T10:00:00Z"),
    nextRun: at("2026-05-01T10:05:00Z"),
    now: at("2026-05-01T10:05:00Z"),
    catchUp: false,
  });
  assert.deepEqual(iso(due.fire), ["2026-05-01T10:05:00.000Z"]);
  assert.equal(due.next?.toISOString(), "2026-05-01T10:10:00.000Z");
});

test("dueSlots() fires nothing before the stored next run", () => {
  for (const catchUp of [true, false]) {
    const due = dueSlots({ type: "daily" }, {
      anchor: at("2026-05-01T10:00:00Z"),
      nextRun: at("2026-05-02T10:00:00Z"),
      now: at("2026-05-02T09:59:59.999Z"),
      catchUp,
    });
    assert.deepEqual(due.fire, []);
    assert.equal(due.next?.toISOString(), "2026-05-02T10:00:00.000Z");
  }
});

test("dueSlots() stops at the limit and leaves the rest due", () => {
  const spec: ScheduleSpec = { type: "hourly" };
  const anchor = at("2026-05-01T08:00:00Z");
  const now = at("2026-05-01T13:30:00Z");
  const first = dueSlots(spec, { anchor, nextRun: anchor, now, catchUp: true, limit: 4 });
  assert.deepEqual(iso(first.fire), [
    "2026-05-01T08:00:00.000Z",
    "2026-05-01T09:00:00.000Z",
    "2026-05-01T10:00:00.000Z",
    "2026-05-01T11:00:00.000Z",
  ]);
  assert.equal(first.next?.toISOString(), "2026-05-01T12:00:00.000Z");
  assert.ok(first.next !== null);
  const second = dueSlots(spec, { anchor, nextRun: first.next, now, catchUp: true, limit: 4 });
  assert.deepEqual(iso(second.fire), ["2026-05-01T12:00:00.000Z", "2026-05-01T13:00:00.000Z"]);
  assert.equal(second.next?.toISOString(), "2026-05-01T14:00:00.000Z");
});

test("dueSlots() caps catch-up at 1000 slots by default", () => {
  const anchor = at("2026-01-01T00:00:00Z");
  const due = dueSlots({ type: "minutes", minutes: 1 }, {
    anchor,
    nextRun: anchor,
    now: at("2026-01-10T00:00:00Z"),
    catchUp: true,
  });
  assert.equal(due.fire.length, 1000);
  assert.equal(due.fire.at(-1)?.toISOString(), "2026-01-01T16:39:00.000Z");
  assert.equal(due.next?.toISOString(), "2026-01-01T16:40:00.000Z");
});

test("dueSlots() fires a once schedule once and leaves no next run", () => {
  for (const catchUp of [true, false]) {
    const anchor = at("2026-05-01T10:00:00Z");
    const due = dueSlots({ type: "once" }, {
      anchor,
      nextRun: anchor,
      now: at("2026-05-03T00:00:00Z"),
      catchUp,
    });
    assert.deepEqual(iso(due.fire), ["2026-05-01T10:00:00.000Z"]);
    assert.equal(due.next, null);
  }
});

test("dueSlots() rejects a limit below 1 or not whole, naming limit", () => {
  for (const limit of [0, -1, 1.5]) {
    assert.throws(
      () =>
        dueSlots({ type: "hourly" }, {
          anchor: new Date(0),
          nextRun: new Date(0),
          now: new Date(0),
          catchUp: true,
          limit,
        }),
      { name: "RangeError", message: new RegExp(`^Option "limit" .*got ${limit}$`) },
    );
  }
});
