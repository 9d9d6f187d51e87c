import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { openQueue } from "../../src/queue/queue.ts";
import { readRates, StatDeltas } from "../../src/store/stats.ts";
import { tempDir } from "./_helpers.ts";

const T0 = Date.parse("2026-05-01T10:00:00Z");

test("readRates() gives sliding per-minute, hour and day counts and 24 h averages", async () => {
  using dir = tempDir();
  await using queue = await openQueue({ kv: dir.kv, clock: () => T0 });
  const store = queue.store;
  const deltas = new StatDeltas();
  const attempt = (at: number, ok: boolean, runMs: number, waitMs: number) =>
    deltas.add(at, { ok, startedAt: at - runMs, runAt: at - runMs - waitMs });
  // 60 in the minute 09:59, 30 in 10:00 so far, 10 two hours ago, 5 two days ago (not counted).
  for (let i = 0; i < 60; i++) attempt(T0 - 60_000 + i * 1000, i % 10 !== 0, 100, 10);
  for (let i = 0; i < 30; i++) attempt(T0 + i * 1000, true, 300, 30);
  for (let i = 0; i < 10; i++) attempt(T0 - 2 * 3_600_000, false, 1000, 0);
  for (let i = 0; i < 5; i++) attempt(T0 - 48 * 3_600_000, true, 1, 1);
  const atomic = store.kv.atomic();
  deltas.apply(atomic, store);
  assert.ok((await atomic.commit()).ok);

  // At 10:00:30: the window 09:59:30–10:00:30 holds half of 09:59 and all of 10:00.
  const r = await readRates(store, T0 + 30_000);
  assert.equal(r.perMinute, 30 + 30);
  assert.equal(r.perSecond, 1);
  assert.equal(r.perHour, 90);
  assert.equal(r.perDay, 100);
  assert.equal(r.failedLastHour, 6);
  assert.equal(r.avgRunMs, (60 * 100 + 30 * 300 + 10 * 1000) / 100);
  assert.equal(r.avgWaitMs, (60 * 10 + 30 * 30) / 100);
  assert.equal(r.lastHour.length, 60);
  assert.deepEqual(r.lastHour.at(-1), { at: T0, ended: 30, failed: 0 });
  assert.deepEqual(r.lastHour.at(-2), { at: T0 - 60_000, ended: 60, failed: 6 });

  // Just after a new minute begins, the last minute is not empty.
  const next = await readRates(store, T0 + 61_000);
  assert.equal(next.perMinute, 30);

  const none = await readRates(store, T0 + 30 * 3_600_000);
  assert.deepEqual([none.perDay, none.avgRunMs, none.avgWaitMs], [0, null, null]);
});
