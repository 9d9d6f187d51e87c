/**
 * The dashboard in a real browser: playwright-core drives /usr/bin/chromium against a real
 * dashboard server and an in-process cluster. Skipped, saying why, when Chromium is absent.
 * playwright-core runs under both Deno and Bun (checked with Bun 1.4.5), so this runs on both.
 *
 * @module
 */
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Cluster } from "../../src/cluster/cluster.ts";
import { runInline } from "../../src/cluster/inline.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { KvHandle } from "../../src/store/store.ts";
import { Dashboard } from "../../src/web/dashboard.ts";
import { CHROMIUM, CHROMIUM_ARGS } from "../../scripts/_chromium.ts";

const TASKS = fileURLToPath(new URL("../fixtures/web_tasks.ts", import.meta.url));
const skip = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is absent: install it (apt-get install -y chromium) to run the browser test`;
if (skip) console.warn(`browser_test: skipped: ${skip}`);

/** Headless Chromium with a profile in `dir`. */
function launch(chromium: typeof import("playwright-core").chromium, dir: string) {
  return chromium.launchPersistentContext(join(dir, "profile"), {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS],
    viewport: { width: 1280, height: 900 },
  });
}

function isPng(path: string): boolean {
  const bytes = readFileSync(path);
  return bytes.length > 2000 && bytes.subarray(1, 4).toString("latin1") === "PNG";
}

test(
  "Dashboard in Chromium: live overview, retry a failed task without reload, add a schedule and see it fire",
  {
    skip,
    timeout: 120_000,
  },
  async () => {
    const { chromium } = await import("playwright-core");
    const dir = mkdtempSync(join(tmpdir(), "kvq-browser-"));
    const shots = join(dir, "screenshots");
    const handle = await KvHandle.open({ kv: join(dir, "kv.sqlite3") });
    const queue = await openQueue({ kv: handle });
    const cluster = new Cluster({ kv: handle, tasks: [TASKS], workers: 2, heartbeat: 300 });
    const dashboard = new Dashboard({ kv: handle, liveInterval: 200 });
    let browser: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | null = null;
    try {
      await cluster.start();
      await dashboard.start();
      await dashboard.listen({ hostname: "127.0.0.1", port: 0 });
      const base = dashboard.url!;
      browser = await launch(chromium, dir);
      const page = browser.pages()[0] ?? await browser.newPage();
      const problems: string[] = [];
      page.on("console", (m) => {
        if (m.type() === "error") problems.push(`console: ${m.text()}`);
      });
      page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
      const shot = async (name: string) => {
        const path = join(shots, `${name}.png`);
        await page.screenshot({ path, fullPage: true });
        assert.ok(isPng(path), `${name}.png is a non-empty PNG`);
      };

      // Overview: the live stream connects.
      await page.goto(`${base}/`);
      await page.locator("#live-text", { hasText: "live" }).waitFor();
      assert.equal(await page.locator("svg#chart-rate").count(), 1);
      await shot("overview");

      // A task that fails on its first run.
      const marker = join(dir, "flaky.marker");
      const { id } = await queue.enqueue({ func: "flaky", args: [marker], maxAttempts: 1 });
      assert.equal((await queue.wait(id, { wait: 30_000 })).state, "failed");

      // Find it under Failed, retry it, and watch it succeed without a reload.
      await page.goto(`${base}/tasks?state=failed`);
      await page.locator("#live-text", { hasText: "live" }).waitFor();
      const row = page.locator(`tr[data-task="${id}"]`);
      await row.waitFor();
      assert.match(
        await row.innerText(),
        /first run fails on purpose <script>alert\(1\)<\/script>/,
      );
      await shot("tasks-failed");
      await page.evaluate(() => (globalThis as unknown as { __marker: number }).__marker = 42);
      // The flash shows briefly: watch for it from the click on, then for the live updates.
      const flashed = page.locator("#flash", { hasText: "queued again" }).waitFor();
      await row.locator('button[data-row-action="retry"]').click();
      await flashed;
      await row.waitFor({ state: "detached" });
      await page.locator('[data-count="succeeded"]', { hasText: "1" }).waitFor();
      assert.equal(
        await page.evaluate(() => (globalThis as unknown as { __marker?: number }).__marker),
        42,
        "the page was not reloaded",
      );
      assert.equal((await queue.fetch(id))!.state, "succeeded");

      // The task page, live: its badge reads succeeded and its first error is kept.
      await page.goto(`${base}/tasks/${id}`);
      await page.locator('h1 [data-state="succeeded"]').waitFor();
      assert.match(await page.locator("pre.json").last().innerText(), /second run ok/);
      await shot("task");

      // A schedule made in the form fires, and the list shows its task's outcome live.
      await page.goto(`${base}/schedules`);
      await page.locator("#live-text", { hasText: "live" }).waitFor();
      await page.evaluate(() => (globalThis as unknown as { __marker: number }).__marker = 7);
      const form = page.locator("#schedule-form");
      await form.locator('input[name="name"]').fill("bad");
      await form.locator('input[name="func"]').fill("add");
      // Each type shows its own field only.
      await form.locator('select[name="type"]').selectOption("cron");
      assert.equal(await form.locator('input[name="minutes"]').isVisible(), false);
      assert.equal(await form.locator('input[name="cron"]').isVisible(), true);
      await form.locator('select[name="type"]').selectOption("minutes");
      assert.equal(await form.locator('input[name="cron"]').isVisible(), false);
      await form.locator('input[name="minutes"]').fill("0");
      const before = problems.length;
      await form.locator('button[type="submit"]').click();
      await form.locator("[data-error]", { hasText: "minutes" }).waitFor();
      // Chromium logs the refused form's 422 answer as a failed resource load: expected here.
      problems.splice(before).forEach((p) => assert.match(p, /422 \(Unprocessable Entity\)/));
      await form.locator('input[name="name"]').fill("tick");
      await form.locator('input[name="args"]').fill("[2, 3]");
      await form.locator('select[name="type"]').selectOption("once");
      await form.locator('button[type="submit"]').click();
      const scheduled = page.locator('tr[data-schedule="tick"]');
      await scheduled.waitFor();
      await scheduled.locator('[data-last-task] [data-state="succeeded"]').waitFor({
        timeout: 30_000,
      });
      assert.equal(
        await page.evaluate(() => (globalThis as unknown as { __marker?: number }).__marker),
        7,
        "the page was not reloaded",
      );
      await shot("schedules");

      // The overview's chart draws this minute's attempts as a bar, and a failed task's card
      // stands out.
      await page.goto(`${base}/`);
      await page.locator("svg#chart-rate .bar rect:not([fill=transparent])").first().waitFor();
      const ticks = await page.locator("svg#chart-rate text.tick").evaluateAll((els) =>
        els.map((e) => e.textContent ?? "")
      );
      assert.ok(ticks.some((t) => /^\d\d:\d\d$/.test(t)), `a clock-time axis: ${ticks.join(" ")}`);
      // Over 72 hours: bars of an hour, the axis with weekdays, reached from the range links.
      await page.locator("[data-chart-range] a", { hasText: "72 hours" }).click();
      await page.waitForURL(/range=72h/);
      await page.locator("svg#chart-rate .bar rect:not([fill=transparent])").first().waitFor();
      const wide = await page.locator("svg#chart-rate text.tick").evaluateAll((els) =>
        els.map((e) => e.textContent ?? "")
      );
      assert.ok(
        wide.some((t) => /^(Sun|Mon|Tue|Wed|Thu|Fri|Sat) \d\d:\d\d$/.test(t)),
        `a weekday axis: ${wide.join(" ")}`,
      );
      assert.match(
        await page.locator("h2", { hasText: "Attempts per" }).first().innerText(),
        /per hour/,
      );

      // Queues: an active queue offers Pause, not Resume; and clusters.
      await page.goto(`${base}/queues`);
      await page.locator('tr[data-queue="default"]').waitFor();
      assert.equal(await page.locator('[data-queue-action="pause"]').count(), 1);
      assert.equal(await page.locator('[data-queue-action="resume"]').count(), 0);
      await shot("queues");
      await page.goto(`${base}/clusters`);
      await page.locator(`[data-cluster="${cluster.id}"] tr[data-worker]`).first().waitFor();
      await shot("clusters");
      assert.deepEqual(problems, []);
      await page.goto(`${base}/nope`);
      await page.locator("h1", { hasText: "Not found" }).waitFor();
      await shot("not-found");
    } finally {
      await browser?.close();
      await dashboard.close();
      await cluster.stop({ grace: 0 });
      queue.close();
      handle.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  "Dashboard in Chromium: the search box finds a task by an argument value behind a page's worth of newer ones, streaming as it scans; the charts keep their data over a restart",
  { skip, timeout: 120_000 },
  async () => {
    const { chromium } = await import("playwright-core");
    const dir = mkdtempSync(join(tmpdir(), "kvq-browser-"));
    const handle = await KvHandle.open({ kv: join(dir, "kv.sqlite3") });
    const queue = await openQueue({ kv: handle });
    // The first search page reads one batch (500 tasks), then the page script streams the rest.
    let dashboard = new Dashboard({ kv: handle, liveInterval: 200, searchBudgetMs: 1 });
    let browser: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | null = null;
    try {
      const { id } = await queue.enqueue({ func: "add", args: [{ order: "ORD-77731" }, 1] });
      await queue.enqueueMany(
        Array.from({ length: 1200 }, (_, i) => ({ func: "add", args: [{ order: `ORD-${i}` }, 1] })),
      );
      await runInline(queue.store, { tasks: new Map([["add", () => 0]]), burst: true });
      await dashboard.start();
      await dashboard.listen({ hostname: "127.0.0.1", port: 0 });
      // What the server sends first: no match yet, and the stream to go on with.
      const first = await (await fetch(`${dashboard.url}/tasks?q=ord-77731`)).text();
      assert.match(first, /data-search-stream=/);
      assert.ok(!first.includes(`data-task="${id}"`), "not found within the first batch");

      browser = await launch(chromium, dir);
      const page = browser.pages()[0] ?? await browser.newPage();
      const problems: string[] = [];
      page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
      await page.goto(`${dashboard.url}/tasks`);
      await page.locator("input[data-search]").fill("ord-77731");
      await page.locator("button[data-search-go]").click();
      await page.waitForURL(/q=ord-77731/);
      const row = page.locator(`tr[data-task="${id}"]`);
      await row.waitFor();
      assert.match(await row.innerText(), /ORD-77731/);
      await page.locator("[data-search-pager]", { hasText: "the last match" }).waitFor();
      assert.equal(await page.locator("tbody[data-rows] tr").count(), 1);
      assert.equal(await page.locator("[data-search-progress]").getAttribute("value"), "1201");
      assert.match(await page.locator("[data-search-read]").innerText(), /read 1,201 of ~1,201/);

      // A new dashboard on the same file draws the same minute's bars from the stored history.
      await dashboard.close();
      dashboard = new Dashboard({ kv: handle, liveInterval: 200 });
      await dashboard.start();
      await dashboard.listen({ hostname: "127.0.0.1", port: 0 });
      await page.goto(`${dashboard.url}/`);
      await page.locator("svg#chart-rate .bar rect:not([fill=transparent])").first().waitFor();
      const ended = await page.locator("svg#chart-rate .bar title").evaluateAll((els) =>
        els.map((e) => Number(/(\d+) attempts ended/.exec(e.textContent ?? "")?.[1] ?? 0))
      );
      assert.equal(ended.reduce((a, b) => a + b, 0), 1201, "the bars hold every attempt");
      assert.deepEqual(problems, []);
    } finally {
      await browser?.close();
      await dashboard.close();
      queue.close();
      handle.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
