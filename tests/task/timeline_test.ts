/**
 * A task's attempts as rows (`attemptRows`): from its kept errors and its record, for each
 * state, and for errors kept before they carried their attempt; trace link templates.
 */
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { TaskRecord } from "../../src/task/record.ts";
import { attemptRows, traceIdOf, traceLink, validateTraceUrl } from "../../src/task/timeline.ts";
import { kvq } from "../cli/_helpers.ts";
import { fields } from "./_helpers.ts";

const base = new TaskRecord(fields({ maxAttempts: 3, enqueuedAt: 0, runAt: 0 }));

test("attemptRows: a task retried once, then succeeded; then one that failed for good", () => {
  assert.deepEqual(attemptRows(base).map((a) => [a.attempt, a.outcome]), [[1, "waiting"]]);
  const first = base.claim(10, "c1", "w1").failAttempt(20, { name: "E", message: "no" }, 100);
  const running = first.promote().claim(110, "c2", "w2");
  assert.deepEqual(
    attemptRows(running).map((a) => [a.attempt, a.outcome, a.startedAt, a.stoppedAt, a.cluster]),
    [[1, "retried", 10, 20, "c1"], [2, "running", 110, null, "c2"]],
  );
  const done = running.succeed(130, "1");
  assert.deepEqual(
    attemptRows(done).map((a) => [a.attempt, a.outcome, a.due, a.worker, a.error?.name ?? null]),
    [[1, "retried", 0, "w1", "E"], [2, "succeeded", 100, "w2", null]],
  );
  const failed = running.failAttempt(140, { name: "F", message: "again" }, null);
  assert.deepEqual(
    attemptRows(failed).map((a) => [a.attempt, a.outcome, a.stoppedAt, a.error?.name]),
    [[1, "retried", 20, "E"], [2, "failed", 140, "F"]],
  );
  // An error kept before errors carried their attempt: its row has no times.
  const legacy = new TaskRecord({
    ...base.fields(),
    state: "scheduled",
    attempt: 1,
    errors: [{ name: "Old", message: "x" }],
  });
  assert.deepEqual(
    attemptRows(legacy).map((a) => [a.attempt, a.outcome, a.startedAt]),
    [[null, "retried", null], [2, "waiting", null]],
  );
});

test("trace ids and link templates; a template without {traceId} is refused by name", async () => {
  const traced = new TaskRecord({
    ...base.fields(),
    traceparent: `00-${"a".repeat(32)}-${"b".repeat(16)}-01`,
  });
  assert.equal(traceIdOf(traced), "a".repeat(32));
  assert.equal(traceIdOf(new TaskRecord({ ...base.fields(), traceparent: "junk" })), null);
  assert.equal(traceLink("https://t.example/{traceId}?x", "abc"), "https://t.example/abc?x");
  assert.throws(() => validateTraceUrl("https://t.example/"), /must hold \{traceId\}/);
  const r = await kvq(["dashboard", "--trace-url", "https://t.example/trace", "--kv", ":memory:"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--trace-url: .*must hold \{traceId\}.*"https:\/\/t.example\/trace"/);
});
