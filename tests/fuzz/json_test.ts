import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { toJson } from "../../src/task/json.ts";
import { check, fc, SEED, timed } from "./_fuzz.ts";
import { report } from "../_report.ts";

/** Anything JavaScript has: BigInt, Map, Set, Date, typed and sparse arrays, boxed values, … */
const anything = fc.anything({
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withSparseArray: true,
  withTypedArray: true,
  withUnicodeString: true,
});

const odd = fc.oneof(
  anything,
  fc.constantFrom<unknown>(
    () => 1,
    Symbol("s"),
    undefined,
    NaN,
    -Infinity,
    [undefined],
    { a: undefined },
    new Date(NaN),
    { toJSON: () => "x" },
  ),
  anything.map((v) => {
    const o: Record<string, unknown> = { v };
    o.self = o; // a cycle
    return o;
  }),
);

test(`toJson() of any value refuses with a TypeError naming it, or returns JSON text that round-trips (seed ${SEED})`, async () => {
  let accepted = 0;
  await check(
    "toJson",
    fc.property(odd, (value) => {
      let text: string;
      try {
        text = timed(2000, "toJson", () => toJson(value, "argument 1"));
      } catch (error) {
        assert.ok(error instanceof TypeError, `${error}`);
        assert.match((error as Error).message, /^Argument 1[\s\S]* is not JSON-serialisable: /);
        return;
      }
      assert.equal(typeof text, "string", `toJson returned ${typeof text}`);
      assert.equal(JSON.stringify(JSON.parse(text)), text);
      accepted++;
    }),
    5000,
  );
  report(`fuzz: toJson: ${accepted} values accepted`);
});

test(`toJson() of plain JSON values returns their JSON unchanged (seed ${SEED})`, async () => {
  await check(
    "toJson of JSON values",
    fc.property(fc.jsonValue({ noUnicodeString: false }), (value) => {
      const text = toJson(value, "the result");
      // JSON itself can't tell -0 from 0, so compare through one more round trip.
      assert.deepEqual(JSON.parse(text), JSON.parse(JSON.stringify(value)));
    }),
    3000,
  );
});

// Found by the property above with `withSparseArray`/`withBoxedValues`, and by hand: values that
// toJson() accepts although JSON changes them, and a toJSON() that yields no JSON at all.
test("toJson() refuses what JSON.stringify would change or drop", () => {
  // deno-lint-ignore no-sparse-arrays
  for (const value of [[, 1], new Number(NaN), { toJSON: () => undefined }]) {
    assert.throws(() => toJson(value, "argument 1"), TypeError, `accepted ${String(value)}`);
  }
});
