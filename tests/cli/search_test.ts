/**
 * `kvq tasks --search`: look-ups and scans from the command line, paging by the cursor it
 * prints, and bad input refused with exit 2 naming the flag.
 */
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { openQueue } from "../../src/queue/queue.ts";
import { kvq, tempDir } from "./_helpers.ts";

test("kvq tasks --search finds a task by an argument value or its func, and pages with the cursor it prints", async () => {
  using dir = tempDir();
  const kv = ["--kv", dir.kv];
  let wanted: string;
  let mail: string[];
  {
    await using queue = await openQueue({ kv: dir.kv });
    const users = await queue.enqueueMany(
      Array.from(
        { length: 40 },
        (_, i) => ({ func: "notify", args: [{ to: `user${i}@example.com` }] }),
      ),
    );
    wanted = users[31]!.id;
    mail = (await queue.enqueueMany(
      Array.from({ length: 3 }, () => ({ func: "sendEmail", args: ["a.*b"] })),
    )).map((t) => t.id);
  }
  const found = await kvq(["tasks", "--search", "USER31@example", ...kv]);
  assert.equal(found.code, 0, found.err);
  assert.deepEqual(found.out.split("\n").map((l) => l.split(" ")[0]), [wanted]);
  assert.match(found.err, /1 found: searched 43 of ~43 tasks/);

  const regex = await kvq(["tasks", "--search", "a.*b", ...kv]);
  assert.equal(regex.out.split("\n").length, 3, "the dot and star are literal");

  const first = await kvq(["tasks", "--search", "sendEmail", "--limit", "2", ...kv]);
  assert.match(first.err, /2 found: exact func match\(es\), from the look-ups/);
  const more = first.err.match(/More: kvq tasks (.*)$/m)?.[1];
  assert.ok(more, first.err);
  const cursor = more.match(/--cursor (\S+)/)![1]!;
  const second = await kvq(["tasks", "--search", "sendEmail", "--cursor", cursor, ...kv]);
  const shown = [...first.out.split("\n"), ...second.out.split("\n")].map((l) => l.split(" ")[0]);
  assert.deepEqual(shown, [...mail].reverse());

  const json = await kvq(["tasks", "--search", "user3", "--json", ...kv]);
  const page = JSON.parse(json.out);
  assert.equal(page.via, "scan");
  assert.equal(page.tasks.length, 11, "user3 and user30 to user39");
});

test("kvq tasks --search refuses oversized text, a bad budget or cursor, and --scan alone, with exit 2 naming the flag", async () => {
  using dir = tempDir();
  const kv = ["--kv", dir.kv];
  await (await openQueue({ kv: dir.kv })).enqueue("f");
  const long = await kvq(["tasks", "--search", "x".repeat(10_000), ...kv]);
  assert.equal(long.code, 2);
  assert.match(long.err, /--search: The search text is at most 1000 characters: received 10000/);
  const budget = await kvq(["tasks", "--search", "x", "--budget", "5x", ...kv]);
  assert.equal(budget.code, 2);
  assert.match(budget.err, /--budget/);
  const cursor = await kvq(["tasks", "--search", "x", "--cursor", "garbage", ...kv]);
  assert.equal(cursor.code, 2);
  assert.match(cursor.err, /--cursor: That search cursor is not one kvq gave/);
  const scan = await kvq(["tasks", "--scan", ...kv]);
  assert.equal(scan.code, 2);
  assert.match(scan.err, /--scan goes with --search TEXT/);
  const mixed = await kvq(["tasks", "--search", "x", "--func", "f", ...kv]);
  assert.equal(mixed.code, 2);
  assert.match(mixed.err, /--search can't be combined with --func/);
});
