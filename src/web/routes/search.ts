/**
 * `GET /search.ndjson?q=…&cursor=…&want=N`: a scan that goes on where a search page stopped,
 * streamed as one JSON object a line while it reads:
 *
 * - `{"row": "<tr>…"}` for each match, as found;
 * - `{"progress": {"scanned", "total", "matched"}}` after each batch read;
 * - `{"end": {"pager": "<div>…", "matched", "skipped", "scanned", "total"}}` last, with the
 *   links that follow the rows, or `{"error": "…"}`.
 *
 * It stops after `want` matches, after {@linkcode STREAM_BUDGET_MS}, or when the browser goes
 * away. It only reads, so a long scan never holds up the clusters.
 *
 * @module
 */
import type { Hono } from "hono";
import type { Kit } from "../kit.ts";
import { searchPager } from "../pages/search.ts";
import { filters, PAGE_SIZE, taskRow } from "../pages/tasks.ts";
import { Regions } from "../_page.ts";
import type { AppHost } from "../view.ts";
import { streamResponse } from "../stream.ts";

/** How long one stream may scan, in ms. */
export const STREAM_BUDGET_MS = 30_000;

/** Adds the route to `app`. */
export function addSearchRoutes(app: Hono, d: AppHost, kit: Kit): void {
  app.get("/search.ndjson", (c) => {
    const url = new URL(c.req.url);
    const ctx = kit.contextOf(url, {}, new Regions());
    const f = filters(ctx);
    const scan = url.searchParams.get("scan") === "1";
    const want = Math.max(
      1,
      Math.min(PAGE_SIZE, Number(url.searchParams.get("want")) || PAGE_SIZE),
    );
    const queue = d.queue(ctx.store.queue)!;
    const stop = new AbortController();
    return streamResponse(c, d, "application/x-ndjson; charset=utf-8", (stream) => {
      const send = (value: unknown) => stream.send(`${JSON.stringify(value)}\n`);
      void (async () => {
        let skipped = 0;
        try {
          const page = await queue.search(f.q, {
            limit: want,
            budgetMs: STREAM_BUDGET_MS,
            scan,
            signal: stop.signal,
            onMatch: (r) => send({ row: taskRow(ctx, r).value }),
            onProgress: (p) => send({ progress: p }),
            onSkip: () => skipped++,
            ...(f.state ? { state: f.state } : {}),
            ...(f.cursor ? { cursor: f.cursor } : {}),
          });
          // The pager's "first page" link shows: this page did not start at the first task.
          const pager = searchPager(ctx, { ...f, cursor: f.cursor || "-" }, scan, page);
          const { scanned, total } = page;
          const matched = page.tasks.length;
          send({ end: { pager: pager.value, matched, skipped, scanned, total } });
        } catch (error) {
          send({ error: (error as Error).message });
        } finally {
          stream.end();
        }
      })();
      // The browser went away, or the dashboard closes: the scan stops at its next batch.
      return () => stop.abort();
    });
  });
}
