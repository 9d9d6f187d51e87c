import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openQueue } from "../../src/queue/queue.ts";
import { readEvents, runTasks, withDashboard, XSS } from "./_helpers.ts";
import { Dashboard, DashboardListenError, parseListen } from "../../src/web/dashboard.ts";
import { html } from "../../src/web/html.ts";

const TOKEN = "test-token-0123456789abcdef";

function boom(message: string): never {
  const error = new Error(message);
  error.stack = `Error: ${message}\n    at boom (${XSS[0]})`;
  throw error;
}
const add = (a: number, b: number) => a + b;

test("html escapes every interpolated value unless it is already Html", () => {
  const out = html`<p title="${XSS[1]}">${XSS[0]}${[
    html`<b>${"&"}</b>`,
    "<i>",
  ]}${null}${false}</p>`;
  assert.equal(
    out.value,
    '<p title="&quot;&gt;&lt;img src=x onerror=alert(1)&gt;">&lt;script&gt;alert(1)&lt;/script&gt;<b>&amp;</b>&lt;i&gt;</p>',
  );
});

test("parseListen() reads HOST:PORT, :PORT and [v6]:PORT and rejects the rest", () => {
  assert.deepEqual(parseListen("0.0.0.0:9000"), { hostname: "0.0.0.0", port: 9000 });
  assert.deepEqual(parseListen(":0"), { hostname: "127.0.0.1", port: 0 });
  assert.deepEqual(parseListen("[::1]:8080"), { hostname: "::1", port: 8080 });
  assert.throws(() => parseListen("localhost"), /HOST:PORT.*"localhost"/);
  assert.throws(() => parseListen("1.2.3.4:70000"), TypeError);
});

test("Dashboard pages render, and unknown routes, bad ids and unknown queues are 404 pages", async () => {
  await withDashboard({}, async ({ client, queue }) => {
    const { id, name } = await queue.enqueue("add", 1, 2);
    for (
      const path of ["/", "/queues", "/tasks", "/tasks?state=queued", "/schedules", "/clusters"]
    ) {
      const { status, body } = await client.page(path);
      assert.equal(status, 200, path);
      assert.match(body, /<main>/, path);
    }
    for (const ref of [id, name]) {
      const { status, body } = await client.page(`/tasks/${ref}`);
      assert.equal(status, 200);
      assert.match(body, new RegExp(name));
    }
    for (
      const path of [
        "/nope",
        "/tasks/not-an-id",
        "/tasks/0193a7c2-5b1e-7f00-8a3b-1c2d3e4f5a6b",
        "/tasks/%E0%A4%A",
        "/tasks?state=bogus",
        "/tasks?queue=other",
        "/schedules/edit?name=none",
      ]
    ) {
      const { status, body } = await client.page(path);
      assert.equal(status, 404, path);
      assert.match(body, /<h1>Not found<\/h1>/, path);
      assert.doesNotMatch(body, /at .*\.ts:\d+/, `${path} leaks a stack`);
    }
    const res = await client.action("/tasks/not-an-id/retry", {});
    assert.equal(res.status, 404);
    assert.equal(res.json?.ok, false);
  });
});

