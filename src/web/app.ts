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
 * | `GET /queues`, `POST /queues/purge\|pause\|resume` | queues; purge finished tasks by state; pause, resume |
 * | `GET /tasks`, `GET /tasks/:ref` | task lists by state; one task (id or human name) |
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
import { randomBytes } from "node:crypto";
import { type Context, Hono } from "hono";
import { runtime } from "../runtime/mod.ts";
import { NoSuchScheduleError, ScheduleExistsError } from "../schedule/errors.ts";
import { NoSuchTaskError, TaskStateError } from "../store/errors.ts";
import { TASK_STATES, type TaskState } from "../store/keys.ts";
import type { Store } from "../store/store.ts";
import { TaskId } from "../task/task_id.ts";
import { type ActionResult, bulk, type BulkOp, purge, retryAllFailed } from "./actions.ts";
import { AUTH_COOKIE, cookie, CSRF_COOKIE, isCrossOrigin, isLoopback, readCookie } from "./auth.ts";
import type { AppHost } from "./view.ts";
import { oldestReady } from "./data.ts";
import { html } from "./html.ts";
import { renderMetrics } from "./metrics.ts";
import { clustersPage } from "./pages/clusters.ts";
import { overviewPage } from "./pages/overview.ts";
import { MAX_PAUSE_REASON, queuesPage } from "./pages/queues.ts";
import { inputOf, scheduleEditPage, type ScheduleForm, schedulesPage } from "./pages/schedules.ts";
import { taskPage } from "./pages/task.ts";
import { tasksPage } from "./pages/tasks.ts";
import { NotFound, type Page, type PageContext, type PageOutput, Regions, shell } from "./_page.ts";
import { countDamaged } from "../store/damaged.ts";

/** How long `/readyz` waits for KV. */
export const READY_DEADLINE_MS = 2000;

const PAGES: [RegExp, (m: RegExpExecArray) => { page: Page; params: Record<string, string> }][] = [
  [/^\/$/, () => ({ page: overviewPage, params: {} })],
  [/^\/queues$/, () => ({ page: queuesPage, params: {} })],
  [/^\/tasks$/, () => ({ page: tasksPage, params: {} })],
  [/^\/tasks\/([^/]+)$/, (m) => ({ page: taskPage, params: { ref: decode(m[1]!) } })],
  [/^\/schedules$/, () => ({ page: schedulesPage(), params: {} })],
  [/^\/schedules\/edit$/, () => ({ page: scheduleEditPage(), params: {} })],
  [/^\/clusters$/, () => ({ page: clustersPage, params: {} })],
];

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

function matchPage(pathname: string): { page: Page; params: Record<string, string> } | null {
  for (const [re, make] of PAGES) {
    const m = re.exec(pathname);
    if (m) return make(m);
  }
  return null;
}

/** A same-site path to go back to, or null. */
/**
 * A path of this dashboard to redirect to, or null. Browsers drop tabs and newlines from URLs
 * (`/\t/evil.example` becomes `//evil.example`, another host), so any control character refuses
 * it, and what is left must resolve to this origin.
 */
export function safePath(text: string | null | undefined): string | null {
  if (!text || !text.startsWith("/") || text.startsWith("//") || text.includes("\\")) return null;
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x20\x7f]/.test(text)) return null;
  const base = "http://dashboard.invalid";
  let url: URL;
  try {
    url = new URL(text, base);
  } catch {
    return null;
  }
  return url.origin === base ? text : null;
}

function statusOf(error: unknown): number {
  if (error instanceof NotFound || error instanceof NoSuchTaskError) return 404;
  if (error instanceof NoSuchScheduleError) return 404;
  if (error instanceof TaskStateError || error instanceof ScheduleExistsError) return 409;
  if (error instanceof TypeError || error instanceof RangeError) return 422;
  return 500;
}

