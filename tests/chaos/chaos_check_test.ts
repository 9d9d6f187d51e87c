import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import {
  checkTicks,
  explainDuplicates,
  parseLog,
  quantile,
  recoveryTimes,
} from "../../scripts/_chaos_check.ts";

const A = "01a21e85-d66f-7151-a2a8-c100c425e1d9";
const B = "01a21e85-d670-748e-b0f0-87e1ce895d64";

test("parseLog() reads id attempt pid time [intended], and sets bad lines apart", () => {
  const { lines, bad } = parseLog(
    `${A} 1 10 1000\n${B} 1 11 1001 2026-01-01T00:00:00.000Z\nbroken\n`,
  );
  assert.equal(lines.length, 2);
  assert.equal(lines[1]!.intended, "2026-01-01T00:00:00.000Z");
  assert.deepEqual(bad, ["broken"]);
});

test("explainDuplicates() explains a re-run after a kill or a stop of the earlier run's cluster, and nothing else", () => {
  const { lines } = parseLog(
    [`${A} 1 10 1000`, `${A} 2 20 1500`, `${B} 1 11 1000`, `${B} 2 20 1600`].join("\n"),
  );
  const killed = explainDuplicates(lines, [{ pid: 10, at: 1200 }], [{
    pid: 11,
    stoppedAt: 1100,
    resumedAt: 5000,
  }]);
  assert.deepEqual([killed.duplicates, killed.explained, killed.byKill, killed.byStop], [
    2,
    2,
    1,
    1,
  ]);
  const none = explainDuplicates(lines, [{ pid: 10, at: 900 }], []);
  assert.equal(none.explained, 0);
  assert.equal(none.unexplained.length, 2);
  const same = explainDuplicates(parseLog(`${A} 1 10 1000\n${A} 1 20 1500`).lines, [{
    pid: 10,
    at: 1200,
  }], []);
  assert.match(same.unexplained[0]!, /attempt 1 ran twice/);
});

test("recoveryTimes() measures from the kill to the restart of the last task the killed cluster held", () => {
  const { lines } = parseLog(
    [`${A} 1 10 1000`, `${B} 1 10 1100`, `${A} 2 20 1400`, `${B} 2 21 1900`].join("\n"),
  );
  assert.deepEqual(recoveryTimes(lines, [{ pid: 10, at: 1200 }, { pid: 30, at: 1200 }]), [
    700,
    null,
  ]);
  assert.equal(quantile([3, 1, 2], 0.5), 2);
  assert.equal(quantile([], 0.5), null);
});

test("checkTicks() finds slots fired twice and slots missing between the first and the last", () => {
  const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
  const { lines } = parseLog(
    [
      `${A} 1 10 1 ${t(0)}`,
      `${A} 2 11 2 ${t(0)}`,
      `${B} 1 10 3 ${t(0)}`,
      `${B.replace("b", "c")} 1 10 4 ${t(3)}`,
    ].join("\n"),
  );
  const report = checkTicks(lines);
  assert.equal(report.slots, 2);
  assert.deepEqual(report.firedTwice, [`${t(0)} (2 tasks)`]);
  assert.deepEqual(report.missing, [t(1), t(2)]);
});
