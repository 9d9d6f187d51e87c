import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { SCHEDULE_TYPES, validateSpec } from "../../src/schedule/spec.ts";

test("SCHEDULE_TYPES lists the eleven Django Q types", () => {
  assert.deepEqual([...SCHEDULE_TYPES], [
    "once",
    "minutes",
    "hourly",
    "daily",
    "weekly",
    "biweekly",
    "monthly",
    "bimonthly",
    "quarterly",
    "yearly",
    "cron",
  ]);
});

test("validateSpec() accepts every type and fills in tz UTC", () => {
  for (const type of SCHEDULE_TYPES) {
    const input = type === "minutes"
      ? { type, minutes: 5 }
      : type === "cron"
      ? { type, cron: "0 9 * * 1-5" }
      : { type };
    const spec = validateSpec(input);
    assert.equal(spec.type, type);
    assert.equal(spec.tz, "UTC");
  }
});

test("validateSpec() keeps minutes, cron and tz and returns a copy", () => {
  const input = { type: "cron", cron: "*/1 * * * * *", tz: "Europe/Berlin" };
  const spec = validateSpec(input);
  assert.deepEqual(spec, input);
  assert.notEqual(spec, input);
  assert.deepEqual(validateSpec({ type: "minutes", minutes: 15 }), {
    type: "minutes",
    minutes: 15,
    tz: "UTC",
  });
});

test("validateSpec() rejects an unknown type, naming type and the value", () => {
  assert.throws(() => validateSpec({ type: "fortnightly" }), {
    name: "RangeError",
    message: /^Schedule field "type" is unknown, got "fortnightly": use one of once, minutes/,
  });
  assert.throws(() => validateSpec({ type: 7 }), { name: "TypeError", message: /"type".*7/ });
  assert.throws(() => validateSpec({}), { name: "TypeError", message: /"type".*undefined/ });
});

test("validateSpec() rejects minutes 0, -5 and 1.5, naming minutes and the value", () => {
  for (const minutes of [0, -5, 1.5]) {
    assert.throws(() => validateSpec({ type: "minutes", minutes }), {
      name: "RangeError",
      message: new RegExp(`^Schedule field "minutes" must be a whole number.*got ${minutes}$`),
    });
  }
  assert.throws(() => validateSpec({ type: "minutes" }), {
    name: "TypeError",
    message: /^Schedule field "minutes" is required for type "minutes"/,
  });
  assert.throws(() => validateSpec({ type: "minutes", minutes: "5" }), {
    name: "TypeError",
    message: /"minutes" must be a number, got "5"/,
  });
});

test("validateSpec() rejects an invalid cron expression, naming cron and the value", () => {
  for (const cron of ["61 * * * *", "* * *", "* * * * * * *", "not cron"]) {
    assert.throws(() => validateSpec({ type: "cron", cron }), (error: unknown) => {
      assert.ok(error instanceof TypeError);
      assert.match(error.message, /^Schedule field "cron" is not a valid cron expression/);
      assert.ok(error.message.includes(`"${cron}"`), error.message);
      assert.ok(error.cause instanceof Error, "keeps croner's error as the cause");
      return true;
    });
  }
  assert.throws(() => validateSpec({ type: "cron" }), {
    name: "TypeError",
    message: /^Schedule field "cron" is required/,
  });
});

test("validateSpec() rejects an unknown time zone, naming tz and the value", () => {
  assert.throws(() => validateSpec({ type: "daily", tz: "Mars/Olympus" }), {
    name: "RangeError",
    message: /^Schedule field "tz" is an unknown time zone, got "Mars\/Olympus": use an IANA/,
  });
  assert.throws(() => validateSpec({ type: "daily", tz: 1 }), {
    name: "TypeError",
    message: /"tz" must be a string, got 1/,
  });
});

test("validateSpec() rejects cron or minutes given for another type", () => {
  assert.throws(() => validateSpec({ type: "daily", cron: "0 9 * * *" }), {
    name: "TypeError",
    message: /^Schedule field "cron" only applies to type "cron", got cron "0 9 \* \* \*"/,
  });
  assert.throws(() => validateSpec({ type: "hourly", minutes: 5 }), {
    name: "TypeError",
    message: /^Schedule field "minutes" only applies to type "minutes", got minutes 5/,
  });
});

test("validateSpec() rejects a non-object and an unknown field", () => {
  for (const value of [null, "daily", 3, ["daily"]]) {
    assert.throws(() => validateSpec(value), {
      name: "TypeError",
      message: /^Schedule spec must be an object/,
    });
  }
  assert.throws(() => validateSpec({ type: "minutes", minute: 5 }), {
    name: "TypeError",
    message: /unknown field "minute"/,
  });
});
