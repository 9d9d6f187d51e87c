/**
 * The routes and middleware that guard the dashboard: security headers, `/healthz` and
 * `/readyz`, the loopback host check, token sign-in and sign-out, authentication, and the
 * same-origin, read-only and CSRF checks every POST passes.
 *
 * @module
 */
import type { Context, Hono } from "hono";
import { kvAnswers } from "../../store/health.ts";
import { AUTH_COOKIE, cookie, isCrossOrigin, isLoopback } from "../auth.ts";
import { html } from "../html.ts";
import { type Kit, safePath } from "../kit.ts";
import type { AppHost } from "../view.ts";

/** How long `/readyz` waits for KV. */
export const READY_DEADLINE_MS = 2000;

/** Adds these routes to `app`. */
export function addGuardRoutes(app: Hono, d: AppHost, kit: Kit): void {
  const { document, fail, wantsJson } = kit;
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
        kvAnswers(d.stores[0]!).then(() => "ok" as const),
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
}
