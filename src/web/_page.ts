/**
 * What a page gets and returns, the live regions it marks, and the shell every page shares.
 *
 * A page is one async function of a {@linkcode PageContext}. It marks the parts that change
 * with {@linkcode Regions.wrap}; the same function renders the whole page on a GET and, for the
 * page's event stream, the regions again whenever KV changes, so the live view and the first
 * paint can never disagree.
 *
 * @module
 */
import type { Store } from "../store/store.ts";
import type { PageView } from "./view.ts";
import { type Html, html, unsafeRaw } from "./html.ts";
import { CLIENT_SCRIPT } from "./_client.ts";
import { STYLE } from "./_style.ts";

/** The sections of the top navigation. */
export type NavKey = "overview" | "queues" | "tasks" | "schedules" | "clusters" | "none";

/** Collects the live regions of one render. */
export class Regions {
  /** Region id → markup. */
  readonly map: Map<string, string> = new Map();

  /** Marks `content` as the live region `id`. */
  wrap(id: string, content: Html): Html {
    this.map.set(id, content.value);
    return html`<div data-region="${id}">${content}</div>`;
  }
}

/** What a page renders from. */
export interface PageContext {
  /** What pages read of the dashboard (its queues, caches). */
  readonly dashboard: PageView;
  /** The page's URL. */
  readonly url: URL;
  /** Route parameters. */
  readonly params: Readonly<Record<string, string>>;
  /** The queue picked by `?queue=` (else the first served one). */
  readonly store: Store;
  /** The live regions of this render. */
  readonly regions: Regions;
  /** The CSRF field value (a placeholder, filled in per browser when sent). */
  readonly csrf: string;
  /** Whether actions are hidden. */
  readonly readOnly: boolean;
  /** Now, in epoch ms. */
  readonly now: number;
}

/** What a page returns. */
export interface PageOutput {
  /** The document title. */
  title: string;
  /** The active navigation item. */
  nav: NavKey;
  /** The main content. */
  body: Html;
  /** The HTTP status. @default 200 */
  status?: number;
  /** Data for the overview's chart, streamed as `chart` events. */
  chart?: unknown;
  /** Whether the page streams live updates. @default true */
  live?: boolean;
}

/** A page. */
export type Page = (ctx: PageContext) => Promise<PageOutput>;

/** Thrown by a page for a missing task, schedule or queue: rendered as a 404 page. */
export class NotFound extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NotFound";
  }
}

/** A link within the dashboard that keeps the selected queue. */
export function link(ctx: PageContext, path: string, params: Record<string, string> = {}): string {
  const q = new URLSearchParams();
  if (ctx.dashboard.stores.length > 1 || ctx.store.queue !== ctx.dashboard.stores[0]!.queue) {
    q.set("queue", ctx.store.queue);
  }
  for (const [k, v] of Object.entries(params)) if (v !== "") q.set(k, v);
  const qs = q.toString();
  return qs ? `${path}?${qs}` : path;
}

/** The hidden CSRF field of an action form. */
export function csrfField(ctx: PageContext): Html {
  return html`<input type="hidden" name="_csrf" value="${ctx.csrf}">`;
}

const NAV: [NavKey, string, string][] = [
  ["overview", "/", "Overview"],
  ["queues", "/queues", "Queues"],
  ["tasks", "/tasks", "Tasks"],
  ["schedules", "/schedules", "Schedules"],
  ["clusters", "/clusters", "Clusters"],
];

/** Renders the whole document around a page's output. */
export function shell(
  ctx: PageContext | null,
  out: PageOutput,
  options: { nonce: string; csrf: string; auth: boolean },
): Html {
  const live = ctx !== null && out.live !== false;
  const queues = ctx?.dashboard.stores ?? [];
  const queuePicker = ctx && queues.length > 1
    ? html`<span>queue: ${
      queues.map((s) =>
        s.queue === ctx.store.queue
          ? html`
            <strong>${s.queue}</strong>
          `
          : html`
            <a href="${ctx.url.pathname}?queue=${encodeURIComponent(s.queue)}">${s.queue}</a>
          `
      )
    }</span>`
    : ctx
    ? html`<span>queue <strong>${ctx.store.queue}</strong></span>`
    : "";
  return html`
    <!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="csrf" content="${options.csrf}">
        <meta name="referrer" content="same-origin">
        <link rel="icon" href="data:,">
        <title>${out.title} · kvq</title>
        <style nonce="${options.nonce}">${unsafeRaw(STYLE)}</style>
      </head>
      <body${live ? unsafeRaw(" data-live") : ""}>
        <header class="top">
          <a class="brand" href="${ctx ? link(ctx, "/") : "/"}">kvq</a>
          <nav>${ctx
            ? NAV.map(([key, path, label]) =>
              html`<a href="${link(ctx, path)}" class="${
                key === out.nav ? "active" : ""
              }">${label}</a>`
            )
            : ""}</nav>
          <div class="right">
        ${queuePicker}
        ${ctx?.readOnly ? html`<span class="badge warn">read-only</span>` : ""}
        ${live
          ? html`<span><span id="live-dot" class="live-dot"></span><span id="live-text">connecting</span></span>`
          : ""}
        ${options.auth && ctx
          ? html`
            <form class="inline" method="post"
              action="/logout"><input type="hidden" name="_csrf" value="${options
                .csrf}"><button type="submit">Sign out</button></form>
          `
          : ""}
      </div>
        </header>
        <main>
    ${out.body}
        </main>
        <div id="flash" role="status" aria-live="polite"></div>
        <script nonce="${options.nonce}">${unsafeRaw(CLIENT_SCRIPT)}</script>
        </body>
        </html>
  `;
}
