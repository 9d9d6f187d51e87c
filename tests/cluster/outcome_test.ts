import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { outcomeOf } from "../../src/cluster/outcome.ts";
import { DEFAULT_RETRY } from "../../src/task/backoff.ts";
import type { Claimed } from "../../src/store/claim.ts";

const claimed = (attempt: number) =>
  ({ record: { attempt, maxAttempts: 2, backoff: null }, argsJson: "[]" }) as unknown as Claimed;
const plain = { cancelled: false, started: true, timedOut: false };
const boom = { ok: false as const, error: { name: "Error", message: "boom" } };

test("outcomeOf(): a result, a failure with its retry time, a timeout, and cancels before and during a run", () => {
  assert.deepEqual(outcomeOf(claimed(1), { ok: true, result: "3" }, plain, DEFAULT_RETRY, 1000), {
    kind: "success",
    claimed: claimed(1),
    resultJson: "3",
  });
  const retried = outcomeOf(claimed(1), boom, plain, DEFAULT_RETRY, 1000);
  assert.equal(retried.kind, "failure");
  assert.ok(retried.kind === "failure" && retried.retryAt !== null && retried.retryAt > 1000);
  const last = outcomeOf(claimed(2), boom, plain, DEFAULT_RETRY, 1000);
  assert.ok(last.kind === "failure" && last.retryAt === null, "the last attempt is final");
  const timedOut = outcomeOf(claimed(2), boom, { ...plain, timedOut: true }, DEFAULT_RETRY, 0);
  assert.ok(timedOut.kind === "failure");
  assert.deepEqual(timedOut.error, { name: "TaskTimeoutError", message: "Task timed out: boom" });
  const during = outcomeOf(claimed(1), boom, { ...plain, cancelled: true }, DEFAULT_RETRY, 0);
  assert.deepEqual(during.kind === "cancelled" && during.error.message, "Cancelled while running");
  const before = outcomeOf(
    claimed(1),
    boom,
    { ...plain, cancelled: true, started: false },
    DEFAULT_RETRY,
    0,
  );
  assert.equal(before.kind === "cancelled" && before.error.message, "Cancelled before it started");
  // A task that returned before the cancel took effect succeeded.
  const late = outcomeOf(
    claimed(1),
    { ok: true, result: "1" },
    { ...plain, cancelled: true },
    DEFAULT_RETRY,
    0,
  );
  assert.equal(late.kind, "success");
});
