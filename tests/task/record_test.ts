import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { CorruptRecordError, TaskRecord } from "../../src/task/record.ts";
import { fields } from "./_helpers.ts";
import { TASK_STATES, type TaskState } from "../../src/store/keys.ts";

const key = (r: TaskRecord) => ["kvq", "default", "task", r.id];

test("TaskRecord.encode() and decode() round-trip every field", () => {
  const full = new TaskRecord(fields({
    group: "g",
    priority: -3,
    timeout: 5_000,
    maxAttempts: 4,
    attempt: 2,
    backoff: { type: "list", delays: [10, 20] },
    state: "succeeded",
    startedAt: 1_700_000_000_100,
    stoppedAt: 1_700_000_000_200,
    resultJson: '{"x":[1,2,"three"]}',
    error: { name: "RangeError", message: "first", stack: "at x" },
    errors: [{ name: "RangeError", message: "first", stack: "at x" }],
    cluster: "c1",
    worker: "kvq-w1.g2",
    progress: { fraction: 0.5, message: "half", at: 1 },
    save: false,
    hook: "after",
    unique: "u1",
  }));
  const back = TaskRecord.decode(key(full), full.encode());
  assert.deepEqual(back.fields(), full.fields());
  assert.deepEqual(back.result, { x: [1, 2, "three"] });
  const plain = new TaskRecord(fields());
  assert.deepEqual(TaskRecord.decode(key(plain), plain.encode()).fields(), plain.fields());
  const chunked = new TaskRecord(fields({ args: null, argsChunks: 3, resultChunks: 2 }));
  assert.deepEqual(TaskRecord.decode(key(chunked), chunked.encode()).fields(), chunked.fields());
});

test("TaskRecord.encode() is UTF-8 JSON and is computed once", () => {
  const r = new TaskRecord(fields());
  assert.equal(r.encode(), r.encode());
  const json = JSON.parse(new TextDecoder().decode(r.encode()));
  assert.equal(json.v, 1);
  assert.equal(json.id, r.id);
  assert.equal(json.result, undefined);
  assert.ok(Object.isFrozen(r));
});

test("TaskRecord transitions follow the lifecycle", () => {
  const queued = new TaskRecord(fields());
  const running = queued.claim(10, "c1", "kvq-w1.g1");
  assert.equal(running.state, "running");
  assert.equal(running.attempt, 1);
  assert.equal(running.startedAt, 10);
  assert.equal(running.worker, "kvq-w1.g1");
  assert.equal(queued.state, "queued", "transitions return a new record");

  const done = running.succeed(20, "42");
  assert.equal(done.state, "succeeded");
  assert.equal(done.result, 42);
  assert.equal(done.stoppedAt, 20);
  assert.ok(done.finished);

  const error = { name: "Error", message: "no" };
  const retrying = running.failAttempt(20, error, 1_000);
  assert.equal(retrying.state, "scheduled");
  assert.equal(retrying.runAt, 1_000);
  // The kept error says which attempt it ended, when and where (the task's timeline).
  assert.deepEqual(retrying.errors, [{
    ...error,
    attempt: 1,
    runAt: running.runAt,
    startedAt: 10,
    stoppedAt: 20,
    cluster: "c1",
    worker: "kvq-w1.g1",
  }]);
  const again = retrying.promote().claim(1_000, "c2", "kvq-w2.g1");
  assert.equal(again.attempt, 2);
  const failed = again.failAttempt(1_010, error, null);
  assert.equal(failed.state, "failed");
  assert.equal(failed.errors.length, 2);

  const released = running.release();
  assert.equal(released.state, "queued");
  assert.equal(released.attempt, 0, "a released attempt does not count");

  for (const from of [queued, running, retrying]) {
    const cancelled = from.cancel(30, { name: "TaskCancelledError", message: "x" });
    assert.equal(cancelled.state, "cancelled");
    assert.equal(cancelled.stoppedAt, 30);
  }
  for (const from of [done, failed, queued.cancel(1)]) {
    const resubmitted = from.resubmit(40);
    assert.equal(resubmitted.state, "queued");
    assert.equal(resubmitted.attempt, 0);
    assert.equal(resubmitted.resultJson, null);
    assert.equal(resubmitted.runAt, 40);
  }
});

test("TaskRecord refuses transitions its state does not allow", () => {
  const allowed: Record<string, TaskState[]> = {
    promote: ["scheduled"],
    claim: ["queued"],
    succeed: ["running"],
    fail: ["running"],
    release: ["running"],
    cancel: ["scheduled", "queued", "running"],
    resubmit: ["succeeded", "failed", "cancelled"],
  };
  const apply: Record<string, (r: TaskRecord) => TaskRecord> = {
    promote: (r) => r.promote(),
    claim: (r) => r.claim(1, "c", "w"),
    succeed: (r) => r.succeed(1, "null"),
    fail: (r) => r.failAttempt(1, { name: "E", message: "m" }, null),
    release: (r) => r.release(),
    cancel: (r) => r.cancel(1),
    resubmit: (r) => r.resubmit(1),
  };
  for (const state of TASK_STATES) {
    const r = new TaskRecord(fields({ state }));
    for (const [action, states] of Object.entries(allowed)) {
      if (states.includes(state)) {
        assert.doesNotThrow(() => apply[action]!(r), `${action} from ${state}`);
      } else {
        assert.throws(() => apply[action]!(r), (error: Error) => {
          assert.ok(error instanceof RangeError);
          assert.match(error.message, new RegExp(`Cannot ${action} task ${r.id}`));
          assert.match(error.message, new RegExp(`it is ${state}`));
          return true;
        }, `${action} from ${state}`);
      }
    }
  }
});

