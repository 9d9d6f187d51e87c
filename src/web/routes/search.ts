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
import { runtime } from "../../runtime/mod.ts";
import type { SearchPage } from "../../store/search.ts";
import type { Kit } from "../kit.ts";
import { searchPager } from "../pages/search.ts";
import { filters, PAGE_SIZE, taskRow } from "../pages/tasks.ts";
import { Regions } from "../_page.ts";
import type { AppHost } from "../view.ts";

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
    const encoder = new TextEncoder();
    const stop = new AbortController();
    let closed = false;
    let controller: ReadableStreamDefaultController<Uint8Array>;
    const send = (value: unknown) => {
      if (closed) return;
      try {
        controller.enqueue(encoder.encode(`${JSON.stringify(value)}\n`));
      } catch {
        end();
      }
    };
    const end = () => {
      if (closed) return;
      closed = true;
      stop.abort();
      untrack();
      try {
        controller.close();
      } catch {
        // the browser went away first
      }
    };
    let untrack = () => {};
    const run = async () => {
      let skipped = 0;
      try {
        const page: SearchPage = await queue.search(f.q, {
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
        send({
          end: {
            pager: pager.value,
            matched: page.tasks.length,
            skipped,
            scanned: page.scanned,
            total: page.total,
          },
        });
      } catch (error) {
        send({ error: (error as Error).message });
      } finally {
        end();
      }
    };
    const stream = new ReadableStream<Uint8Array>({
      start(ctrl) {
        controller = ctrl;
        untrack = d.trackStream(end);
        // Deno cancels the body when the browser goes away; Bun aborts the request's signal.
        if (runtime.name === "bun") {
          c.req.raw.signal?.addEventListener("abort", end, { once: true });
        }
        void run();
      },
      cancel() {
        end();
      },
    });
    return new Response(stream, {
      headers: {
        "content-type": "application/x-ndjson; charset=utf-8",
        "cache-control": "no-store",
        "x-accel-buffering": "no",
      },
    });
  });
}
