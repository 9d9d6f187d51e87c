/**
 * What the dashboard's routes share: the page context, the HTML document with its CSP and CSRF
 * token, error pages, and the form and action helpers every POST route uses.
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import type { Context } from "hono";
import { NoSuchScheduleError, ScheduleExistsError } from "../schedule/errors.ts";
import { NoSuchTaskError, TaskStateError } from "../store/errors.ts";
import type { Store } from "../store/store.ts";
import { TaskId } from "../task/task_id.ts";
import type { ActionResult } from "./actions.ts";
import { cookie, CSRF_COOKIE, readCookie } from "./auth.ts";
import { html } from "./html.ts";
import { clustersPage } from "./pages/clusters.ts";
import { overviewPage } from "./pages/overview.ts";
import { queuesPage } from "./pages/queues.ts";
import { scheduleEditPage, schedulesPage } from "./pages/schedules.ts";
import { taskPage } from "./pages/task.ts";
import { searchPage } from "./pages/search.ts";
import { tasksPage } from "./pages/tasks.ts";
import { NotFound, type Page, type PageContext, type PageOutput, Regions, shell } from "./_page.ts";
import type { AppHost } from "./view.ts";

const PAGES: [RegExp, (m: RegExpExecArray) => { page: Page; params: Record<string, string> }][] = [
  [/^\/$/, () => ({ page: overviewPage, params: {} })],
  [/^\/queues$/, () => ({ page: queuesPage, params: {} })],
  [/^\/tasks$/, () => ({ page: tasksOrSearch, params: {} })],
  [/^\/tasks\/([^/]+)$/, (m) => ({ page: taskPage, params: { ref: decode(m[1]!) } })],
  [/^\/schedules$/, () => ({ page: schedulesPage(), params: {} })],
  [/^\/schedules\/edit$/, () => ({ page: scheduleEditPage(), params: {} })],
  [/^\/clusters$/, () => ({ page: clustersPage, params: {} })],
];

/** `/tasks`: the search page when there is search text (`q`), else the list. */
const tasksOrSearch: Page = (ctx) =>
  (ctx.url.searchParams.get("q") ?? "").trim() ? searchPage(ctx) : tasksPage(ctx);

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/** The page at `pathname`, with its route parameters, or null. */
export function matchPage(pathname: string): { page: Page; params: Record<string, string> } | null {
  for (const [re, make] of PAGES) {
    const m = re.exec(pathname);
    if (m) return make(m);
  }
  return null;
}

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

/** The HTTP status for an error a route met. */
export function statusOf(error: unknown): number {
  if (error instanceof NotFound || error instanceof NoSuchTaskError) return 404;
  if (error instanceof NoSuchScheduleError) return 404;
  if (error instanceof TaskStateError || error instanceof ScheduleExistsError) return 409;
  if (error instanceof TypeError || error instanceof RangeError) return 422;
  return 500;
}

/** The helpers of {@linkcode createKit}. */
export type Kit = ReturnType<typeof createKit>;

/** Builds the shared helpers of the routes of dashboard `d`. */
export function createKit(d: AppHost) {
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

  return {
    placeholder,
    storeOf,
    contextOf,
    csrfOf,
    document,
    errorPage,
    render,
    wantsJson,
    respond,
    fail,
    fields,
    one,
    backOf,
    action,
    taskRef,
  };
}
