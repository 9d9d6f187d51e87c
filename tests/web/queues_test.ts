import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { openQueue } from "../../src/queue/queue.ts";
import { withDashboard } from "./_helpers.ts";

test("Dashboard shows every queue in the store, default first, with a switcher, and finds new ones", async () => {
  await withDashboard({}, async ({ client, dir, dashboard }) => {
    const kv = join(dir, "kv.sqlite3");
    await using mail = await openQueue({ kv, name: "mail" });
    await mail.enqueue("send", "ada@example.com");
    await mail.enqueue("send", "bob@example.com");
    // The dashboard started before "mail" existed: the next page finds it.
    const home = await client.page("/");
    assert.equal(home.status, 200);
    assert.deepEqual(dashboard.stores.map((s) => s.queue), ["default", "mail"]);
    assert.match(home.body, /href="\/\?queue=mail">mail<\/a>/);
    const tasks = await client.page("/tasks?queue=mail&state=queued");
    assert.equal(tasks.status, 200, tasks.body);
    assert.match(tasks.body, /ada@example\.com/);
    assert.match(tasks.body, /bob@example\.com/);
    // The default queue's list has none of mail's tasks.
    const mine = await client.page("/tasks?state=queued");
    assert.doesNotMatch(mine.body, /ada@example\.com/);
    assert.equal((await client.page("/?queue=mail")).status, 200);
    assert.equal((await client.page("/?queue=nope")).status, 404);
  });
});

test("Dashboard with queues shows only those", async () => {
  await withDashboard({ queues: ["mail"] }, async ({ client, dashboard, dir }) => {
    await using other = await openQueue({ kv: join(dir, "kv.sqlite3"), name: "reports" });
    await other.enqueue("build", 1);
    assert.equal((await client.page("/")).status, 200);
    assert.deepEqual(dashboard.stores.map((s) => s.queue), ["mail"]);
    assert.equal((await client.page("/?queue=reports")).status, 404);
  });
});
