/**
 * Search across every task: exact look-ups (id, human name, func, group) answer from indexes,
 * any other text scans the records newest first within a time budget, with paging, progress
 * and damaged records skipped.
 */
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { runInline } from "../../src/cluster/inline.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { MAX_SEARCH_CHARS, type SearchPage, searchTasks } from "../../src/store/search.ts";
import type { TaskRecord } from "../../src/task/record.ts";
import { tempQueue } from "./_helpers.ts";
import { tempDir } from "../cli/_helpers.ts";

const ids = (p: { tasks: readonly TaskRecord[] }) => p.tasks.map((r) => r.id);
const newestFirst = (list: string[]) => [...list].sort().reverse();

/** Every page of a search, following its cursors. */
async function allPages(
  search: (cursor?: string) => Promise<SearchPage>,
): Promise<SearchPage[]> {
  const pages = [await search()];
  while (pages.at(-1)!.cursor !== null && pages.length < 100) {
    pages.push(await search(pages.at(-1)!.cursor!));
  }
  return pages;
}

test("a func, a group, a human name or an id is found through its look-up, newest first, page by page", async () => {
  await using t = await tempQueue();
  const { queue } = t;
  const mail = await queue.enqueueMany(
    Array.from({ length: 7 }, (_, i) => ({ func: "sendEmail", args: [i] })),
  );
  await queue.enqueueMany(Array.from({ length: 5 }, (_, i) => ({ func: "resize", args: [i] })));
  const grouped = await queue.enqueueMany(
    Array.from({ length: 3 }, (_, i) => ({ func: "resize", args: [i], group: "thumbs" })),
  );

  const pages = await allPages((cursor) =>
    queue.search("sendEmail", { limit: 3, ...(cursor ? { cursor } : {}) })
  );
  assert.deepEqual(pages.map((p) => p.tasks.length), [3, 3, 1]);
  assert.ok(pages.every((p) => p.via === "lookup" && p.fields.join() === "func"));
  assert.deepEqual(pages.flatMap(ids), newestFirst(mail.map((t) => t.id)));

  const group = await queue.search("thumbs");
  assert.deepEqual(group.fields, ["group"]);
  assert.deepEqual(ids(group), newestFirst(grouped.map((t) => t.id)));
  assert.equal(group.cursor, null);

  const one = mail[4]!;
  for (const text of [one.id, one.id.toUpperCase(), one.name]) {
    const found = await queue.search(text);
    assert.deepEqual(ids(found), [one.id], text);
    assert.equal(found.via, "lookup");
  }
  // A state filter applies to the look-up too.
  assert.deepEqual(ids(await queue.search("sendEmail", { state: "failed" })), []);
});

test("other text is scanned for in args, errors, partitions and names, literally and ignoring case", async () => {
  await using t = await tempQueue();
  const { queue } = t;
  const users = await queue.enqueueMany(
    Array.from({ length: 300 }, (_, i) => ({ func: "notify", args: [{ user: `user-${i}` }] })),
  );
  const regex = await queue.enqueue({ func: "notify", args: ["a.*b (literal) [x]"] });
  await queue.enqueue({ func: "notify", args: ["aXXXb"] });
  const part = await queue.enqueue({ func: "notify", args: [], partition: "Tenant-42" });
  const broken = await queue.enqueue({ func: "explode", args: [], maxAttempts: 1 });
  await runInline(queue.store, {
    tasks: new Map<string, (...args: unknown[]) => unknown>([
      ["notify", () => null],
      ["explode", () => {
        throw new Error("the disk caught fire");
      }],
    ]),
    burst: true,
  });

  const user = await queue.search("USER-217");
  assert.equal(user.via, "scan");
  assert.deepEqual(ids(user), [users[217]!.id]);
  assert.equal(user.cursor, null, "the scan read every record");
  assert.equal(user.scanned, 304);
  assert.equal(user.total, 304);

  assert.deepEqual(ids(await queue.search("a.*b (literal)")), [regex.id]);
  assert.deepEqual(ids(await queue.search("[x]")), [regex.id]);
  assert.deepEqual(ids(await queue.search("tenant-4")), [part.id]);
  assert.deepEqual(ids(await queue.search("caught FIRE")), [broken.id]);
  // A quote is escaped in the stored JSON: matched on the decoded args.
  assert.deepEqual(ids(await queue.search('"user-299"')), [users[299]!.id]);
  assert.deepEqual(ids(await queue.search("nothing like this")), []);
  // An exact func name is a look-up; `scan` looks in the text instead.
  assert.equal((await queue.search("explode")).via, "lookup");
  assert.equal((await queue.search("explode", { scan: true })).via, "scan");
});

