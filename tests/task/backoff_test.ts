import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { backoffDelay, DEFAULT_RETRY, retryTime, validateBackoff } from "../../src/task/backoff.ts";

test("backoffDelay() doubles from the base up to the max, with injectable jitter", () => {
  const b = { type: "exponential" as const, base: 100, max: 1_000, jitter: 0.5 };
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(b, n, () => 0.5)), [
    100,
    200,
    400,
    800,
    1_000,
    1_000,
  ]);
  assert.equal(backoffDelay(b, 1, () => 0), 50);
  assert.equal(backoffDelay(b, 1, () => 1), 150);
  assert.equal(backoffDelay({ type: "fixed", delay: 7 }, 9), 7);
  assert.deepEqual(
    [1, 2, 3, 4].map((n) => backoffDelay({ type: "list", delays: [5, 10, 20] }, n)),
    [5, 10, 20, 20],
  );
});

test("validateBackoff() refuses bad shapes, naming the field and the value", () => {
  assert.throws(() => validateBackoff(null), /must be an object: received null/);
  assert.throws(() => validateBackoff({ type: "random" }), /type must be/);
  assert.throws(() => validateBackoff({ type: "fixed", delay: -1 }), /delay/);
  assert.throws(() => validateBackoff({ type: "list", delays: [] }), /delays/);
  assert.throws(() => validateBackoff({ type: "exponential", jitter: 2 }), /jitter/);
  assert.deepEqual(validateBackoff({ type: "fixed", delay: 0 }), { type: "fixed", delay: 0 });
});

test("retryTime() stops at maxAttempts and for errors no retry can fix", () => {
  const task = { attempt: 1, maxAttempts: 3, backoff: { type: "fixed" as const, delay: 10 } };
  assert.equal(retryTime(task, "Error", DEFAULT_RETRY, 1_000), 1_010);
  assert.equal(retryTime({ ...task, attempt: 3 }, "Error", DEFAULT_RETRY, 1_000), null);
  assert.equal(retryTime(task, "TaskNotFoundError", DEFAULT_RETRY, 1_000), null);
  assert.equal(retryTime(task, "PayloadTooLargeError", DEFAULT_RETRY, 1_000), null);
  const defaults = { attempt: 3, maxAttempts: null, backoff: null };
  assert.equal(retryTime(defaults, "Error", DEFAULT_RETRY, 0), null, "3 attempts by default");
});
