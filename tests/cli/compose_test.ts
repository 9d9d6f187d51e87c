import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { runInline } from "../../src/cluster/inline.ts";
import { DEFAULT_RETRY, type RetryPolicy } from "../../src/task/backoff.ts";
import type { TaskFunction } from "../../src/task/loader.ts";
import { openQueue, type Queue } from "../../src/queue/queue.ts";
import { kvq, type Run, tempDir } from "./_helpers.ts";

/** The tasks these tests run inline. */
const tasks = new Map<string, TaskFunction>([
  ["add", (a: number, b: number) => a + b],
  ["double", (n: number) => n * 2],
  ["scale", (by: number, n: number) => n * by],
  ["boom", () => {
    throw new Error("boom");
  }],
] as [string, TaskFunction][]);

test("kvq chain --pass-result runs the steps in order, each given the previous result", async () => {
  using dir = tempDir();
  const made = await kvq([
    "chain",
    "--kv",
    dir.kv,
    "--step",
    "add [1, 2]",
    "--step",
    "double",
    "--step",
    "scale [10]",
    "--pass-result",
    "--group",
    "g",
  ]);
  assert.equal(made.code, 0, made.err);
  const id = made.out.trim();
  assert.match(id, /^[0-9a-f-]{36}$/);
  {
    await using queue = await openQueue({ kv: dir.kv });
    await runInline(queue.store, { tasks, burst: true });
    const status = await queue.chainStatus(id);
    assert.equal(status.state, "succeeded");
    assert.deepEqual(status.results, [3, 6, 60]);
    const last = (await queue.fetch(status.steps[2]!.task!))!;
    assert.equal(last.group, "g");
    assert.deepEqual(last.chain, { id, index: 2 });
  }
  const shown = await kvq(["task", (await statusOf(dir.kv, id)).steps[1]!.task!, "--kv", dir.kv]);
  assert.equal(shown.code, 0, shown.err);
  assert.match(shown.out, new RegExp(`^chain +${id} step 1$`, "m"));
  assert.doesNotMatch(shown.out, /^iter /m);

  const read = await kvq(["result", id, "--chain", "--kv", dir.kv]);
  assert.equal(read.code, 0, read.err);
  assert.match(read.out, /succeeded at step 3 of 3: \[3,6,60\]/);
});

async function statusOf(kv: string, id: string) {
  await using queue = await openQueue({ kv });
  return await queue.chainStatus(id);
}

/**
 * Runs `kvq ...argv` (which enqueues, then waits) while the tasks it enqueued run inline: the
 * executor starts once the CLI's first commit is seen, and runs until nothing is queued.
 */
async function kvqWhileRunning(
  queue: Queue,
  argv: string[],
  options: { retry?: RetryPolicy } = {},
): Promise<Run> {
  const committed = new Promise<void>((resolve) => {
    const off = queue.store.changes.subscribe(() => {
      off();
      resolve();
    });
  });
  const cli = kvq(argv);
  await Promise.race([committed, cli]);
  await runInline(queue.store, { tasks, burst: true, ...options });
  return await cli;
}

test("kvq chain --wait prints the results, and exits 1 when a step fails", async () => {
  using dir = tempDir();
  await using queue = await openQueue({ kv: dir.kv });
  const ok = await kvqWhileRunning(queue, [
    "chain",
    "--kv",
    dir.kv,
    "--json",
    "--step",
    "add [2, 3]",
    "--step",
    "double",
    "--pass-result",
    "--wait",
    "20000",
  ]);
  assert.equal(ok.code, 0, ok.err);
  const status = JSON.parse(ok.out);
  assert.equal(status.state, "succeeded");
  assert.deepEqual(status.results, [5, 10]);

  const bad = await kvqWhileRunning(queue, [
    "chain",
    "--kv",
    dir.kv,
    "--step",
    "add [1, 1]",
    "--step",
    "boom",
    "--step",
    "double",
    "--wait",
    "20000",
  ], { retry: { ...DEFAULT_RETRY, maxAttempts: 1 } }); // the failing step ends it at once
  assert.equal(bad.code, 1, bad.err);
  assert.match(bad.out, /failed at step 2 of 3/);
  assert.match(bad.out, /Error: boom/);

  const unfinished = await kvq(["chain", "--kv", dir.kv, "--step", "add [1, 1]", "--wait", "0"]);
  assert.equal(unfinished.code, 3, unfinished.err);
  assert.match(unfinished.out, /running at step 1 of 1/);
});

