/**
 * `/tasks?q=TEXT`: search across every task (see `store/search.ts`). A look-up (an exact id,
 * name, func or group) renders its page at once. A scan renders what it finds within the
 * dashboard's `searchBudgetMs` (700 ms); if the page is not full by then, the page script goes on with
 * the stream at `/search.ndjson`, adding rows as they are found and moving a progress bar, and
 * a link does the same without the script. The page is not live: a search is not run again
 * on every change.
 *
 * @module
 */
import type { SearchPage } from "../../store/search.ts";
import { count } from "../format.ts";
import { type Html, html } from "../html.ts";
import { link, type Page, type PageContext } from "../_page.ts";
import {
  bulkForm,
  filterForm,
  filters,
  PAGE_SIZE,
  stateTabs,
  type TaskFilters,
  taskTable,
} from "./tasks.ts";

/** The parameters a search page's links keep. */
export function searchParams(f: TaskFilters, scan: boolean): Record<string, string> {
  return { q: f.q, state: f.state, ...(scan ? { scan: "1" } : {}) };
}

/** What the search read, as a line and a progress bar. */
export function searchProgress(p: { scanned: number; total: number }, going: boolean): Html {
  return html`<progress data-search-progress value="${p.scanned}" max="${
    Math.max(p.total, p.scanned, 1)
  }"></progress>
<span class="muted small" data-search-read>${going ? "searching… " : ""}read ${
    count(p.scanned)
  } of ~${count(p.total)} tasks</span>`;
}

/**
 * The links under a search page: the next page, or (a scan out of time) going on, which the
 * page script does by itself through `stream`.
 */
export function searchPager(
  ctx: PageContext,
  f: TaskFilters,
  scan: boolean,
  page: Pick<SearchPage, "cursor" | "outOfTime" | "scanned" | "total" | "via">,
): Html {
  const keep = searchParams(f, scan);
  const first = f.cursor ? html`<a href="${link(ctx, "/tasks", keep)}">« first page</a>` : "";
  if (page.cursor === null) {
    return html`
      <div class="actions"
        data-search-pager>${first}<span class="muted small">${page.via === "scan"
          ? html`
            ${searchProgress(page, false)} ·
          `
          : ""}the last match</span></div>
    `;
  }
  const next = link(ctx, "/tasks", { ...keep, cursor: page.cursor });
  if (!page.outOfTime) {
    return html`
      <div class="actions"
        data-search-pager>${first}<a href="${next}" data-next>next page »</a>${page.via === "scan"
          ? searchProgress(page, false)
          : ""}</div>
    `;
  }
  return html`
    <div class="actions"
      data-search-pager>${first}<a href="${next}" data-search-more>go on searching »</a>${searchProgress(
        page,
        true,
      )}</div>
  `;
}

/** `/tasks?q=…` */
export const searchPage: Page = async (ctx) => {
  const f = filters(ctx);
  const scan = ctx.url.searchParams.get("scan") === "1";
  const queue = ctx.dashboard.queue(ctx.store.queue)!;
  let page: SearchPage | null = null;
  let problem: string | null = null;
  const skipped: string[] = [];
  try {
    page = await queue.search(f.q, {
      limit: PAGE_SIZE,
      budgetMs: ctx.dashboard.searchBudgetMs,
      scan,
      onSkip: (e) => skipped.length < 3 && skipped.push(e.message),
      ...(f.state ? { state: f.state } : {}),
      ...(f.cursor ? { cursor: f.cursor } : {}),
    });
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    problem = error.message;
  }
  const counts = await queue.counts();
  const keep = searchParams(f, scan);
  const how = page === null ? "" : page.via === "lookup"
    ? html`
      <p class="muted small"
        data-search-how>Tasks whose ${page.fields.join(" or ")} is “${f
          .q}”, from the look-up. <a href="${link(ctx, "/tasks", {
            ...keep,
            scan: "1",
          })}">Look for the text in args and errors too</a></p>
    `
    : html`
      <p class="muted small"
        data-search-how>Tasks that hold “${f
          .q}” in their id, name, func, group, partition, args or errors, newest first.${skipped
            .length > 0
          ? html`
            <span class="err">Skipped: ${skipped.join(" · ")}${page.skipped > skipped.length
              ? ` (and ${page.skipped - skipped.length} more)`
              : ""}</span>
          `
          : ""}</p>
    `;
  let list: Html;
  if (page === null) list = html`<p class="err" data-search-error>${problem}</p>`;
  else {
    const stream = page.outOfTime
      ? link(ctx, "/search.ndjson", {
        ...keep,
        cursor: page.cursor!,
        want: String(PAGE_SIZE - page.tasks.length),
      })
      : "";
    list = html`<div data-search${
      stream
        ? html`
          data-search-stream="${stream}"
        `
        : ""
    }>
${taskTable(ctx, page.tasks, true)}
<p class="muted" data-empty${
      page.tasks.length > 0
        ? html`
          hidden
        `
        : ""
    }>${page.outOfTime ? "No match yet." : "No task matches."}</p>
${searchPager(ctx, f, scan, page)}
</div>`;
  }
  return {
    title: `Search: ${f.q}`,
    nav: "tasks",
    status: page === null ? 400 : 200,
    live: false,
    body: html`<h1>Search</h1>
${stateTabs(ctx, counts, f, keep)}
${filterForm(ctx, f, "task name")}
${how}
${bulkForm(ctx, f, list)}`,
  };
};
