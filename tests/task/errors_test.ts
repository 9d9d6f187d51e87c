import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import {
  MAX_ERROR_MESSAGE_BYTES,
  MAX_ERROR_STACK_BYTES,
  TaskCancelledError,
  TaskTimeoutError,
  toErrorInfo,
  WorkerCrashError,
} from "../../src/task/errors.ts";

test("toErrorInfo() keeps an Error's name, message and stack", () => {
  const info = toErrorInfo(new TaskTimeoutError("too slow"));
  assert.equal(info.name, "TaskTimeoutError");
  assert.equal(info.message, "too slow");
  assert.match(info.stack ?? "", /too slow/);
  assert.equal(toErrorInfo(new TaskCancelledError()).name, "TaskCancelledError");
  const crash = new WorkerCrashError("gone", { worker: "kvq-w1.g1", reason: "close" });
  assert.equal(crash.name, "WorkerCrashError");
  assert.equal(crash.worker, "kvq-w1.g1");
  assert.equal(crash.reason, "close");
});

test("toErrorInfo() handles thrown values that are not Errors", () => {
  assert.deepEqual(toErrorInfo("nope"), { name: "Error", message: "nope" });
  assert.deepEqual(toErrorInfo(undefined), { name: "Error", message: "undefined" });
  assert.deepEqual(toErrorInfo(null), { name: "Error", message: "null" });
  assert.deepEqual(toErrorInfo(42n), { name: "Error", message: "42n" });
  assert.deepEqual(toErrorInfo({ code: 7 }), { name: "Error", message: '{"code":7}' });
  assert.deepEqual(toErrorInfo({ name: "Custom", message: "m" }), { name: "Custom", message: "m" });
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  assert.equal(toErrorInfo(circular).message, "[object Object]");
  const hostile = {
    get message(): string {
      throw new Error("getter");
    },
  };
  assert.equal(toErrorInfo(hostile).name, "Error");
});

test("toErrorInfo() truncates the message to 4 KiB and the stack to 8 KiB", () => {
  const error = new Error("é".repeat(10_000));
  error.stack = "s".repeat(20_000);
  const info = toErrorInfo(error);
  const bytes = (text: string) => new TextEncoder().encode(text).length;
  assert.ok(bytes(info.message) <= MAX_ERROR_MESSAGE_BYTES);
  assert.ok(bytes(info.stack!) <= MAX_ERROR_STACK_BYTES);
  assert.ok(!info.message.includes("\uFFFD"), "no character is cut in half");
  assert.match(info.message, /truncated/);
});