test("a scan looks in args stored in chunks too, and skips chunks that can't be read", async () => {
  await using t = await tempQueue();
  const { queue } = t;
  // Over the inline size: the args are stored in chunks, apart from the record.
  const filler = "x".repeat(150_000);
  const hit = await queue.enqueue({ func: "ingest", args: [`${filler} Needle-42 ${filler}`] });
  await queue.enqueue({ func: "ingest", args: [filler] });
  const damaged = await queue.enqueue({ func: "ingest", args: [`needle-42 ${filler}`] });
  await queue.enqueue({ func: "ingest", args: ["small"] });
  const stored = await queue.store.kv.get(queue.store.keys.task(hit.id));
  assert.match(new TextDecoder().decode(stored.value as Uint8Array), /"argsChunks":[2-9]/);
  // One chunk of the third task's args is lost.
  await queue.store.kv.delete([...queue.store.keys.blobs(damaged.id, "args"), 1]);

  const skipped: string[] = [];
  const page = await queue.search("NEEDLE-42", { onSkip: (e) => skipped.push(e.message) });
  assert.equal(page.via, "scan");
  assert.deepEqual(ids(page), [hit.id]);
  assert.equal(page.scanned, 4);
  assert.equal(page.skipped, 1);
  assert.match(skipped.join(" "), new RegExp(`Task ${damaged.id} has \\d+ of \\d+ args chunks`));
  assert.deepEqual(ids(await queue.search("no such text")), []);
});

test("a scan pages by cursor without repeats, stops at its time budget and reports its progress", async () => {
  await using t = await tempQueue();
  const { queue } = t;
  const all = await queue.enqueueMany(
    Array.from({ length: 1200 }, (_, i) => ({ func: "f", args: [i % 100 === 7 ? "needle" : i] })),
  );
  const matches = all.filter((_, i) => i % 100 === 7).map((t) => t.id);

  const pages = await allPages((cursor) =>
    queue.search("needle", { limit: 5, ...(cursor ? { cursor } : {}) })
  );
  assert.deepEqual(pages.map((p) => p.tasks.length), [5, 5, 2]);
  assert.deepEqual(pages.flatMap(ids), newestFirst(matches));
  assert.equal(pages.at(-1)!.scanned, 1200, "the scanned count carries over the pages");

  // A clock that moves 1 s each time it is read: the budget of 1.5 s allows one batch.
  let now = 0;
  const progress: number[] = [];
  const found: string[] = [];
  const first = await queue.search("needle", {
    budgetMs: 1500,
    clock: () => (now += 1000),
    onProgress: (p) => progress.push(p.scanned),
    onMatch: (r) => found.push(r.id),
  });
  assert.equal(first.outOfTime, true);
  assert.equal(first.scanned, 500);
  assert.deepEqual(progress, [500]);
  assert.deepEqual(found, ids(first), "each match was reported as found");
  assert.deepEqual(ids(first), newestFirst(matches).slice(0, 5));
  const rest = await queue.search("needle", { cursor: first.cursor! });
  assert.deepEqual([...ids(first), ...ids(rest)], newestFirst(matches));
  assert.equal(rest.scanned, 1200);

  const aborted = new AbortController();
  aborted.abort();
  const none = await queue.search("needle", { signal: aborted.signal });
  assert.deepEqual([none.tasks.length, none.outOfTime, none.scanned], [0, true, 0]);
  assert.notEqual(none.cursor, null);
});

