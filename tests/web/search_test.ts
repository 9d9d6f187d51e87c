/**
 * The dashboard's search: `/tasks?q=` answers look-ups at once and scans within its first
 * budget, `/search.ndjson` goes on where the page stopped, row by row with progress, and bad
 * text gets a clear answer.
 */
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { MAX_SEARCH_CHARS } from "../../src/store/search.ts";
import { runTasks, withDashboard, XSS } from "./_helpers.ts";

const rowIds = (body: string) => [...body.matchAll(/<tr data-task="([^"]+)"/g)].map((m) => m[1]!);

test("/tasks?q= finds a task by an argument value beyond the newest page, and by func through the look-up", async () => {
  await withDashboard({}, async ({ queue, client }) => {
    const old = await queue.enqueue({ func: "notify", args: [{ to: "needle@example.com" }] });
    await queue.enqueueMany(
      Array.from(
        { length: 120 },
        (_, i) => ({ func: "notify", args: [{ to: `u${i}@example.com` }] }),
      ),
    );
    await runTasks(queue, { notify: () => null });
    const found = await client.page("/tasks?q=NEEDLE%40example");
    assert.equal(found.status, 200);
    assert.deepEqual(rowIds(found.body), [old.id]);
    assert.match(found.body, /hold “NEEDLE@example” in their id, name, func/);
    assert.match(found.body, /read 121 of ~121 tasks/);
    assert.doesNotMatch(
      found.body,
      /<body data-live/,
      "a search page is not re-run on every change",
    );

    const byFunc = await client.page("/tasks?q=notify&state=succeeded");
    assert.equal(rowIds(byFunc.body).length, 50);
    assert.match(byFunc.body, /Tasks whose func is “notify”, from the look-up/);
    const next = /href="([^"]+)" data-next>next page/.exec(byFunc.body)?.[1]?.replaceAll(
      "&amp;",
      "&",
    );
    assert.ok(next, "a next page");
    const second = await client.page(next);
    assert.equal(rowIds(second.body).length, 50);
    assert.equal(new Set([...rowIds(byFunc.body), ...rowIds(second.body)]).size, 100);
  });
});

test("/search.ndjson streams the rows and progress of a scan that went past the page's budget", async () => {
  await withDashboard({}, async ({ queue, client }) => {
    const tasks = await queue.enqueueMany(
      Array.from({ length: 1100 }, (_, i) => ({ func: "f", args: [i % 500 === 3 ? "findme" : i] })),
    );
    const wanted = tasks.filter((_, i) => i % 500 === 3).map((t) => t.id).reverse();
    const cursor = (await queue.search("findme", { limit: 1 })).cursor!;
    const res = await client.request(`/search.ndjson?q=findme&cursor=${cursor}&want=10`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /ndjson/);
    const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l));
    const rows = lines.filter((l) => l.row).map((l) => /data-task="([^"]+)"/.exec(l.row)![1]);
    assert.deepEqual(rows, wanted.slice(1));
    assert.ok(lines.some((l) => l.progress?.scanned > 0 && l.progress.total === 1100));
    const end = lines.at(-1).end;
    assert.equal(end.matched, 2);
    assert.match(end.pager, /the last match/);
  });
});

test("/tasks?q= takes regex characters and markup literally, and refuses oversized text with a message", async () => {
  await withDashboard({}, async ({ queue, client }) => {
    const odd = await queue.enqueue({ func: "f", args: ["(a+)+$ .* [x]", XSS[0]] });
    await queue.enqueue({ func: "f", args: ["aaaa"] });
    const regex = await client.page(`/tasks?q=${encodeURIComponent("(a+)+$")}`);
    assert.deepEqual(rowIds(regex.body), [odd.id]);
    const xss = await client.page(`/tasks?q=${encodeURIComponent(XSS[0])}`);
    assert.deepEqual(rowIds(xss.body), [odd.id]);
    assert.ok(!xss.body.includes(XSS[0]), "the text is escaped");
    const long = await client.page(`/tasks?q=${"x".repeat(MAX_SEARCH_CHARS + 1)}`);
    assert.equal(long.status, 400);
    assert.match(long.body, /search text is at most 1000 characters/);
    const bad = await client.request("/search.ndjson?q=x&cursor=nonsense");
    assert.match(await bad.text(), /"error":"That search cursor is not one kvq gave/);
  });
});
