/**
 * `/metrics` (Prometheus text) and `/events`, the Server-Sent Events that keep a page's regions
 * live: each stream renders its page's regions again on every change pulse (one render shared
 * by every viewer of the page) and sends the ones that changed.
 *
 * @module
 */
import type { Hono } from "hono";
import { coalesce } from "../../runtime/coalesce.ts";
import { countDamaged } from "../../store/damaged.ts";
import { oldestReady } from "../data.ts";
import { type Kit, matchPage, safePath } from "../kit.ts";
import { renderMetrics } from "../metrics.ts";
import { NotFound, type Page, Regions } from "../_page.ts";
import type { AppHost } from "../view.ts";
import { streamResponse, type TextStream } from "../stream.ts";

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
    const last = new Map<string, string>();
    let lastChart = "";
    let stream: TextStream;
    // One render at a time per stream; pulses meanwhile make it render once more after.
    const update = coalesce(async () => {
      if (stream.closed) return;
      try {
        const r = await d.sharedRender(path, () => renderRegions(url, match));
        if (stream.closed) return;
        if (r.gone !== null) {
          stream.send(`event: gone\ndata: ${JSON.stringify({ message: r.gone })}\n\n`);
          stream.end();
          return;
        }
        for (const [id, markup] of r.regions) {
          const filled = markup.replaceAll(placeholder, token);
          if (last.get(id) === filled) continue;
          last.set(id, filled);
          stream.send(`event: region\ndata: ${JSON.stringify({ id, html: filled })}\n\n`);
        }
        if (r.chart !== undefined) {
          const json = JSON.stringify(r.chart);
          if (json !== lastChart) {
            lastChart = json;
            stream.send(`event: chart\ndata: ${json}\n\n`);
          }
        }
      } catch (error) {
        if (!stream.closed) {
          console.error("kvq dashboard: live update failed:", (error as Error).message);
        }
      }
    });
    return streamResponse(c, d, "text/event-stream; charset=utf-8", (s) => {
      stream = s;
      s.send("retry: 3000\n: kvq live updates\n\n");
      const off = d.onPulse(() => void update());
      const keepAlive = setInterval(() => s.send(": keep-alive\n\n"), 15_000);
      void update();
      return () => {
        off();
        clearInterval(keepAlive);
      };
    });
  });
}
