import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { SCHEDULE_TYPES, validateSpec } from "../../src/schedule/spec.ts";
import { check, fc, SEED, timed } from "./_fuzz.ts";
import { report } from "../_report.ts";

const ZONES: string[] = (Intl as unknown as { supportedValuesOf(k: string): string[] })
  .supportedValuesOf("timeZone");

/** One cron field: numbers, ranges, steps, lists, names and croner's extras, or noise. */
const field = fc.oneof(
  fc.constantFrom(
    "*",
    "?",
    "L",
    "W",
    "5L",
    "15W",
    "1#2",
    "5#5",
    "MON",
    "jan-mar",
    "sun,sat",
    "*/0",
  ),
  fc.integer({ min: -5, max: 70 }).map(String),
  fc.tuple(fc.integer({ min: -1, max: 65 }), fc.integer({ min: -1, max: 65 })).map(([a, b]) =>
    `${a}-${b}`
  ),
  fc.tuple(fc.constantFrom("*", "0", "1-10"), fc.integer({ min: -1, max: 100 })).map(([a, b]) =>
    `${a}/${b}`
  ),
  fc.array(fc.integer({ min: 0, max: 60 }), { minLength: 2, maxLength: 4 }).map((l) => l.join(",")),
  fc.string({ maxLength: 6 }),
);
const cron = fc.oneof(
  { weight: 4, arbitrary: fc.array(field, { minLength: 4, maxLength: 8 }).map((f) => f.join(" ")) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom("@yearly", "@hourly", "@reboot", "", " ", "* * * * * * *"),
  },
);
const zone = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...ZONES) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "utc",
      "Z",
      "+01:00",
      "GMT+1",
      "Etc/GMT-14",
      "Europe/Nowhere",
      "",
      "Local",
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
);

test(`validateSpec() of fuzzed cron expressions and zones returns a spec or throws TypeError/RangeError (seed ${SEED})`, async () => {
  let valid = 0;
  await check(
    "validateSpec cron",
    fc.property(cron, zone, (expression, tz) => {
      try {
        const spec = timed(
          1000,
          "validateSpec",
          () => validateSpec({ type: "cron", cron: expression, tz }),
        );
        assert.deepEqual(spec, { type: "cron", cron: expression, tz });
        valid++;
      } catch (error) {
        assert.ok(error instanceof TypeError || error instanceof RangeError, `${error}`);
        assert.match((error as Error).message, /^Schedule field "(cron|tz)"/);
      }
    }),
    4000,
  );
  report(`fuzz: validateSpec: ${valid} cron specs valid`);
});

test(`validateSpec() of fuzzed spec objects never throws anything but TypeError/RangeError (seed ${SEED})`, async () => {
  const spec = fc.oneof(
    fc.anything(),
    fc.record(
      {
        type: fc.oneof(fc.constantFrom(...SCHEDULE_TYPES), fc.anything()),
        minutes: fc.oneof(fc.integer(), fc.double(), fc.anything()),
        cron,
        tz: zone,
        extra: fc.anything(),
      },
      { requiredKeys: [] },
    ),
  );
  await check(
    "validateSpec objects",
    fc.property(spec, (value) => {
      try {
        timed(1000, "validateSpec", () => validateSpec(value));
      } catch (error) {
        assert.ok(error instanceof TypeError || error instanceof RangeError, `${error}`);
      }
    }),
    3000,
  );
});
