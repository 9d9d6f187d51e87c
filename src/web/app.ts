/**
 * The dashboard's routes, as a hono app. Hono is small (no dependencies), runtime-neutral and
 * built on the Fetch API (`Request` in, `Response` out), so the same app runs under
 * `Deno.serve`, `Bun.serve` and, in tests, a direct `app.fetch(request)`.
 *
 * Routes:
 *
 * | route | what |
 * |---|---|
 * | `GET /` | overview |
 * | `GET /queues`, `POST /queues/purge\|pause\|resume\|limits` | queues; purge finished tasks by state; pause, resume; limits |
 * | `GET /tasks`, `GET /tasks/:ref` | task lists by state, or a search (`?q=`); one task (id or human name) |
 * | `GET /search.ndjson?q=…&cursor=…` | a search scan going on, streamed as it reads |
 * | `POST /tasks/:ref/retry\|cancel\|delete`, `POST /tasks/bulk` | task actions |
 * | `GET /schedules`, `GET /schedules/edit`, `POST /schedules`, `POST /schedules/action` | schedules |
 * | `GET /clusters` | clusters and workers |
 * | `GET /events?path=…` | Server-Sent Events: live regions of a page |
 * | `GET /metrics`, `GET /healthz`, `GET /readyz` | Prometheus text; liveness; readiness (KV, host health) |
 * | `GET /login`, `POST /login`, `POST /logout` | token login |
 *
 * Every action is a POST: refused with 403 when cross-origin, when read-only, or without the
 * CSRF token; answered with JSON for the page script (`Accept: application/json`) or a 303
 * redirect for a plain form.
 *
 * @module
 */
import { Hono } from "hono";
import { createKit, matchPage, statusOf } from "./kit.ts";
import { addActionRoutes } from "./routes/actions.ts";
import { addGuardRoutes } from "./routes/guard.ts";
import { addLiveRoutes } from "./routes/live.ts";
import { addSearchRoutes } from "./routes/search.ts";
import type { AppHost } from "./view.ts";

export { safePath } from "./kit.ts";
export { READY_DEADLINE_MS } from "./routes/guard.ts";

/** Builds the app of a started dashboard. */
export function createApp(d: AppHost): Hono {
  const app = new Hono();
  // Every page may name a queue created since the dashboard started.
  app.use(async (_c, next) => {
    await d.refreshQueues();
    await next();
  });
  const kit = createKit(d);
  const { errorPage, fail, render } = kit;
  addGuardRoutes(app, d, kit);
  addActionRoutes(app, d, kit);
  addLiveRoutes(app, d, kit);
  addSearchRoutes(app, d, kit);

  // ── pages ──────────────────────────────────────────────────────────────────────────────
  app.get("*", async (c) => {
    const match = matchPage(c.req.path);
    if (!match) return errorPage(c, 404, "Not found", `There is no page at ${c.req.path}.`);
    return await render(c, match.page, match.params);
  });

  app.notFound((c) => fail(c, 404, `There is nothing at ${c.req.method} ${c.req.path}.`));
  app.onError((error, c) => {
    console.error("kvq dashboard: request failed:", error);
    const status = statusOf(error);
    return fail(
      c,
      status === 422 ? 500 : status,
      status === 404
        ? (error as Error).message
        : "Something went wrong on the server; the details are in its log.",
    );
  });
  return app;
}