function assertCorrupt(value: unknown, why: RegExp): void {
  const k = ["kvq", "default", "task", "0193a7c2-5b1e-7f00-8a3b-1c2d3e4f5a6b"];
  assert.throws(() => TaskRecord.decode(k, value), (error: Error) => {
    assert.ok(error instanceof CorruptRecordError, `${error}`);
    assert.deepEqual((error as CorruptRecordError).key, k);
    assert.ok(
      error.message.includes('["kvq","default","task","0193a7c2-5b1e-7f00-8a3b-1c2d3e4f5a6b"]'),
      error.message,
    );
    assert.match(error.message, why);
    return true;
  });
}

const bytes = (text: string) => new TextEncoder().encode(text);

test("TaskRecord.decode() throws CorruptRecordError naming the key for random bytes", () => {
  assertCorrupt(new Uint8Array([0xff, 0xfe, 0x00, 0x80, 0xc3]), /not UTF-8 JSON/);
  const random = new Uint8Array(256);
  crypto.getRandomValues(random);
  random[0] = 0xff; // never valid UTF-8
  assertCorrupt(random, /not UTF-8 JSON/);
  assertCorrupt(new Uint8Array(), /not UTF-8 JSON/);
});

test("TaskRecord.decode() throws CorruptRecordError for truncated JSON", () => {
  const full = new TextDecoder().decode(new TaskRecord(fields()).encode());
  for (const cut of [1, 10, full.length / 2, full.length - 1]) {
    assertCorrupt(bytes(full.slice(0, cut)), /not UTF-8 JSON/);
  }
});

test("TaskRecord.decode() throws CorruptRecordError for fields of the wrong type", () => {
  const good = JSON.parse(new TextDecoder().decode(new TaskRecord(fields()).encode()));
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ state: 5 }, /"state" is not a string/],
    [{ state: "sleeping" }, /unknown state "sleeping"/],
    [{ args: "1,2" }, /"args" is not an array/],
    [{ args: null }, /"args" is missing/],
    [{ priority: "high" }, /"priority" is not a number/],
    [{ priority: 1.5 }, /"priority" is not an integer/],
    [{ attempt: -1 }, /"attempt" is not an integer >= 0/],
    [{ argsChunks: "2" }, /"argsChunks" is not/],
    [{ enqueuedAt: null }, /"enqueuedAt" is not a number/],
    [{ id: 7 }, /"id" is not a string/],
    [{ id: "0193a7c2-5b1e-7f00-8a3b-000000000000" }, /does not match the key/],
    [{ errors: {} }, /"errors" is not a list/],
    [{ errors: [{ name: 1 }] }, /"errors\[0\]" is not an error/],
    [{ error: "bad" }, /"error" is not an error/],
    [{ progress: { fraction: "half" } }, /"progress" is malformed/],
    [{ backoff: { type: "random" } }, /"backoff"/],
    [{ save: "yes" }, /"save" is not a boolean/],
    [{ queue: ["default"] }, /"queue" is not a string/],
    [{ worker: 3 }, /"worker" is not a string/],
  ];
  for (const [patch, why] of cases) {
    const text = JSON.stringify({
      ...good,
      id: "0193a7c2-5b1e-7f00-8a3b-1c2d3e4f5a6b",
      ...patch,
    });
    assertCorrupt(bytes(text), why);
  }
});

test("TaskRecord.decode() throws CorruptRecordError for foreign JSON and wrong versions", () => {
  assertCorrupt(bytes('{"hello":"world"}'), /unknown record version undefined/);
  assertCorrupt(bytes("[1,2,3]"), /expected an object, found/);
  assertCorrupt(bytes('"text"'), /expected an object/);
  assertCorrupt(bytes("null"), /expected an object, found null/);
  assertCorrupt(bytes("42"), /expected an object/);
  const good = JSON.parse(new TextDecoder().decode(new TaskRecord(fields()).encode()));
  assertCorrupt(bytes(JSON.stringify({ ...good, v: 2 })), /unknown record version 2/);
  assertCorrupt(bytes(JSON.stringify({ ...good, v: "1" })), /unknown record version "1"/);
});

test("TaskRecord.decode() throws CorruptRecordError for values that are not bytes", () => {
  assertCorrupt("a string", /expected bytes, found string/);
  assertCorrupt({ v: 1 }, /expected bytes, found Object/);
  assertCorrupt(null, /expected bytes, found null/);
  assertCorrupt(12n, /expected bytes, found bigint/);
});
