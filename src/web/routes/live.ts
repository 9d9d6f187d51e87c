/**
 * `/metrics` (Prometheus text) and `/events`, the Server-Sent Events that keep a page's regions
 * live: each stream renders its page's regions again on every change pulse (one render shared
 * by every viewer of the page) and sends the ones that changed.
 *
 * @module
 */
import type { Hono } from "hono";
import { runtime } from "../../runtime/mod.ts";
import { coalesce } from "../../runtime/coalesce.ts";
import { countDamaged } from "../../store/damaged.ts";
import { oldestReady } from "../data.ts";
import { type Kit, matchPage, safePath } from "../kit.ts";
import { renderMetrics } from "../metrics.ts";
import { NotFound, type Page, Regions } from "../_page.ts";
import type { AppHost } from "../view.ts";

/** Adds these routes to `app`. */
export function addLiveRoutes(app: Hono, d: AppHost, kit: Kit): void {
  const { contextOf, csrfOf, placeholder } = kit;
  // ── metrics and live events ────────────────────────────────────────────────────────────
  app.get("/metrics", async (c) => {
    const now = d.now();
    const [queues, clusters] = await Promise.all([
      Promise.all(d.stores.map(async (store) => ({
        queue: store.queue,
        counts: await d.queue(store.queue)!.counts(),
        recent: await d.recent(store),
        oldest: await oldestReady(store, now),
        damaged: await countDamaged(store),
      }))),
      d.clusters(),
    ]);
    return c.body(renderMetrics(queues, clusters, now), 200, {
      "content-type": "text/plain; version=0.0.4; charset=utf-8",
    });
  });

  const renderRegions = async (url: URL, match: { page: Page; params: Record<string, string> }) => {
    const regions = new Regions();
    try {
      const out = await match.page(contextOf(url, match.params, regions));
      return { regions: regions.map, chart: out.chart, gone: null };
    } catch (error) {
      if (error instanceof NotFound) {
        return { regions: regions.map, chart: undefined, gone: error.message };
      }
      throw error;
    }
  };

  app.get("/events", (c) => {
    const path = c.req.query("path") ?? "/";
    if (safePath(path) === null) {
      return c.text("path must be a dashboard path such as /tasks\n", 400);
    }
    const url = new URL(path, c.req.url);
    const match = matchPage(url.pathname);
    if (!match) return c.text(`No live page at ${path}\n`, 404);
    const { token } = csrfOf(c);
    const encoder = new TextEncoder();
    const last = new Map<string, string>();
    let lastChart = "";
    let closed = false;
    let controller: ReadableStreamDefaultController<Uint8Array>;
    let off = () => {};
    let untrack = () => {};
    let keepAlive: ReturnType<typeof setInterval> | undefined;
    const end = () => {
      if (closed) return;
      closed = true;
      off();
      untrack();
      clearInterval(keepAlive);
      try {
        controller.close();
      } catch {
        // already closed by the client
      }
    };
    const send = (text: string) => {
      if (closed) return;
      try {
        controller.enqueue(encoder.encode(text));
      } catch {
        end();
      }
    };
    // One render at a time per stream; pulses meanwhile make it render once more after.
    const update = coalesce(async () => {
      if (closed) return;
      try {
        const r = await d.sharedRender(path, () => renderRegions(url, match));
        if (closed) return;
        if (r.gone !== null) {
          send(`event: gone\ndata: ${JSON.stringify({ message: r.gone })}\n\n`);
          end();
          return;
        }
        for (const [id, markup] of r.regions) {
          const filled = markup.replaceAll(placeholder, token);
          if (last.get(id) === filled) continue;
          last.set(id, filled);
          send(`event: region\ndata: ${JSON.stringify({ id, html: filled })}\n\n`);
        }
        if (r.chart !== undefined) {
          const json = JSON.stringify(r.chart);
          if (json !== lastChart) {
            lastChart = json;
            send(`event: chart\ndata: ${json}\n\n`);
          }
        }
      } catch (error) {
        if (!closed) console.error("kvq dashboard: live update failed:", (error as Error).message);
      }
    });
    const stream = new ReadableStream<Uint8Array>({
      start(ctrl) {
        controller = ctrl;
        send("retry: 3000\n: kvq live updates\n\n");
        off = d.onPulse(() => void update());
        untrack = d.trackStream(end);
        keepAlive = setInterval(() => send(": keep-alive\n\n"), 15_000);
        // Deno cancels the body stream when the browser goes away; Bun aborts the request's
        // signal. (On Deno, request.signal also aborts once a response is delivered.)
        if (runtime.name === "bun") {
          c.req.raw.signal?.addEventListener("abort", end, { once: true });
        }
        void update();
      },
      cancel() {
        end();
      },
    });
    return new Response(stream, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        "x-accel-buffering": "no",
      },
    });
  });
}
