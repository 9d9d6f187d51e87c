/**
 * A command that waits for tasks and exits non-zero says why on stderr, with `--json` too
 * (stdout then holds only the JSON). The CLI fuzz test found `kvq enqueue --json --wait 0 add`
 * exiting 3 with nothing on stderr; `kvq result --json`, `--chain` and `--iter`, `kvq chain` and
 * `kvq iter` had the same fault.
 */
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { runInline } from "../../src/cluster/inline.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { kvq, tempDir } from "./_helpers.ts";

test("unfinished tasks, chains and iters exit 3 with how to wait longer on stderr, --json or not", async () => {
  using dir = tempDir();
  const kv = ["--kv", dir.kv];
  for (const json of [[], ["--json"]]) {
    const made = await kvq(["enqueue", "add", "--args", "[1, 2]", "--wait", "0", ...json, ...kv]);
    assert.equal(made.code, 3, made.err);
    assert.match(made.err, /is still queued\. Wait longer with: kvq result \S+ --wait MS/);
    if (json.length > 0) assert.equal(JSON.parse(made.out).state, "queued", "stdout is JSON");
    const id = (json.length > 0 ? JSON.parse(made.out).id : made.out.split(" ")[0]) as string;

    const result = await kvq(["result", id, ...json, ...kv]);
    assert.equal(result.code, 3, result.err);
    assert.match(result.err, new RegExp(`Task ${id} is still queued`));

    const chain = await kvq(["chain", "--step", "add [1, 1]", "--wait", "0", ...json, ...kv]);
    assert.equal(chain.code, 3, chain.err);
    assert.match(
      chain.err,
      /Chain \S+ is still running at step 1 of 1\. Wait longer with: kvq result --chain/,
    );
    const chainId = json.length > 0 ? JSON.parse(chain.out).id : chain.out.split("\n")[0];
    const chainResult = await kvq(["result", "--chain", chainId, ...json, ...kv]);
    assert.equal(chainResult.code, 3);
    assert.match(chainResult.err, /is still running at step 1 of 1/);

    const iter = await kvq([
      "iter",
      "add",
      "--args-list",
      "[[1, 2], [3, 4]]",
      "--wait",
      "0",
      ...json,
      ...kv,
    ]);
    assert.equal(iter.code, 3, iter.err);
    assert.match(iter.err, /Iter \S+: 0 of 2 finished\. Wait longer with: kvq result --iter/);
    const iterId = json.length > 0 ? JSON.parse(iter.out).id : iter.out.split("\n")[0];
    const iterResult = await kvq(["result", "--iter", iterId, ...json, ...kv]);
    assert.equal(iterResult.code, 3);
    assert.match(iterResult.err, /0 of 2 finished/);
  }
});

test("a failed task, chain or iter exits 1 with its error on stderr, --json or not", async () => {
  using dir = tempDir();
  const kv = ["--kv", dir.kv];
  const task = JSON.parse(
    (await kvq(["enqueue", "boom", "--max-attempts", "1", "--json", ...kv])).out,
  );
  const chain = (await kvq(["chain", "--step", "boom", ...kv])).out.trim();
  const iter = (await kvq(["iter", "boom", "--args-list", "[[1], [2]]", ...kv])).out.trim();
  {
    await using queue = await openQueue({ kv: dir.kv });
    await runInline(queue.store, {
      tasks: new Map([["boom", () => {
        throw new Error("the fuse blew");
      }]]),
      retry: { maxAttempts: 1, backoff: { type: "fixed", delay: 0 } },
      burst: true,
    });
  }
  for (const json of [[], ["--json"]]) {
    const r = await kvq(["result", task.id, ...json, ...kv]);
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, new RegExp(`Task ${task.id} failed: Error: the fuse blew`));
    const c = await kvq(["result", "--chain", chain, ...json, ...kv]);
    assert.equal(c.code, 1, c.err);
    assert.match(c.err, /Chain \S+ failed at step 1 of 1: Error: the fuse blew/);
    const i = await kvq(["result", "--iter", iter, ...json, ...kv]);
    assert.equal(i.code, 1, i.err);
    assert.match(i.err, /Iter \S+: 2 of 2 members failed/);
  }
});