test("kvq iter returns the results in input order", async () => {
  using dir = tempDir();
  const made = await kvq([
    "iter",
    "add",
    "--kv",
    dir.kv,
    "--args-list",
    "[[1, 2], [3, 4], [5, 6]]",
  ]);
  assert.equal(made.code, 0, made.err);
  const id = made.out.trim();
  await using queue = await openQueue({ kv: dir.kv });
  await runInline(queue.store, { tasks, burst: true });
  const read = await kvq(["result", id, "--iter", "--kv", dir.kv]);
  assert.equal(read.code, 0, read.err);
  assert.deepEqual(JSON.parse(read.out), [3, 7, 11]);

  const list = Array.from({ length: 12 }, (_, i) => [i]);
  const r = await kvqWhileRunning(queue, [
    "iter",
    "double",
    "--kv",
    dir.kv,
    "--args-list",
    JSON.stringify(list),
    "--wait",
    "20000",
  ]);
  assert.equal(r.code, 0, r.err);
  const [iterId, results] = r.out.split("\n");
  assert.match(iterId!, /^[0-9a-f-]{36}$/);
  assert.deepEqual(JSON.parse(results!), list.map(([n]) => n! * 2));
  const member = (await queue.tasks({ func: "double" })).tasks.find((t) => t.iter?.index === 4)!;
  const shown = await kvq(["task", member.id, "--kv", dir.kv]);
  assert.match(shown.out, new RegExp(`^iter +${iterId} item 4$`, "m"));
});

test("kvq chain and kvq iter reject bad input with exit 2, naming the problem", async () => {
  using dir = tempDir();
  const cases: [string[], RegExp][] = [
    [["chain"], /at least one --step/],
    [["chain", "add"], /Unexpected argument "add"; give each step with --step/],
    [
      ["chain", "--step", "add [1, 2]", "--step", "double {oops"],
      /Step 2 \("double \{oops"\): its arguments must be a JSON array/,
    ],
    [["chain", "--step", "add 5"], /Step 1 \("add 5"\): its arguments must be a JSON array/],
    [["chain", "--step", "add [1]", "--wait", "soon"], /--wait must be a whole number/],
    [["iter", "add"], /--args-list/],
    [["iter", "add", "--args-list", '{"a": 1}'], /--args-list must be a JSON array/],
    [["iter", "add", "--args-list", "[[1,"], /--args-list must be JSON/],
    [["iter", "--args-list", "[[1]]"], /Name the task/],
  ];
  for (const [argv, message] of cases) {
    const r = await kvq([...argv, "--kv", dir.kv]);
    assert.equal(r.code, 2, argv.join(" "));
    assert.match(r.err, message, argv.join(" "));
    assert.match(r.err, new RegExp(`Usage: kvq ${argv[0]}`));
  }
  await using queue = await openQueue({ kv: dir.kv });
  assert.deepEqual((await queue.tasks()).tasks, [], "nothing was stored");
});

test("kvq chain and kvq iter have --help", async () => {
  for (const name of ["chain", "iter"]) {
    const r = await kvq([name, "--help"]);
    assert.equal(r.code, 0);
    assert.match(r.out, new RegExp(`Usage: kvq ${name}`));
    assert.match(r.out, /--secret S/);
  }
  const top = await kvq(["--help"]);
  assert.match(top.out, /^ {2}chain /m);
  assert.match(top.out, /^ {2}iter /m);
});

test("kvq task shows a unique key, and no chain or iter lines for a lone task", async () => {
  using dir = tempDir();
  const made = await kvq(["enqueue", "add", "--kv", dir.kv, "--unique", "nightly", "--json"]);
  assert.equal(made.code, 0, made.err);
  const shown = await kvq(["task", JSON.parse(made.out).id, "--kv", dir.kv]);
  assert.equal(shown.code, 0, shown.err);
  assert.match(shown.out, /^unique +nightly$/m);
  assert.doesNotMatch(shown.out, /^(chain|iter) /m);
});