test("Dashboard escapes task args, errors, stacks and group names everywhere it shows them", async () => {
  await withDashboard({}, async ({ client, queue }) => {
    const { id } = await queue.enqueue({
      func: "boom",
      args: [XSS.join(" ")],
      group: XSS[1],
      maxAttempts: 1,
    });
    await runTasks(queue, { boom });
    assert.equal((await queue.fetch(id))!.state, "failed");
    for (const path of [`/tasks/${id}`, "/tasks?state=failed", "/tasks", "/"]) {
      const { body } = await client.page(path);
      assert.ok(!body.includes("<script>alert(1)"), `${path} has a raw script tag`);
      assert.ok(!body.includes("<img src=x"), `${path} has a raw img tag`);
      assert.ok(body.includes("&lt;script&gt;alert(1)&lt;/script&gt;"), `${path} shows it escaped`);
    }
    const { body } = await client.page(`/tasks/${id}`);
    assert.ok(body.includes("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
    // The page's own script is the only script element.
    assert.equal(body.match(/<script/g)?.length, 1);
    // The event stream carries the same escaped markup.
    const res = await client.request(`/events?path=${encodeURIComponent(`/tasks/${id}`)}`);
    const e = await readEvents(res, (e) => e.event === "region");
    const region = JSON.parse(e.data).html as string;
    assert.ok(region.includes("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert.ok(!region.includes("<img src=x"));
  });
});

test("Dashboard actions retry, cancel and delete one task, with JSON for the script and 303 for forms", async () => {
  await withDashboard({}, async ({ client, queue }) => {
    const failed = await queue.enqueue({ func: "boom", args: ["x"], maxAttempts: 1 });
    await runTasks(queue, { boom });
    await client.page("/tasks");
    let r = await client.action(`/tasks/${failed.id}/retry`);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json?.ok, true);
    assert.equal((await queue.fetch(failed.id))!.state, "queued");
    r = await client.action(`/tasks/${failed.name}/cancel`);
    assert.equal(r.json?.ok, true, r.body);
    assert.equal((await queue.fetch(failed.id))!.state, "cancelled");
    r = await client.action(`/tasks/${failed.id}/cancel`);
    assert.equal(r.status, 409);
    assert.match(r.json!.error!, /already cancelled/);
    // A plain form post (no script): CSRF in the field, 303 back.
    r = await client.action(`/tasks/${failed.id}/delete`, {
      _csrf: client.csrf,
      return: `/tasks/${failed.id}`,
    }, { json: false });
    assert.equal(r.status, 303);
    assert.equal(r.res.headers.get("location"), "/tasks");
    assert.equal(await queue.fetch(failed.id), null);
    r = await client.action(`/tasks/${failed.id}/delete`);
    assert.equal(r.status, 404);
  });
});

test("Dashboard bulk actions retry, cancel and delete the selected tasks, and retry all failed", async () => {
  await withDashboard({}, async ({ client, queue }) => {
    const bad = await queue.enqueueMany(
      Array.from({ length: 5 }, (_, i) => ({ func: "boom", args: [`e${i}`], maxAttempts: 1 })),
    );
    await runTasks(queue, { boom });
    await client.page("/tasks?state=failed");
    let r = await client.action("/tasks/bulk", { op: "retry", id: [bad[0]!.id, bad[1]!.id] });
    assert.equal(r.json?.ok, true, r.body);
    assert.match(r.json!.message!, /Retried 2 tasks/);
    assert.equal((await queue.counts()).queued, 2);
    r = await client.action("/tasks/bulk", { op: "cancel", id: [bad[0]!.id, bad[2]!.id] });
    assert.match(r.json!.message!, /Cancelled 1 task; 1 skipped: .*already failed/);
    r = await client.action("/tasks/bulk", { op: "delete", id: [bad[0]!.id] });
    assert.match(r.json!.message!, /Deleted 1 task\./);
    r = await client.action("/tasks/bulk", { all: "failed" });
    assert.match(r.json!.message!, /Retried 3 failed tasks/);
    const counts = await queue.counts();
    assert.equal(counts.failed, 0);
    assert.equal(counts.queued, 4);
    r = await client.action("/tasks/bulk", { op: "retry" });
    assert.equal(r.status, 422);
    assert.match(r.json!.error!, /Select at least one task/);
    r = await client.action("/tasks/bulk", { op: "explode", id: bad[1]!.id });
    assert.equal(r.status, 422);
  });
});

test("Dashboard purge deletes the finished tasks of one state in pages", async () => {
  await withDashboard({}, async ({ client, queue }) => {
    await queue.enqueueMany(Array.from({ length: 230 }, (_, i) => ({ func: "add", args: [i, 1] })));
    await queue.enqueueMany(
      Array.from({ length: 3 }, () => ({ func: "boom", args: ["no"], maxAttempts: 1 })),
    );
    await runTasks(queue, { add, boom });
    await queue.enqueue("add", 1, 1);
    await client.page("/queues");
    let r = await client.action("/queues/purge", { state: "succeeded" });
    assert.equal(r.json?.ok, true, r.body);
    assert.match(r.json!.message!, /Purged 230 succeeded tasks/);
    const counts = await queue.counts();
    assert.deepEqual([counts.succeeded, counts.failed, counts.queued], [0, 3, 1]);
    assert.equal((await queue.tasks({ state: "succeeded" })).tasks.length, 0);
    r = await client.action("/queues/purge", { state: "queued" });
    assert.equal(r.status, 422);
    assert.match(r.json!.error!, /Only finished tasks/);
  });
});

test("Dashboard purge leaves the counters right for cached tasks, which were never counted", async () => {
  await withDashboard({}, async ({ client, queue }) => {
    await queue.enqueueMany([
      { func: "add", args: [1, 1], cached: 3_600_000 },
      { func: "add", args: [2, 2], cached: 3_600_000 },
      { func: "add", args: [3, 3] },
    ]);
    await runTasks(queue, { add });
    assert.equal((await queue.counts()).succeeded, 1, "cached successes are not counted");
    await client.page("/queues");
    const r = await client.action("/queues/purge", { state: "succeeded" });
    assert.match(r.json!.message!, /Purged 3 succeeded tasks/);
    const counts = await queue.counts();
    assert.equal(counts.succeeded, 0);
    await queue.enqueue("add", 4, 4);
    await runTasks(queue, { add });
    assert.equal((await queue.counts()).succeeded, 1, "the counter counts on from zero");
  });
});

test("Dashboard pauses and resumes a queue, and shows it paused (reason, since when) live", async () => {
  await withDashboard({}, async ({ client, queue }) => {
    let { body } = await client.page("/queues");
    assert.doesNotMatch(body, /not supported/);
    assert.match(body, /action="\/queues\/pause"/);
    assert.doesNotMatch(body, /action="\/queues\/resume"/, "an active queue offers Pause only");
    assert.match(body, /data-paused="no"/);
    // Live region first, so the pause shows up in the stream.
    const res = await client.request(`/events?path=${encodeURIComponent("/queues")}`);
    const res2 = await client.request(`/events?path=${encodeURIComponent("/queues")}`);
    let r = await client.action("/queues/pause", { reason: `deploy ${XSS[0]}` });
    assert.equal(r.status, 200, r.body);
    assert.match(r.json!.message!, /Paused queue default/);
    const paused = await queue.paused();
    assert.equal(paused?.reason, `deploy ${XSS[0]}`);
    const e = await readEvents(res, (e) =>
      e.event === "region" &&
      JSON.parse(e.data).html.includes('data-paused="yes"'));
    assert.match(JSON.parse(e.data).html, /badge paused/);
    ({ body } = await client.page("/queues"));
    assert.match(body, /data-paused="yes"><span class="badge paused">paused<\/span> since <time/);
    assert.ok(body.includes("deploy &lt;script&gt;alert(1)&lt;/script&gt;"), "reason, escaped");
    assert.ok(!body.includes(`deploy ${XSS[0]}`));
    assert.match(body, new RegExp(`datetime="${new Date(paused!.at).toISOString()}"`));
    assert.match(body, /action="\/queues\/resume"/);
    assert.doesNotMatch(body, /action="\/queues\/pause"/, "a paused queue offers Resume only");
    // The controls follow the state live, too.
    const controls = await readEvents(
      res2,
      (e) =>
        e.event === "region" && JSON.parse(e.data).id === "pause-default" &&
        JSON.parse(e.data).html.includes("resume"),
    );
    assert.match(JSON.parse(controls.data).html, /data-queue-action="resume"/);
    r = await client.action("/queues/pause", { reason: "x".repeat(201) });
    assert.equal(r.status, 422);
    assert.match(r.json!.error!, /at most 200 characters: received 201/);
    r = await client.action("/queues/resume");
    assert.equal(r.status, 200, r.body);
    assert.match(r.json!.message!, /Resumed queue default/);
    assert.equal(await queue.paused(), null);
    r = await client.action("/queues/resume");
    assert.match(r.json!.message!, /was not paused/);
    // A plain form (no script): no reason, CSRF in the field, 303 back to the page.
    r = await client.action("/queues/pause", { _csrf: client.csrf, return: "/queues" }, {
      json: false,
    });
    assert.equal(r.status, 303);
    assert.equal(r.res.headers.get("location"), "/queues");
    assert.deepEqual((await queue.paused())?.reason, null);
    ({ body } = await client.page("/queues"));
    assert.match(body, /data-paused="yes"/);
  });
});

test("Dashboard shows a queue's limits, sets them, refuses bad ones by name, and clears them", async () => {
  await withDashboard({}, async ({ client, queue }) => {
    let { body } = await client.page("/queues");
    assert.match(body, /<td data-limits><span class="muted">none<\/span><\/td>/);
    assert.match(body, /action="\/queues\/limits"/);
    let r = await client.action("/queues/limits", { concurrency: "3", rate: "10/1s" });
    assert.equal(r.status, 200, r.body);
    assert.match(r.json!.message!, /limits: concurrency 3 · rate 10\/1000ms/);
    assert.deepEqual(await queue.limits(), { concurrency: 3, rate: { count: 10, ms: 1000 } });
    ({ body } = await client.page("/queues"));
    assert.match(body, /<td data-limits>concurrency 3 · rate 10\/1000ms<\/td>/);
    assert.match(body, /name="concurrency"[^>]*value="3"/);
    for (
      const [form, error] of [
        [{ concurrency: "-1", rate: "" }, /concurrency .*received "-1"/],
        [{ concurrency: "", rate: "fast" }, /N\/DURATION.*received "fast"/],
        [{ concurrency: "", rate: "0/1s" }, /received "0\/1s"/],
      ] as const
    ) {
      r = await client.action("/queues/limits", form);
      assert.equal(r.status, 422);
      assert.match(r.json!.error!, error);
    }
    assert.deepEqual(await queue.limits(), { concurrency: 3, rate: { count: 10, ms: 1000 } });
    r = await client.action("/queues/limits", { concurrency: "", rate: "" });
    assert.match(r.json!.message!, /no limits now/);
    assert.equal(await queue.limits(), null);
  });
});

test("Dashboard sets per-partition limits and weights, and lists the partitions with their counts", async () => {
  await withDashboard({}, async ({ client, queue }) => {
    await queue.enqueueMany([
      ...Array.from({ length: 3 }, () => ({ func: "add", args: [1, 2], partition: "tenant-a" })),
      { func: "add", args: [1, 2], partition: "tenant-b", delay: 60_000 },
    ]);
    await client.page("/queues");
    let r = await client.action("/queues/limits", {
      partitionConcurrency: "2",
      partitionRate: "5/1s",
      partitionWeights: "vip=3, big=2",
    });
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(await queue.limits(), {
      partitionConcurrency: 2,
      partitionRate: { count: 5, ms: 1000 },
      partitionWeights: { vip: 3, big: 2 },
    });
    const { body } = await client.page("/queues");
    assert.match(body, /name="partitionConcurrency"[^>]*value="2"/);
    assert.match(body, /name="partitionWeights"[^>]*value="vip=3, big=2"/);
    assert.match(
      body,
      /<tr data-partition="tenant-a">\s*<td>tenant-a<\/td>\s*<td>0<\/td>\s*<td>3<\/td>\s*<td>0<\/td>/,
    );
    assert.match(
      body,
      /<tr data-partition="tenant-b">\s*<td>tenant-b<\/td>\s*<td>0<\/td>\s*<td>0<\/td>\s*<td>1<\/td>/,
    );
    for (
      const [form, error] of [
        [{ partitionConcurrency: "0" }, /partitionConcurrency .*received 0/],
        [{ partitionRate: "5/0s" }, /received "5\/0s"/],
        [{ partitionWeights: "vip" }, /PARTITION=N.*received "vip"/],
        [{ partitionWeights: "vip=101" }, /weight of partition "vip".*101/],
      ] as const
    ) {
      r = await client.action("/queues/limits", form);
      assert.equal(r.status, 422, JSON.stringify(form));
      assert.match(r.json!.error!, error);
    }
    assert.equal((await queue.limits())?.partitionConcurrency, 2, "bad input stored nothing");
  });
});

test("Dashboard refuses pause and resume without the CSRF token or from another origin", async () => {
  await withDashboard({}, async ({ client, queue }) => {
    await client.page("/queues");
    for (const path of ["/queues/pause", "/queues/resume"]) {
      for (
        const headers of [
          { "x-csrf-token": "" },
          { "x-csrf-token": "wrong" },
          { "x-csrf-token": client.csrf, origin: "https://evil.example" },
        ]
      ) {
        const r = await client.action(path, { reason: "x" }, { headers });
        assert.equal(r.status, 403, `${path} ${JSON.stringify(headers)}`);
      }
    }
    assert.equal(await queue.paused(), null);
    await queue.pause("by hand");
    const r = await client.action("/queues/resume", {}, { headers: { "x-csrf-token": "" } });
    assert.equal(r.status, 403);
    assert.equal((await queue.paused())?.reason, "by hand");
  });
});

test("Dashboard schedules: create, reject bad input inline, edit, pause, resume, run now, delete", async () => {
  await withDashboard({}, async ({ client, queue, dashboard }) => {
    const schedules = dashboard.schedules("default")!;
    await client.page("/schedules");
    let r = await client.action("/schedules", {
      name: "every-5",
      func: "add",
      args: "[1, 2]",
      type: "minutes",
      minutes: "5",
      tz: "Europe/Berlin",
      nextRun: "2030-01-01T00:00:00Z",
    });
    assert.equal(r.json?.ok, true, r.body);
    let s = (await schedules.get("every-5"))!;
    assert.deepEqual([s.type, s.minutes, s.tz, s.args], ["minutes", 5, "Europe/Berlin", [1, 2]]);

    r = await client.action("/schedules", { name: "every-5", func: "add", type: "daily" });
    assert.equal(r.status, 409);
    assert.match(r.json!.error!, /already exists/);
    r = await client.action("/schedules", {
      name: "x",
      func: "add",
      type: "minutes",
      minutes: "0",
    });
    assert.equal(r.status, 422);
    assert.match(r.json!.error!, /minutes/);
    r = await client.action("/schedules", { name: "x", func: "add", type: "daily", args: "[1," });
    assert.match(r.json!.error!, /"args" must be a JSON array/);
    r = await client.action("/schedules", {
      name: "x",
      func: "add",
      type: "daily",
      tz: "Mars/Base",
    });
    assert.match(r.json!.error!, /Mars\/Base/);
    // Without the script, the form comes back with the error shown next to it, escaped.
    r = await client.action("/schedules", {
      _csrf: client.csrf,
      name: XSS[0],
      func: "add",
      type: "cron",
      cron: XSS[1],
    }, { json: false });
    assert.equal(r.status, 422);
    assert.match(r.body, /<div class="form-error" data-error role="alert">[^<]*cron/);
    assert.ok(!r.body.includes("<img src=x"));
    assert.equal(await schedules.get(XSS[0]), null);

    const edit = await client.page("/schedules/edit?name=every-5");
    assert.equal(edit.status, 200);
    assert.match(edit.body, /name="replace" value="on"/);
    r = await client.action("/schedules", {
      name: "every-5",
      func: "add",
      args: "[3, 4]",
      type: "hourly",
      replace: "on",
    });
    assert.equal(r.json?.ok, true, r.body);
    assert.equal(r.json?.location, "/schedules");
    s = (await schedules.get("every-5"))!;
    assert.deepEqual([s.type, s.args], ["hourly", [3, 4]]);

    r = await client.action("/schedules/action", { name: "every-5", op: "pause" });
    assert.equal(r.json?.ok, true, r.body);
    assert.equal((await schedules.get("every-5"))!.paused, true);
    r = await client.action("/schedules/action", { name: "every-5", op: "resume" });
    assert.equal((await schedules.get("every-5"))!.paused, false);
    r = await client.action("/schedules/action", { name: "every-5", op: "run" });
    assert.match(r.json!.message!, /enqueued task/);
    assert.equal((await queue.counts()).queued, 1);
    const list = await client.page("/schedules");
    assert.match(list.body, /data-schedule="every-5"/);
    assert.match(list.body, /data-last-task><a href="\/tasks\/[0-9a-f-]+">/);
    r = await client.action("/schedules/action", { name: "every-5", op: "delete" });
    assert.equal(r.json?.ok, true);
    assert.equal(await schedules.get("every-5"), null);
    r = await client.action("/schedules/action", { name: "every-5", op: "pause" });
    assert.equal(r.status, 404);
  });
});

test("Dashboard refuses actions without the CSRF token, with a wrong one, or from another origin", async () => {
  await withDashboard({}, async ({ client, queue }) => {
    const { id } = await queue.enqueue("add", 1, 2);
    await client.page("/tasks");
    const good = client.csrf;
    for (
      const headers of [
        { "x-csrf-token": "" },
        { "x-csrf-token": "wrong" },
        { "x-csrf-token": good, origin: "https://evil.example" },
        { "x-csrf-token": good, origin: "null" },
        { "x-csrf-token": good, "sec-fetch-site": "cross-site" },
      ]
    ) {
      const r = await client.action(`/tasks/${id}/cancel`, {}, { headers });
      assert.equal(r.status, 403, JSON.stringify(headers));
      assert.equal(r.json?.ok, false);
    }
    // A token from another browser's cookie does not fit this browser's cookie.
    const other = await client.action(`/tasks/${id}/cancel`, {}, {
      headers: { cookie: "kvq_csrf=AAAAAAAAAAAAAAAAAAAAAAAA" },
    });
    assert.equal(other.status, 403);
    const form = await client.action(`/tasks/${id}/cancel`, { _csrf: "nope" }, { json: false });
    assert.equal(form.status, 403);
    assert.match(form.body, /CSRF/);
    assert.equal((await queue.fetch(id))!.state, "queued");
    const ok = await client.action(`/tasks/${id}/cancel`);
    assert.equal(ok.status, 200);
  });
});

test("Dashboard with a token asks for it: login form, cookie, Bearer header, refusals", async () => {
  await withDashboard({ token: TOKEN }, async ({ client, queue }) => {
    const { id } = await queue.enqueue("add", 1, 2);
    let res = await client.request("/tasks");
    assert.equal(res.status, 303);
    assert.equal(res.headers.get("location"), "/login?next=%2Ftasks");
    for (const path of ["/metrics", "/events?path=/"]) {
      res = await client.request(path);
      assert.equal(res.status, 401, path);
      assert.match(res.headers.get("www-authenticate") ?? "", /Bearer/);
    }
    res = await client.request("/metrics", { headers: { authorization: "Bearer wrong" } });
    assert.equal(res.status, 401);
    res = await client.request("/metrics", { headers: { authorization: `Bearer ${TOKEN}x` } });
    assert.equal(res.status, 401);
    res = await client.request("/metrics", { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 200);
    // Health checks stay open.
    assert.equal((await client.request("/healthz")).status, 200);
    // An action without credentials.
    let r = await client.action(`/tasks/${id}/cancel`);
    assert.equal(r.status, 401);
    // Bearer clients carry no ambient credential, so they need no CSRF token.
    r = await client.action(`/tasks/${id}/cancel`, {}, {
      headers: { authorization: `Bearer ${TOKEN}`, "x-csrf-token": "" },
    });
    assert.equal(r.status, 200, r.body);
    // The login form.
    const login = await client.page("/login?next=/queues");
    assert.equal(login.status, 200);
    r = await client.action("/login", { token: "wrong", next: "/queues" }, { json: false });
    assert.equal(r.status, 401);
    assert.match(r.body, /Wrong token/);
    assert.equal(client.cookies.has("kvq_auth"), false);
    r = await client.action("/login", { token: TOKEN, next: "//evil.example/" }, { json: false });
    assert.equal(r.status, 303);
    assert.equal(r.res.headers.get("location"), "/");
    assert.match(
      r.res.headers.getSetCookie().join(),
      /kvq_auth=[^;]+; Path=\/; HttpOnly; SameSite=Strict/,
    );
    const page = await client.page("/queues");
    assert.equal(page.status, 200);
    assert.doesNotMatch(page.body, new RegExp(TOKEN), "the token never appears in a page");
    // A forged cookie is not a session.
    res = await client.request("/queues", { headers: { cookie: "kvq_auth=forged" } });
    assert.equal(res.status, 303);
    // Sign out.
    r = await client.action("/logout", {}, {});
    assert.equal(r.status, 303);
    assert.equal((await client.request("/queues")).status, 303);
  });
});

test("Dashboard --read-only hides every action and refuses them with 403", async () => {
  await withDashboard({ readOnly: true }, async ({ client, queue }) => {
    const { id } = await queue.enqueue({ func: "boom", args: ["x"], maxAttempts: 1 });
    await runTasks(queue, { boom });
    for (const path of ["/tasks?state=failed", `/tasks/${id}`, "/queues", "/schedules"]) {
      const { body } = await client.page(path);
      assert.doesNotMatch(body, /method="post"(?! action="\/logout")/, path);
      assert.doesNotMatch(body, />Retry</, path);
      assert.match(body, /read-only/, path);
    }
    for (
      const [path, fields] of [
        [`/tasks/${id}/retry`, {}],
        ["/tasks/bulk", { op: "delete", id }],
        ["/queues/purge", { state: "failed" }],
        ["/queues/pause", { reason: "no" }],
        ["/queues/resume", {}],
        ["/schedules", { name: "s", func: "add", type: "daily" }],
        ["/schedules/action", { name: "s", op: "delete" }],
      ] as const
    ) {
      const r = await client.action(path, fields);
      assert.equal(r.status, 403, path);
      assert.match(r.json!.error!, /read-only/);
    }
    assert.equal((await queue.fetch(id))!.state, "failed");
    assert.equal(await queue.paused(), null);
    // The paused state still shows; only the controls are gone.
    await queue.pause("maintenance");
    const { body } = await client.page("/queues");
    assert.match(body, /data-paused="yes"/);
    assert.match(body, /maintenance/);
    assert.doesNotMatch(body, />Pause<|>Resume</);
  });
});

test("Dashboard /metrics is Prometheus text: counters by state, recent per func, histograms, workers", async () => {
  await withDashboard({}, async ({ client, queue }) => {
    await queue.enqueueMany(Array.from({ length: 4 }, (_, i) => ({ func: "add", args: [i, 1] })));
    await queue.enqueue({ func: "boom", args: ["x"], maxAttempts: 1 });
    await runTasks(queue, { add, boom });
    await queue.enqueue("add", 1, 1);
    const res = await client.request("/metrics");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    for (const line of text.trimEnd().split("\n")) {
      assert.match(
        line,
        /^(# (HELP|TYPE) \w+ .+|\w+(\{(\w+="(?:[^"\\]|\\.)*",?)+\})? -?[\d.e+-]+)$/,
        line,
      );
    }
    assert.match(text, /^kvq_tasks\{queue="default",state="succeeded"\} 4$/m);
    assert.match(text, /^kvq_tasks\{queue="default",state="failed"\} 1$/m);
    assert.match(text, /^kvq_tasks\{queue="default",state="queued"\} 1$/m);
    assert.match(text, /^kvq_recent_tasks\{queue="default",func="add",state="succeeded"\} 4$/m);
    assert.match(text, /^kvq_recent_tasks\{queue="default",func="boom",state="failed"\} 1$/m);
    assert.match(text, /^# TYPE kvq_recent_task_run_seconds histogram$/m);
    assert.match(text, /^kvq_recent_task_run_seconds_bucket\{queue="default",le="\+Inf"\} 5$/m);
    assert.match(text, /^kvq_recent_task_run_seconds_count\{queue="default"\} 5$/m);
    const buckets = [...text.matchAll(/^kvq_recent_task_wait_seconds_bucket\{[^}]*\} (\d+)$/gm)]
      .map((m) => Number(m[1]));
    assert.deepEqual(buckets, [...buckets].sort((a, b) => a - b), "buckets are cumulative");
    assert.match(text, /^kvq_oldest_ready_age_seconds\{queue="default"\} [\d.]+$/m);
    assert.match(text, /^# TYPE kvq_worker_cpu_percent gauge$/m);
  });
});

test("Dashboard /healthz and /readyz: up, and 503 once KV is unreachable", async () => {
  await withDashboard({}, async ({ client, dashboard }) => {
    let res = await client.request("/healthz");
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "ok\n");
    res = await client.request("/readyz");
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "ready\n");
    dashboard.handle.close();
    res = await client.request("/readyz");
    assert.equal(res.status, 503);
    assert.match(await res.text(), /not ready/);
  });
});

test("Dashboard event stream sends a page's regions again when KV changes", async () => {
  await withDashboard({}, async ({ client, queue }) => {
    await client.page("/tasks?state=queued");
    const res = await client.request(`/events?path=${encodeURIComponent("/tasks?state=queued")}`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /^text\/event-stream/);
    const first = readEvents(res, (e) => e.event === "region" && e.data.includes("adder-"));
    await queue.enqueue({ func: "add", args: [1, 2], group: "adder-1" });
    const e = await first;
    const { id, html } = JSON.parse(e.data);
    assert.equal(id, "list");
    assert.match(html, /adder-1/);
    // The CSRF placeholder is filled in with this browser's token.
    const tabs = await client.request(`/events?path=${encodeURIComponent("/tasks/bad")}`);
    const gone = await readEvents(tabs, (e) => e.event === "gone");
    assert.match(JSON.parse(gone.data).message, /neither a task id/);
    assert.equal((await client.request("/events?path=//evil")).status, 400);
    assert.equal((await client.request("/events?path=/nope")).status, 404);
  });
});

test("Dashboard overview charts the selected queue's attempts per minute from KV, and streams them", async () => {
  await withDashboard({}, async ({ client, queue, dir }) => {
    await queue.enqueueMany(Array.from({ length: 6 }, (_, i) => ({ func: "add", args: [i, 1] })));
    await queue.enqueue({ func: "fail", maxAttempts: 1 });
    await runTasks(queue, {
      add,
      fail: () => {
        throw new Error("no");
      },
    });
    await using mail = await openQueue({ kv: join(dir, "kv.sqlite3"), name: "mail" });
    await mail.enqueue("add", 1, 1);
    await runTasks(mail, { add });
    const res = await client.request("/events?path=/");
    const chart = await readEvents(
      res,
      (e) =>
        e.event === "chart" &&
        JSON.parse(e.data).points.some((p: { ended: number }) => p.ended > 0),
    );
    const data = JSON.parse(chart.data);
    assert.equal(data.bucket, 60_000);
    assert.equal(data.points.length, 60);
    const minute = data.points.at(-1);
    // The default queue's attempts only: 7 ended, 1 failed; mail's one is not in it.
    assert.deepEqual([minute.ended, minute.failed], [7, 1]);
    const page = await client.page("/");
    assert.match(page.body, /<script type="application\/json" id="chart-data">\{"bucket":60000/);
    // The cards count the selected queue only.
    const mailPage = await client.page("/?queue=mail");
    assert.match(mailPage.body, /data-count="succeeded">1</);
    assert.match(page.body, /data-count="succeeded">6</);
  });
});

test("Dashboard overview's chart survives a restart of the dashboard", async () => {
  const dir = mkdtempSync(join(tmpdir(), "kvq-web-restart-"));
  try {
    const kv = join(dir, "kv.sqlite3");
    {
      await using queue = await openQueue({ kv });
      await queue.enqueueMany(Array.from({ length: 4 }, (_, i) => ({ func: "add", args: [i, 1] })));
      await runTasks(queue, { add });
    }
    for (let round = 0; round < 2; round++) {
      await using dashboard = new Dashboard({ kv });
      await dashboard.start();
      const data = await dashboard.chartData(dashboard.stores[0]!);
      assert.equal(data.points.reduce((n, p) => n + p.ended, 0), 4, `round ${round}`);
      // The same sums over 24 and 72 hours, in bars of 15 minutes and of an hour.
      for (const [range, bars, bucket] of [["24h", 96, 900_000], ["72h", 72, 3_600_000]] as const) {
        const wide = await dashboard.chartData(dashboard.stores[0]!, range);
        assert.equal(wide.bucket, bucket);
        assert.equal(wide.points.length, bars, range);
        assert.equal(wide.points.reduce((n, p) => n + p.ended, 0), 4, `${range}, round ${round}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("Dashboard refuses a Host that is not loopback when it has no token (DNS rebinding)", async () => {
  await withDashboard({}, async ({ client }) => {
    const res = await client.request("/", { headers: { host: "evil.example:8080" } });
    assert.equal(res.status, 403);
    assert.match(await res.text(), /not allowed/);
    assert.equal((await client.request("/", { headers: { host: "localhost:8080" } })).status, 200);
  });
  await withDashboard({ token: TOKEN }, async ({ client }) => {
    const res = await client.request("/healthz", { headers: { host: "kvq.example.com" } });
    assert.equal(res.status, 200);
  });
});

test("Dashboard.listen() refuses a public bind without a token and names a port in use", async () => {
  await withDashboard({}, async ({ dashboard }) => {
    await assert.rejects(
      dashboard.listen({ hostname: "0.0.0.0", port: 0 }),
      (e: Error) =>
        e instanceof DashboardListenError && /without a token/.test(e.message) &&
        /--token/.test(e.message),
    );
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      await assert.rejects(
        dashboard.listen({ hostname: "127.0.0.1", port }),
        (e: Error) =>
          e instanceof DashboardListenError &&
          e.message.includes(`Port ${port} on 127.0.0.1 is already in use`) &&
          e.suggestion === `127.0.0.1:${port + 1}`,
      );
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
    const server = await dashboard.listen({ hostname: "127.0.0.1", port: 0 });
    const res = await fetch(`${dashboard.url}/healthz`);
    assert.equal(await res.text(), "ok\n");
    assert.ok(server.port > 0);
  });
  assert.throws(() => new Dashboard({ token: "short" }), /at least 16 characters/);
});

test("Dashboard ends a live stream when its browser goes away, and all of them on close()", async () => {
  await withDashboard({}, async ({ dashboard }) => {
    // Count the streams the routes register, and hear each one end: no polling.
    let open = 0;
    let ended: (() => void) | null = null;
    const track = dashboard.trackStream.bind(dashboard);
    dashboard.trackStream = (end) => {
      open++;
      const forget = track(end);
      return () => {
        open--;
        forget();
        ended?.();
      };
    };
    const nextEnd = () => new Promise<void>((resolve) => ended = resolve);
    await dashboard.listen({ hostname: "127.0.0.1", port: 0 });
    const gone = new AbortController();
    const res = await fetch(`${dashboard.url}/events?path=/`, { signal: gone.signal });
    const reader = res.body!.getReader();
    await reader.read();
    assert.equal(open, 1);
    const first = nextEnd();
    gone.abort();
    await reader.cancel().catch(() => {});
    await first;
    assert.equal(open, 0, "the stream ended when its browser went away");
    const again = await fetch(`${dashboard.url}/events?path=/queues`);
    const r2 = again.body!.getReader();
    await r2.read();
    assert.equal(open, 1);
    const second = nextEnd();
    await dashboard.close();
    // The stream ends: cleanly on Deno; Bun's stop(true) resets the connection.
    try {
      for (;;) if ((await r2.read()).done) break;
    } catch (error) {
      assert.match(String(error), /ECONNRESET|closed/);
    }
    await second;
    assert.equal(open, 0, "close() ended it");
  });
});
