/**
 * Task detail at `/tasks/:ref` (id or human name): args and result, every attempt's error with
 * its stack, progress, timeline, worker and cluster, and the actions the state allows.
 *
 * @module
 */
import type { Store } from "../../store/store.ts";
import type { TaskRecord } from "../../task/record.ts";
import { TaskId } from "../../task/task_id.ts";
import { duration, prettyJson, stateBadge, timeAgo } from "../format.ts";
import { html } from "../html.ts";
import { csrfField, link, NotFound, type Page, type PageContext } from "../_page.ts";
import { attemptsPanel } from "./attempts.ts";

/** Finds a task by id or human name in the selected queue, then in the other served ones. */
export async function findTask(
  ctx: PageContext,
  ref: string,
): Promise<{ record: TaskRecord; store: Store }> {
  if (!TaskId.isId(ref) && !TaskId.isHumanName(ref)) {
    throw new NotFound(
      `${
        JSON.stringify(ref)
      } is neither a task id (UUIDv7) nor a human name like tango-alpha-nine-river.`,
    );
  }
  const stores = [ctx.store, ...ctx.dashboard.stores.filter((s) => s !== ctx.store)];
  for (const store of stores) {
    const record = await ctx.dashboard.queue(store.queue)!.fetch(ref);
    if (record) return { record, store };
  }
  throw new NotFound(
    `No task ${JSON.stringify(ref)} in ${stores.map((s) => s.queue).join(", ")}.`,
  );
}

