import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { existsSync, rmSync } from "node:fs";
import { signalFile, TOUCH_EVERY_MS, Toucher } from "../../src/store/changes.ts";
import { tempQueue } from "./_helpers.ts";

test("a Toucher touches a signal file at once after a quiet spell, and once more after a busy one", () => {
  // A fake clock: time moves only when the test says, and timers run when it reaches them.
  let now = 1000;
  const timers: { at: number; fn: () => void }[] = [];
  const clock = {
    now: () => now,
    setTimeout: (fn: () => void, ms: number) => timers.push({ at: now + ms, fn }),
    clearTimeout: () => {},
  };
  const advance = (ms: number) => {
    now += ms;
    for (const t of timers.splice(0).sort((a, b) => a.at - b.at)) {
      if (t.at <= now) t.fn();
      else timers.push(t);
    }
  };
  const written: number[] = [];
  const toucher = new Toucher({ clock, write: () => written.push(now) });
  const signal = { dir: "/nowhere", file: "/nowhere/touched-1" };
  toucher.soon(signal);
  assert.deepEqual(written, [1000], "the first commit after a quiet spell touches at once");
  // A busy spell: the commits within TOUCH_EVERY_MS share one trailing touch.
  toucher.soon(signal);
  toucher.soon(signal);
  assert.deepEqual(written, [1000]);
  advance(TOUCH_EVERY_MS);
  assert.deepEqual(written, [1000, 1000 + TOUCH_EVERY_MS], "the trailing touch came");
  // Quiet again: at once.
  advance(10 * TOUCH_EVERY_MS);
  toucher.soon(signal);
  assert.equal(written.length, 3);
  assert.equal(written[2], now);
  // A closing store writes a trailing touch that is due at once.
  toucher.soon(signal);
  toucher.flush(signal.file);
  assert.equal(written.length, 4);
});

test("notifyLocal() touches this process's signal file, at once or in the touch its close writes", async () => {
  await using t = await tempQueue();
  const feed = t.queue.store.changes;
  const { file } = signalFile(t.queue.store.handle.location)!;
  rmSync(file, { force: true });
  feed.notifyLocal();
  // Touched now, or (when it was touched within the last TOUCH_EVERY_MS) by the trailing touch
  // that closing writes at once.
  feed.close();
  assert.ok(existsSync(file), "the commit reached the signal file other processes watch");
});
