import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { coalesce } from "../../src/runtime/coalesce.ts";

test("coalesce() runs once at a time, and once more for any number of calls meanwhile", async () => {
  let runs = 0;
  let release: () => void = () => {};
  const run = coalesce(async () => {
    runs++;
    if (runs === 1) await new Promise<void>((resolve) => release = resolve);
  });
  const first = run();
  assert.ok(run.running !== null);
  void run();
  void run();
  void run();
  assert.equal(runs, 1, "no second run while the first runs");
  release();
  await first;
  assert.equal(runs, 2, "three calls meanwhile: one more run");
  assert.equal(run.running, null);
  run.again(); // idle: nothing to repeat
  await run();
  assert.equal(runs, 3);
});

test("coalesce(): again() from inside a run repeats it; an error ends the round", async () => {
  let runs = 0;
  const run = coalesce(() => {
    runs++;
    if (runs < 3) run.again();
    return Promise.resolve();
  });
  await run();
  assert.equal(runs, 3);
  const failing = coalesce(() => Promise.reject(new Error("boom")));
  await assert.rejects(failing(), /boom/);
  assert.equal(failing.running, null, "a failed round leaves it idle");
});