/** Builds the app of a started dashboard. */
export function createApp(d: AppHost): Hono {
  const app = new Hono();
  // Every page may name a queue created since the dashboard started.
  app.use(async (_c, next) => {
    await d.refreshQueues();
    await next();
  });
  // The CSRF field is rendered as this placeholder and filled in per browser when sent, so one
  // render can be shared by every viewer of a page.
  const placeholder = `kvq-csrf-${randomBytes(12).toString("hex")}`;

  const storeOf = (url: URL): Store => {
    const name = url.searchParams.get("queue");
    if (name === null || name === "") return d.stores[0]!;
    const store = d.stores.find((s) => s.queue === name);
    if (!store) {
      throw new NotFound(`This dashboard does not serve a queue ${JSON.stringify(name)}.`);
    }
    return store;
  };

  const contextOf = (url: URL, params: Record<string, string>, regions: Regions): PageContext => ({
    dashboard: d,
    url,
    params,
    store: storeOf(url),
    regions,
    csrf: placeholder,
    readOnly: d.readOnly,
    now: d.now(),
  });

  /** The browser's CSRF nonce, and a Set-Cookie when it had none. */
  const csrfOf = (c: Context): { token: string; setCookie: string | null } => {
    const nonce = readCookie(c.req.header("cookie") ?? null, CSRF_COOKIE);
    if (nonce !== null && /^[A-Za-z0-9_-]{16,64}$/.test(nonce)) {
      return { token: d.guard.csrfToken(nonce), setCookie: null };
    }
    const fresh = d.guard.newNonce();
    return { token: d.guard.csrfToken(fresh), setCookie: cookie(CSRF_COOKIE, fresh) };
  };

  const document = (
    c: Context,
    ctx: PageContext | null,
    out: PageOutput,
  ): Response => {
    const nonce = randomBytes(16).toString("base64");
    const { token, setCookie } = csrfOf(c);
    const body = shell(ctx, out, { nonce, csrf: token, auth: d.guard.required }).value
      .replaceAll(placeholder, token);
    const headers = new Headers({
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "content-security-policy":
        `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
    });
    if (setCookie) headers.append("set-cookie", setCookie);
    return new Response(body, { status: out.status ?? 200, headers });
  };

  const errorPage = (c: Context, status: number, title: string, message: string): Response =>
    document(c, null, {
      title,
      nav: "none",
      status,
      live: false,
      body: html`
        <h1>${title}</h1>
        <div class="panel">
          <p>${message}</p>
          <p><a href="/">Back to the overview</a></p>
        </div>
      `,
    });

  const render = async (c: Context, page: Page, params: Record<string, string>) => {
    const url = new URL(c.req.url);
    try {
      const ctx = contextOf(url, params, new Regions());
      return document(c, ctx, await page(ctx));
    } catch (error) {
      if (error instanceof NotFound) return errorPage(c, 404, "Not found", error.message);
      throw error;
    }
  };

  const wantsJson = (c: Context) => (c.req.header("accept") ?? "").includes("application/json");

  const respond = (c: Context, result: ActionResult, back: string | null): Response => {
    if (wantsJson(c)) return c.json({ ok: true, ...result });
    return c.redirect(result.location ?? back ?? "/", 303);
  };

  const fail = (c: Context, status: number, message: string): Response => {
    if (wantsJson(c) || c.req.method !== "GET" && c.req.header("x-csrf-token")) {
      return c.json({ ok: false, error: message }, status as 400);
    }
    return errorPage(
      c,
      status,
      status === 404 ? "Not found" : status === 403 ? "Refused" : "That did not work",
      message,
    );
  };

  // ── headers, health, host check ────────────────────────────────────────────────────────
  app.use("*", async (c, next) => {
    await next();
    c.res.headers.set("x-content-type-options", "nosniff");
    c.res.headers.set("x-frame-options", "DENY");
    c.res.headers.set("referrer-policy", "same-origin");
  });

  app.get("/healthz", (c) => c.text("ok\n"));
  app.get("/readyz", async (c) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const outcome = await Promise.race([
        d.handle.kv.get(d.stores[0]!.keys.signal).then(() => "ok" as const),
        new Promise<"timeout">((resolve) =>
          timer = setTimeout(() => resolve("timeout"), READY_DEADLINE_MS)
        ),
      ]);
      if (outcome === "timeout") {
        return c.text(`not ready: KV did not answer within ${READY_DEADLINE_MS} ms\n`, 503);
      }
      // A KV read can succeed while the host's writes fail (a cluster whose commits are refused).
      const health = d.health();
      if (!health.ok) return c.text(`not ready: ${health.reason}\n`, 503);
      return c.text("ready\n");
    } catch (error) {
      return c.text(`not ready: KV is not reachable: ${(error as Error).message}\n`, 503);
    } finally {
      clearTimeout(timer);
    }
  });

  // Without a token the dashboard trusts loopback alone; a page on another site whose name
  // resolves to 127.0.0.1 (DNS rebinding) must not be let in, so the Host must be loopback too.
  app.use("*", async (c, next) => {
    if (!d.guard.required) {
      const host = c.req.header("host") ?? new URL(c.req.url).host;
      const name = host.replace(/:\d+$/, "");
      if (!isLoopback(name)) {
        return c.text(
          `Host ${host} is not allowed: without a token the dashboard answers only to 127.0.0.1 or localhost. Start it with --token to serve other names.\n`,
          403,
        );
      }
    }
    await next();
  });

  // ── login ──────────────────────────────────────────────────────────────────────────────
  const loginPage = (c: Context, status: number, error: string | null) => {
    const next = safePath(c.req.query("next")) ?? "/";
    return document(c, null, {
      title: "Sign in",
      nav: "none",
      status,
      live: false,
      body: html`
        <div class="login panel">
          <h1>kvq dashboard</h1>
          <form method="post" action="/login">
            <input type="hidden" name="next" value="${next}">
            <label>token<input type="password" name="token" autocomplete="current-password" required autofocus></label>
            <div class="form-error" role="alert">${error ?? ""}</div>
            <div class="actions"><button type="submit" class="primary">Sign in</button></div>
          </form>
          <p
            class="note">The token is the one the dashboard was started with (--token or KVQ_DASHBOARD_TOKEN).</p>
        </div>
      `,
    });
  };
  app.get("/login", (c) => d.guard.required ? loginPage(c, 200, null) : c.redirect("/", 303));
  app.post("/login", async (c) => {
    if (isCrossOrigin(c.req.raw)) return fail(c, 403, "Cross-origin sign-in refused.");
    if (!d.guard.required) return c.redirect("/", 303);
    const form = await c.req.parseBody();
    const token = typeof form.token === "string" ? form.token : "";
    if (!d.guard.checkToken(token)) return loginPage(c, 401, "Wrong token.");
    const next = safePath(typeof form.next === "string" ? form.next : null) ?? "/";
    c.header("set-cookie", cookie(AUTH_COOKIE, d.guard.sessionValue()));
    return c.redirect(next, 303);
  });

  // ── authentication ─────────────────────────────────────────────────────────────────────
  app.use("*", async (c, next) => {
    const auth = d.guard.authenticate(c.req.raw);
    if (auth === "denied") {
      const page = c.req.method === "GET" && !wantsJson(c) &&
        !["/events", "/metrics"].includes(c.req.path);
      if (page) {
        return c.redirect(
          `/login?next=${encodeURIComponent(c.req.path + new URL(c.req.url).search)}`,
          303,
        );
      }
      c.header("www-authenticate", 'Bearer realm="kvq"');
      return wantsJson(c)
        ? c.json({ ok: false, error: "Sign in: pass the dashboard token as a Bearer token." }, 401)
        : c.text(
          "Unauthorized: pass the dashboard token (Authorization: Bearer …) or sign in at /login.\n",
          401,
        );
    }
    c.set("auth" as never, auth as never);
    await next();
  });

  // ── every POST: same origin, not read-only, CSRF token ─────────────────────────────────
  app.use("*", async (c, next) => {
    if (c.req.method !== "POST") return await next();
    if (isCrossOrigin(c.req.raw)) {
      return fail(
        c,
        403,
        "Cross-origin request refused: actions must come from the dashboard's own pages.",
      );
    }
    if (d.readOnly && c.req.path !== "/logout") {
      return fail(c, 403, "The dashboard is read-only: actions are disabled (--read-only).");
    }
    const bearer = d.guard.authenticate(c.req.raw) === "bearer";
    if (!bearer) {
      let token = c.req.header("x-csrf-token") ?? null;
      if (token === null) {
        const form = await c.req.parseBody({ all: true });
        token = typeof form._csrf === "string" ? form._csrf : null;
      }
      if (!d.guard.checkCsrf(c.req.raw, token)) {
        return fail(
          c,
          403,
          "Missing or wrong CSRF token: reload the page and try again.",
        );
      }
    }
    await next();
  });

  app.post("/logout", (c) => {
    c.header("set-cookie", cookie(AUTH_COOKIE, "", { maxAge: 0 }));
    return c.redirect(d.guard.required ? "/login" : "/", 303);
  });

  // ── actions ────────────────────────────────────────────────────────────────────────────
  const fields = async (c: Context): Promise<Record<string, string | string[]>> => {
    const form = await c.req.parseBody({ all: true });
    const out: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(form)) {
      if (typeof v === "string") out[k] = v;
      else if (Array.isArray(v)) out[k] = v.filter((x): x is string => typeof x === "string");
    }
    return out;
  };
  const one = (v: string | string[] | undefined): string => Array.isArray(v) ? v[0] ?? "" : v ?? "";
  const backOf = (c: Context, form: Record<string, string | string[]>) => {
    const ret = safePath(one(form.return));
    if (ret) return ret;
    const referer = c.req.header("referer");
    if (referer) {
      try {
        const u = new URL(referer);
        if (u.host === new URL(c.req.url).host) return u.pathname + u.search;
      } catch {
        // no usable referer
      }
    }
    return null;
  };

  const action = (
    run: (
      c: Context,
      form: Record<string, string | string[]>,
      store: Store,
    ) => Promise<ActionResult>,
  ) =>
  async (c: Context) => {
    const form = await fields(c);
    try {
      const store = storeOf(new URL(c.req.url));
      return respond(c, await run(c, form, store), backOf(c, form));
    } catch (error) {
      const status = statusOf(error);
      if (status === 500) console.error("kvq dashboard: action failed:", error);
      return fail(c, status, (error as Error).message);
    }
  };

  const taskRef = (c: Context): string => {
    const ref = c.req.param("ref") ?? "";
    if (!TaskId.isId(ref) && !TaskId.isHumanName(ref)) {
      throw new NotFound(`${JSON.stringify(ref)} is neither a task id nor a human task name.`);
    }
    return ref;
  };

  app.post(
    "/tasks/bulk",
    action(async (_c, form, store) => {
      const queue = d.queue(store.queue)!;
      if (one(form.all) === "failed") return await retryAllFailed(queue);
      const op = one(form.op);
      if (op !== "retry" && op !== "cancel" && op !== "delete") {
        throw new RangeError(
          `Bulk action must be retry, cancel or delete: received ${JSON.stringify(op)}`,
        );
      }
      const ids = ([] as string[]).concat(form.id ?? []);
      return await bulk(queue, op as BulkOp, ids);
    }),
  );
  app.post(
    "/tasks/:ref/retry",
    action(async (c, _form, store) => {
      const r = await d.queue(store.queue)!.retry(taskRef(c));
      return { message: `Task ${r.name} is queued again.` };
    }),
  );
  app.post(
    "/tasks/:ref/cancel",
    action(async (c, _form, store) => {
      const outcome = await d.queue(store.queue)!.cancel(taskRef(c));
      return {
        message: outcome === "cancelled"
          ? "Task cancelled."
          : "Cancel requested: the cluster running it will stop it.",
      };
    }),
  );
  app.post(
    "/tasks/:ref/delete",
    action(async (c, form, store) => {
      const ref = taskRef(c);
      await d.queue(store.queue)!.delete(ref);
      const back = backOf(c, form);
      // Deleting the task being viewed: go to the list instead of a page that no longer exists.
      const onDetail = back !== null && /^\/tasks\/[^/?]+/.test(back);
      return {
        message: "Task deleted.",
        ...(onDetail || back === null ? { location: "/tasks" } : {}),
      };
    }),
  );
  app.post(
    "/queues/purge",
    action(async (_c, form, store) => {
      const state = one(form.state) as TaskState;
      if (!TASK_STATES.includes(state)) {
        throw new RangeError(`Purge needs a task state: received ${JSON.stringify(state)}`);
      }
      return await purge(store, state);
    }),
  );
  app.post(
    "/queues/pause",
    action(async (_c, form, store) => {
      const reason = one(form.reason).trim();
      if (reason.length > MAX_PAUSE_REASON) {
        throw new RangeError(
          `Pause reason must be at most ${MAX_PAUSE_REASON} characters: received ${reason.length}`,
        );
      }
      await d.queue(store.queue)!.pause(reason === "" ? undefined : reason);
      return {
        message: `Paused queue ${store.queue}: clusters finish what runs and claim nothing more.`,
      };
    }),
  );
  app.post(
    "/queues/resume",
    action(async (_c, _form, store) => {
      const queue = d.queue(store.queue)!;
      if ((await queue.paused()) === null) {
        return { message: `Queue ${store.queue} was not paused.` };
      }
      await queue.resume();
      return { message: `Resumed queue ${store.queue}.` };
    }),
  );

  const scheduleValues = (form: Record<string, string | string[]>): ScheduleForm => {
    const out: ScheduleForm = {};
    for (const [k, v] of Object.entries(form)) if (k !== "_csrf") out[k] = one(v);
    return out;
  };
  app.post("/schedules", async (c) => {
    const form = await fields(c);
    const values = scheduleValues(form);
    const replace = values.replace === "on";
    try {
      const store = storeOf(new URL(c.req.url));
      const input = inputOf(values);
      const { name, func, args, ...options } = input;
      const record = await d.schedules(store.queue)!.add(name, func, args ?? [], {
        ...options,
        ...(replace ? { replace: true } : {}),
      });
      const location = `/schedules${
        d.stores.length > 1 ? `?queue=${encodeURIComponent(store.queue)}` : ""
      }`;
      return respond(c, {
        message: `${replace ? "Saved" : "Added"} schedule ${record.name}.`,
        ...(replace ? { location } : {}),
      }, location);
    } catch (error) {
      const status = statusOf(error);
      if (status === 500) console.error("kvq dashboard: schedule add failed:", error);
      const message = (error as Error).message;
      if (wantsJson(c)) return c.json({ ok: false, error: message }, status as 400);
      const page = replace
        ? scheduleEditPage({ values, error: message })
        : schedulesPage({ values, error: message });
      const res = await render(c, page, {});
      return new Response(res.body, { status: status === 500 ? 500 : 422, headers: res.headers });
    }
  });
  app.post(
    "/schedules/action",
    action(async (_c, form, store) => {
      const name = one(form.name);
      const op = one(form.op);
      const s = d.schedules(store.queue)!;
      switch (op) {
        case "pause":
          await s.pause(name);
          return { message: `Paused schedule ${name}.` };
        case "resume":
          await s.resume(name);
          return { message: `Resumed schedule ${name}.` };
        case "run": {
          const task = await s.runNow(name);
          return { message: `Schedule ${name} enqueued task ${task.name}.` };
        }
        case "delete":
          if (!(await s.delete(name))) throw new NoSuchScheduleError(name, store.queue);
          return { message: `Deleted schedule ${name}.` };
        default:
          throw new RangeError(
            `Schedule action must be pause, resume, run or delete: received ${JSON.stringify(op)}`,
          );
      }
    }),
  );

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
    let busy = false;
    let again = false;
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
    const update = async () => {
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      try {
        do {
          again = false;
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
        } while (again && !closed);
      } catch (error) {
        if (!closed) console.error("kvq dashboard: live update failed:", (error as Error).message);
      } finally {
        busy = false;
      }
    };
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
