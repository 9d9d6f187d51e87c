import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { toJson } from "../../src/task/json.ts";

function refused(value: unknown, what: string, ...patterns: RegExp[]): void {
  assert.throws(() => toJson(value, what), (error: Error) => {
    assert.ok(error instanceof TypeError, String(error));
    for (const p of patterns) assert.match(error.message, p);
    return true;
  });
}

test("toJson() returns the JSON text of plain values", () => {
  assert.equal(
    toJson({ a: [1, "x", null, true, { b: 2.5 }] }, "argument 1"),
    '{"a":[1,"x",null,true,{"b":2.5}]}',
  );
  assert.equal(toJson("é", "argument 1"), '"é"');
  assert.equal(toJson(new Date(0), "argument 1"), '"1970-01-01T00:00:00.000Z"');
  const shared = { n: 1 };
  assert.equal(
    toJson([shared, shared], "argument 1"),
    '[{"n":1},{"n":1}]',
    "shared is not a cycle",
  );
  assert.equal(toJson({ a: undefined, b: 1 }, "argument 1"), '{"b":1}');
});

test("toJson() refuses functions, naming the argument and the path", () => {
  refused(() => 1, "argument 1 of f", /^Argument 1 of f is not JSON-serialisable/, /function/);
  function named() {}
  refused(
    { deep: [0, { fn: named }] },
    "argument 2 of f",
    /argument 2 of f\.deep\[1\]\.fn/i,
    /named/,
  );
});

test("toJson() refuses cycles", () => {
  const a: Record<string, unknown> = { x: 1 };
  a.self = a;
  refused(a, "argument 1 of f", /cycle/, /argument 1 of f/i);
  const list: unknown[] = [];
  list.push([list]);
  refused(list, "result of g", /Result of g\[0\]/, /cycle/);
});

test("toJson() refuses BigInt, NaN, Infinity, Map, Set, symbols and undefined", () => {
  refused(10n, "argument 1 of f", /BigInt 10n/);
  refused({ n: NaN }, "argument 1 of f", /argument 1 of f\.n/i, /NaN/);
  refused([Infinity], "argument 1 of f", /\[0\]/, /Infinity/);
  refused(new Map([[1, 2]]), "argument 3 of f", /Argument 3 of f/, /Map/);
  refused({ s: new Set() }, "argument 1 of f", /\.s/, /Set/);
  refused(Symbol("x"), "argument 1 of f", /symbol/);
  refused(undefined, "argument 1 of f", /undefined/);
  refused([1, undefined], "argument 1 of f", /\[1\]/, /undefined/);
});