/** `/tasks/:ref` */
export const taskPage: Page = async (ctx) => {
  const { record: r, store } = await findTask(ctx, ctx.params.ref ?? "");
  const here = { ...ctx, store };
  const action = (op: string, label: string, extra: { danger?: boolean; confirm?: string } = {}) =>
    html`
      <form class="inline" method="post" action="${link(here, `/tasks/${r.id}/${op}`)}"
        data-js${extra.confirm
          ? html`
            data-confirm="${extra.confirm}"
          `
          : ""}>${csrfField(ctx)}<button type="submit" data-action="${op}" class="${extra.danger
          ? "danger"
          : ""}">${label}</button></form>
    `;
  const actions = ctx.readOnly
    ? ""
    : html`<div class="actions">${
      r.finished ? action("retry", "Retry") : action("cancel", "Cancel")
    }${
      r.state === "running"
        ? ""
        : action("delete", "Delete", { danger: true, confirm: `Delete task ${r.name}?` })
    }</div>`;
  // Why it was cancelled (by a user, a replace, or its start-by deadline): no attempt's error.
  const last = r.errors.at(-1);
  const cancelled = r.state === "cancelled" && r.error !== null &&
      (last?.name !== r.error.name || last?.message !== r.error.message)
    ? html`<p class="err" data-key="cancelled">Cancelled: ${r.error.name}: ${r.error.message}</p>`
    : "";
  const errors = r.errors.length === 0
    ? cancelled === "" ? html`<p class="muted">No errors.</p>` : cancelled
    : r.errors.map((e, i) =>
      html`
        <details data-key="error-${i}" ${i === r.errors.length - 1
          ? html`
            open
          `
          : ""}>
        <summary><strong>Error ${i + 1} of ${r.errors.length}</strong> · <span class="err">${e
          .name}: ${e.message.split("\n")[0]}</span></summary>
        ${e.message.includes("\n") ? html`<pre>${e.message}</pre>` : ""}
        <pre class="stack">${e.stack ?? "(no stack)"}</pre></details>
      `
    );
  const progress = r.progress
    ? html`
      <progress max="1" value="${r.progress.fraction}"></progress> ${Math.round(
        r.progress.fraction * 100,
      )}%${r.progress.message
        ? html`
          · ${r.progress.message}
        `
        : ""} <span
        class="muted small">(${duration(ctx.now - r.progress.at)} ago)</span>
    `
    : html`<span class="muted">none reported</span>`;
  const ran = r.startedAt !== null
    ? duration((r.stoppedAt ?? ctx.now) - r.startedAt) + (r.stoppedAt === null ? " so far" : "")
    : "–";
  const detail = html`
    <h1>${r.name} ${stateBadge(r.state)}</h1>
    ${actions}
    <div class="grid2">
      <div class="panel">
        <h2>Task</h2>
        <dl class="kv">
    <dt>id</dt><dd class="mono">${r.id}</dd>
    <dt>name</dt><dd>${r.name}</dd>
    <dt>function</dt><dd class="mono">${r.func}</dd>
    <dt>queue</dt><dd>${r.queue}</dd>
    <dt>group</dt><dd>${r.group ?? html`<span class="muted">–</span>`}</dd>
    <dt>partition</dt><dd>${r.partition ?? html`<span class="muted">–</span>`}</dd>
    <dt>priority</dt><dd>${r.priority}</dd>
    <dt>attempt</dt><dd>${r.attempt}${r.maxAttempts
      ? ` of ${r.maxAttempts}`
      : " (cluster default limit)"}</dd>
    <dt>timeout</dt><dd>${r.timeout ? duration(r.timeout) : "cluster default"}</dd>
    <dt>progress</dt><dd>${progress}</dd>
    <dt>worker</dt><dd>${r.worker
      ? html`<span class="mono">${r.worker}</span>`
      : html`<span class="muted">–</span>`}</dd>
    <dt>cluster</dt><dd>${r.cluster
      ? html`<a class="mono" href="${link(here, "/clusters")}">${r.cluster}</a>`
      : html`<span class="muted">–</span>`}</dd>
    ${r.hook
      ? html`
        <dt>hook</dt>
        <dd class="mono">${r.hook}</dd>
      `
      : ""}
    ${r.unique
      ? html`
        <dt>unique key</dt>
        <dd class="mono">${r.unique}</dd>
      `
      : ""}
        </dl>
      </div>
      <div class="panel">
        <h2>Timeline</h2>
        <dl class="kv">
          <dt>enqueued</dt>
          <dd>${timeAgo(r.enqueuedAt, ctx.now)}</dd>
          <dt>due</dt>
          <dd>${timeAgo(r.runAt, ctx.now)}</dd>
          ${r.expiresAt !== null
            ? html`
              <dt>start by</dt>
              <dd>${timeAgo(r.expiresAt, ctx.now)}</dd>
            `
            : ""}
          ${r.crashes > 0
            ? html`
              <dt>crashes</dt>
              <dd title="${r.crashedOn!.join(", ")}">${r.crashes} (its cluster died as it ran)</dd>
            `
            : ""}
          <dt>started</dt>
          <dd>${timeAgo(r.startedAt, ctx.now)}</dd>
          <dt>stopped</dt>
          <dd>${timeAgo(r.stoppedAt, ctx.now)}</dd>
          <dt>waited</dt>
          <dd>${r.startedAt !== null ? duration(Math.max(0, r.startedAt - r.runAt)) : "–"}</dd>
          <dt>ran</dt>
          <dd>${ran}</dd>
        </dl>
      </div>
    </div>
    ${attemptsPanel(r, ctx.dashboard.traceUrl)}
    <div class="panel"><h2>Arguments</h2>${prettyJson(r.args)}</div>
    <div class="panel"><h2>Result</h2>${r.state === "succeeded"
      ? r.resultJson === null
        ? html`<p class="muted">Not kept (save: false).</p>`
        : prettyJson(r.result)
      : html`<p class="muted">No result (${r.state}).</p>`}</div>
    <div class="panel"><h2>Errors (${r.errors.length})</h2>${errors}</div>
  `;
  return {
    title: `Task ${r.name}`,
    nav: "tasks",
    body: ctx.regions.wrap("task", detail),
  };
};
