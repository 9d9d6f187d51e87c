/**
 * Tasks: one view per state, filters on function and group, paging by KV cursor, and bulk
 * actions; the pieces the search page (`search.ts`) shares.
 *
 * @module
 */
import type { StateCounts } from "../../store/counters.ts";
import { TASK_STATES, type TaskState } from "../../store/keys.ts";
import { MAX_SEARCH_CHARS } from "../../store/search.ts";
import type { TaskRecord } from "../../task/record.ts";
import { count, duration, firstLine, shortJson, stateBadge, time } from "../format.ts";
import { type Html, html } from "../html.ts";
import { csrfField, link, NotFound, type Page, type PageContext } from "../_page.ts";

/** Tasks per page. */
export const PAGE_SIZE = 50;

export function filters(ctx: PageContext) {
  const p = ctx.url.searchParams;
  const state = p.get("state") ?? "";
  if (state !== "" && !TASK_STATES.includes(state as TaskState)) {
    throw new NotFound(`There is no task state ${JSON.stringify(state)}.`);
  }
  return {
    state: state as TaskState | "",
    func: (p.get("func") ?? "").trim(),
    group: (p.get("group") ?? "").trim(),
    q: (p.get("q") ?? "").trim(),
    cursor: p.get("cursor") ?? "",
  };
}

/**
 * Attempts made, and of how many when the task says (otherwise its cluster's default applies):
 * `0 of 3` before the first start, `2 of 3`, or `2`.
 */
export function attempts(r: TaskRecord): string {
  return r.maxAttempts ? `${r.attempt} of ${r.maxAttempts}` : String(r.attempt);
}

/** What a task's time means in its state: due, waiting, running for, or ran for. */
export function timing(r: TaskRecord, now: number): Html | string {
  if (r.startedAt !== null && r.stoppedAt !== null) {
    return `ran ${duration(r.stoppedAt - r.startedAt)}`;
  }
  if (r.startedAt !== null) return `running ${duration(now - r.startedAt)}`;
  if (r.state === "scheduled") return html`due ${time(r.runAt)}`;
  if (r.state === "queued") return `waiting ${duration(Math.max(0, now - r.runAt))}`;
  return "";
}

/** The table of `rows`, with their row actions unless read-only (rows: {@linkcode taskRow}). */
export function taskTable(ctx: PageContext, rows: readonly TaskRecord[], errors: boolean): Html {
  const showActions = !ctx.readOnly;
  return html`
    <table>
      <thead>
        <tr>${showActions
          ? html`<th><input type="checkbox" data-select-all aria-label="select all"></th>`
          : ""}<th>task</th><th>state</th><th>func</th><th class="wide">args</th><th>group</th><th>attempts</th><th>enqueued</th><th>timing</th><th>${errors
          ? "error"
          : ""}</th>${showActions ? html`<th></th>` : ""}</tr>
      </thead>
      <tbody data-rows>${rows.map((r) => taskRow(ctx, r))}</tbody>
    </table>
  `;
}

/** One task's row of {@linkcode taskTable}. */
export function taskRow(ctx: PageContext, r: TaskRecord): Html {
  const showActions = !ctx.readOnly;
  return html`<tr data-task="${r.id}">${
    showActions
      ? html`<td><input type="checkbox" name="id" value="${r.id}" aria-label="select ${r.name}"></td>`
      : ""
  }
<td class="nowrap"><a href="${
    link(ctx, `/tasks/${r.id}`)
  }">${r.name}</a><div class="mono small muted">${r.id.slice(0, 13)}…</div></td>
<td>${stateBadge(r.state)}</td><td class="mono">${r.func}</td>
<td class="mono small wide">${
    r.args === null ? html`<span class="muted">(stored in chunks)</span>` : shortJson(r.args)
  }</td>
<td>${r.group ?? ""}</td><td class="nowrap">${attempts(r)}</td>
<td class="nowrap">${time(r.enqueuedAt)}</td>
<td class="nowrap">${timing(r, ctx.now)}</td>
<td class="err small">${
    r.state === "failed" && r.error ? `${r.error.name}: ${firstLine(r.error.message, 90)}` : ""
  }</td>
${
    showActions
      ? html`<td>${
        r.finished
          ? html`<button type="submit" formaction="${
            link(ctx, `/tasks/${r.id}/retry`)
          }" data-row-action="retry">Retry</button>`
          : html`<button type="submit" formaction="${
            link(ctx, `/tasks/${r.id}/cancel`)
          }" data-row-action="cancel">Cancel</button>`
      }</td>`
      : ""
  }</tr>`;
}

/** The filters of a tasks page, from its URL. */
export type TaskFilters = ReturnType<typeof filters>;