test("search refuses empty or oversized text and a cursor it did not give, naming them", async () => {
  await using t = await tempQueue();
  const { queue } = t;
  await assert.rejects(queue.search("  "), /search text is empty/);
  await assert.rejects(
    queue.search("x".repeat(MAX_SEARCH_CHARS + 1)),
    new RegExp(`at most ${MAX_SEARCH_CHARS} characters: received ${MAX_SEARCH_CHARS + 1}`),
  );
  await assert.rejects(
    queue.search("x", { cursor: "nonsense" }),
    /search cursor is not one kvq gave/,
  );
  await assert.rejects(queue.search("x", { limit: 0 }), /limit must be an integer/);
  // At the limit, it is searched literally.
  assert.deepEqual((await queue.search("(".repeat(MAX_SEARCH_CHARS))).tasks, []);
});

test("a search skips a record that can't be decoded, and goes through the name look-ups past a value KV can't decode", async () => {
  using dir = tempDir();
  let bad: string;
  let damaged: string;
  let wanted: string[];
  {
    await using queue = await openQueue({ kv: dir.kv });
    const tasks = await queue.enqueueMany(
      Array.from({ length: 6 }, (_, i) => ({ func: "f", args: [`find-me-${i}`] })),
    );
    // Newer tasks that match nothing: the scan reads them in more than one batch.
    await queue.enqueueMany(Array.from({ length: 1200 }, (_, i) => ({ func: "f", args: [i] })));
    bad = tasks[2]!.id;
    damaged = tasks[4]!.id;
    wanted = newestFirst(tasks.map((t) => t.id).filter((id) => id !== bad && id !== damaged));
    await queue.store.kv.set(
      queue.store.keys.task(damaged),
      new TextEncoder().encode('{"v":1,"id":"find-me"'),
    );
  }
  {
    await using queue = await openQueue({ kv: dir.kv });
    const skipped: string[] = [];
    const page = await queue.search("find-me", { onSkip: (e) => skipped.push(e.message) });
    assert.deepEqual(ids(page), newestFirst([...wanted, bad]));
    assert.equal(page.skipped, 1);
    assert.equal(skipped.length, 1);
  }
  // As another program would write it: a row KV itself can't decode.
  const { DatabaseSync } = await import("node:sqlite");
  const db = new DatabaseSync(dir.kv);
  const hex = (s: string) => Buffer.from(s).toString("hex").toUpperCase();
  const changed = db.prepare(
    "update kv set v = randomblob(150), v_encoding = 1 where hex(k) like ?",
  )
    .run(`%${hex("task")}0002${hex(bad)}%`);
  db.close();
  assert.equal(changed.changes, 1);
  await using queue = await openQueue({ kv: dir.kv });
  const said: string[] = [];
  // Past the undecodable value the ids come from the name look-ups: listed once for the page,
  // not once per batch.
  let nameLists = 0;
  const kv = queue.store.kv as unknown as { list: (s: { prefix?: Deno.KvKey }) => unknown };
  const list = kv.list.bind(kv);
  kv.list = (selector, ...rest: unknown[]) => {
    if (selector.prefix?.[2] === "name") nameLists++;
    return (list as (...a: unknown[]) => unknown)(selector, ...rest);
  };
  const page = await searchTasks(queue.store, "find-me", { onSkip: (e) => said.push(e.message) });
  assert.equal(nameLists, 1, "the name look-ups listed once");
  assert.deepEqual(ids(page), wanted);
  assert.ok(
    said.some((m) => /can't be decoded by KV; searching through the name look-ups/.test(m)),
  );
  assert.equal(page.skipped, 2, "the damaged record and the undecodable one");
});
