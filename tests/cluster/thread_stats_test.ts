import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { CpuMeter, parseStatCpuMs, readThreads } from "../../src/cluster/thread_stats.ts";

test("parseStatCpuMs() reads utime+stime after the last parenthesis", () => {
  // comm "a) (b c" holds spaces and parentheses; utime=150, stime=50 ticks at 100 Hz.
  const stat = "1234 (a) (b c) R 1 1234 1234 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 1 0 5";
  assert.equal(parseStatCpuMs(stat), 2000);
  assert.equal(parseStatCpuMs("garbage"), undefined);
  assert.equal(parseStatCpuMs("1 (x) R 1"), undefined);
});

test("readThreads() lists this process's threads, or nothing without /proc", () => {
  const threads = readThreads();
  if (!existsSync("/proc/self/task")) {
    assert.equal(threads.size, 0);
    return;
  }
  assert.ok(threads.size >= 1);
  for (const [tid, { comm, cpuMs }] of threads) {
    assert.ok(Number.isInteger(tid) && tid > 0);
    assert.equal(typeof comm, "string");
    assert.ok(cpuMs >= 0);
  }
});

test("CpuMeter gives CPU percent per thread over the interval", () => {
  const meter = new CpuMeter();
  const at = (entries: Array<[number, number]>) =>
    new Map(entries.map(([tid, cpuMs]) => [tid, { comm: `t${tid}`, cpuMs }]));
  assert.equal(meter.update(at([[1, 100], [2, 0]]), 1000).size, 0);
  const usage = meter.update(at([[1, 600], [2, 100], [3, 50]]), 2000);
  assert.deepEqual(usage.get(1), { comm: "t1", cpuMs: 500, percent: 50 });
  assert.deepEqual(usage.get(2), { comm: "t2", cpuMs: 100, percent: 10 });
  assert.equal(usage.has(3), false, "a new thread is measured from the next sample");
  assert.throws(() => meter.update(at([]), 2000), RangeError);
});
