import { test } from "node:test";
import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { signalFile } from "../../src/store/changes.ts";
import { tempQueue } from "./_helpers.ts";

const mtime = (file: string) => statSync(file).mtimeMs;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test("notifyLocal() touches the signal file at once after a quiet spell, and once more after a busy one", async () => {
  await using t = await tempQueue();
  const feed = t.queue.store.changes;
  const { file } = signalFile(t.queue.store.handle.location)!;
  await sleep(10);
  feed.notifyLocal();
  const first = mtime(file);
  await sleep(10);
  // A busy spell: the first touch is immediate, the rest share one trailing touch.
  feed.notifyLocal();
  const leading = mtime(file);
  assert.ok(leading > first, "the first commit after a quiet spell touches at once");
  feed.notifyLocal();
  feed.notifyLocal();
  assert.equal(mtime(file), leading, "commits within 2 ms wait for the trailing touch");
  await sleep(20);
  assert.ok(
    mtime(file) > leading,
    "the trailing touch came, so other processes see the last commit",
  );
});