/** The state tabs with their counts; `keep` are the other parameters each tab keeps. */
export function stateTabs(
  ctx: PageContext,
  counts: StateCounts,
  f: TaskFilters,
  keep: Record<string, string>,
): Html {
  const total = TASK_STATES.reduce((n, s) => n + counts[s], 0);
  return html`<div class="tabs">${
    [["", "all", total] as const, ...TASK_STATES.map((s) => [s, s, counts[s]] as const)].map((
      [value, label, n],
    ) =>
      html`
        <a href="${link(ctx, "/tasks", { ...keep, state: value })}" class="${value === f.state
          ? "active"
          : ""}"
          data-tab="${label}">${label}<span class="n" data-count="${label}">${count(n)}</span></a>
      `
    )
  }</div>`;
}

/** The filter and search form. */
export function filterForm(ctx: PageContext, f: TaskFilters, funcHint: string): Html {
  return html`<form method="get" action="/tasks" class="filters">
  ${
    ctx.dashboard.stores.length > 1
      ? html`<input type="hidden" name="queue" value="${ctx.store.queue}">`
      : ""
  }
  ${f.state ? html`<input type="hidden" name="state" value="${f.state}">` : ""}
  <label>function<input name="func" value="${f.func}" placeholder="${funcHint}"></label>
  <label>group<input name="group" value="${f.group}"></label>
  <button type="submit">Filter</button>
  <label>search every task (id, name, func, group, partition, args, errors)<input type="search" name="q" value="${f.q}" size="30" maxlength="${MAX_SEARCH_CHARS}" data-search></label>
  <button type="submit" data-search-go>Search</button>
  ${
    f.func || f.group || f.q
      ? html`<a href="${link(ctx, "/tasks", { state: f.state })}">clear</a>`
      : ""
  }
</form>`;
}

/** The bulk action buttons, and the form around `list` that they submit. */
export function bulkForm(ctx: PageContext, f: TaskFilters, list: Html): Html {
  if (ctx.readOnly) return html`<div class="panel">${list}</div>`;
  return html`<form method="post" action="${link(ctx, "/tasks/bulk")}" data-js id="bulk">
${csrfField(ctx)}
<input type="hidden" name="return" value="${ctx.url.pathname}${ctx.url.search}">
<div class="actions">
<button type="submit" name="op" value="retry" data-needs-selection>Retry selected</button>
<button type="submit" name="op" value="cancel" data-needs-selection>Cancel selected</button>
<button type="submit" name="op" value="delete" class="danger" data-needs-selection data-confirm="Delete the selected tasks? This cannot be undone.">Delete selected</button>
${
    f.state === "failed" && !f.q
      ? html`<button type="submit" name="all" value="failed" data-all-failed>Retry all failed</button>`
      : ""
  }
</div>
<div class="panel">${list}</div>
</form>`;
}

/** `/tasks` without a search: one page of a state's (or every) task, by KV cursor. */
export const tasksPage: Page = async (ctx) => {
  const f = filters(ctx);
  const queue = ctx.dashboard.queue(ctx.store.queue)!;
  const [counts, page] = await Promise.all([
    queue.counts(),
    queue.tasks({
      limit: PAGE_SIZE,
      ...(f.state ? { state: f.state } : {}),
      ...(f.func ? { func: f.func } : {}),
      ...(f.group ? { group: f.group } : {}),
      ...(f.cursor ? { cursor: f.cursor } : {}),
    }).catch((error) => {
      if (f.cursor) {
        throw new NotFound(`That page cursor is not valid: ${(error as Error).message}`);
      }
      throw error;
    }),
  ]);
  const rows = page.tasks;
  const keep = { func: f.func, group: f.group };
  const table = rows.length === 0
    ? html`<p class="muted" data-empty>No tasks here.</p>`
    : taskTable(ctx, rows, f.state === "failed");
  const pager = html`
    <div
      class="actions">${f.cursor
        ? html`<a href="${link(ctx, "/tasks", { ...keep, state: f.state })}">« first page</a>`
        : ""}${page.cursor
        ? html`<a href="${
          link(ctx, "/tasks", { ...keep, state: f.state, cursor: page.cursor })
        }" data-next>next page »</a>`
        : html`<span class="muted small">last page</span>`}<span class="muted small">${rows
        .length} on this page</span></div>
  `;
  const list = ctx.regions.wrap("list", html`${table}${pager}`);
  const title = f.state ? `${f.state[0]!.toUpperCase()}${f.state.slice(1)} tasks` : "Tasks";
  return {
    title,
    nav: "tasks",
    body: html`<h1>${title}</h1>
${ctx.regions.wrap("tabs", stateTabs(ctx, counts, f, keep))}
${filterForm(ctx, f, rows[0]?.func ?? "task name")}
${bulkForm(ctx, f, list)}`,
  };
};
