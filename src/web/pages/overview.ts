/**
 * Overview of the selected queue: its tasks by state (counters, never a scan), attempts and
 * failures per minute over the last hour (from the per-minute sums in KV), wait and run
 * percentiles over its newest finished tasks, its oldest ready task; and, with several queues,
 * each queue's tasks by state.
 *
 * @module
 */
import { TASK_STATES } from "../../store/keys.ts";
import {
  CHART_RANGES,
  type ChartRange,
  chartRange,
  durations,
  oldestReady,
  percentile,
  RECENT_SAMPLE,
} from "../data.ts";
import { count, duration, firstLine, stateBadge, time } from "../format.ts";
import { html, jsonForScript } from "../html.ts";
import { link, type Page } from "../_page.ts";

/** `/` */
export const overviewPage: Page = async (ctx) => {
  const d = ctx.dashboard;
  const store = ctx.store;
  const range = chartRange(ctx.url.searchParams.get("range"));
  const [totals, oldest, recent, chart] = await Promise.all([
    d.queue(store.queue)!.counts(),
    oldestReady(store, ctx.now),
    d.recent(store),
    d.chartData(store, range),
  ]);
  const per = CHART_RANGES[range].label;
  const spans = { "1h": "the last hour", "24h": "the last 24 hours", "72h": "the last 72 hours" };
  const ranges = html`<p class="actions" data-chart-range="${range}">${
    (Object.keys(CHART_RANGES) as ChartRange[]).map((r) =>
      r === range
        ? html`
          <strong>${spans[r]}</strong>
        `
        : html`
          <a href="${link(ctx, "/", { range: r })}">${spans[r]}</a>
        `
    )
  }</p>`;
  const perQueue = d.stores.length > 1
    ? await Promise.all(
      d.stores.map(async (s) => ({ store: s, counts: await d.queue(s.queue)!.counts() })),
    )
    : [];
  const { wait, run } = durations(recent);
  const failures = recent.filter((r) => r.state === "failed").slice(0, 8);
  const pct = (v: number[], p: number) => duration(percentile(v, p));

  const cards = html`
    <div class="cards">${TASK_STATES.map((s) =>
      html`
        <a class="card${s === "failed" && totals[s] > 0 ? " bad" : ""}"
          href="${link(ctx, "/tasks", {
            state: s,
          })}"><div class="k">${s}</div><div class="v" data-count="${s}">${count(
            totals[s],
          )}</div></a>
      `
    )}</div>
    <div class="cards">
      <div class="card">
        <div class="k">wait p50 / p95</div>
        <div class="v">${pct(
          wait,
          50,
        )}</div>
        <div class="s">p95 ${pct(wait, 95)}</div>
      </div>
      <div class="card">
        <div class="k">run p50 / p95</div>
        <div class="v">${pct(
          run,
          50,
        )}</div>
        <div class="s">p95 ${pct(run, 95)}</div>
      </div>
      <div class="card">
        <div class="k">oldest ready</div>
        <div class="v">${oldest ? duration(oldest.age) : "–"}</div>
        <div class="s">${oldest
          ? html`<a href="${link(ctx, `/tasks/${oldest.record.id}`)}">${oldest.record.name}</a>${
            oldest.partial ? " (first page of the ready index)" : ""
          }`
          : "nothing waiting"}</div>
      </div>
    </div>
    <p
      class="note">Tasks by state in queue ${store
        .queue}. Wait (due → start) and run (start → stop) over its newest ${recent
        .length} finished tasks (at most ${RECENT_SAMPLE}, newest page of succeeded and failed).</p>
  `;

  const failList = failures.length === 0
    ? html`<p class="muted">No failed tasks among the newest finished ones.</p>`
    : html`
      <table>
        <thead>
          <tr>
            <th>task</th>
            <th>func</th>
            <th>stopped</th>
            <th>error</th>
          </tr>
        </thead>
        <tbody>${failures.map((r) =>
          html`
            <tr>
              <td><a href="${link(ctx, `/tasks/${r.id}`)}">${r.name}</a></td>
              <td class="mono">${r.func}</td>
              <td>${time(r.stoppedAt)}</td>
              <td class="err">${r.error
                ? `${r.error.name}: ${firstLine(r.error.message)}`
                : ""}</td>
            </tr>
          `
        )}</tbody>
      </table>
    `;

  const queueTable = perQueue.length > 1
    ? html`
      <div class="panel">
        <h2>Tasks by state, every queue</h2>
        <table>
          <thead>
            <tr><th>queue</th>${TASK_STATES.map((s) => html`<th>${s}</th>`)}</tr>
          </thead>
          <tbody>${perQueue.map((q) =>
            html`<tr><td><a href="/?queue=${
              encodeURIComponent(q.store.queue)
            }">${q.store.queue}</a></td>${
              TASK_STATES.map((s) => html`<td>${count(q.counts[s])}</td>`)
            }</tr>`
          )}</tbody>
        </table>
      </div>
    `
    : "";

  return {
    title: "Overview",
    nav: "overview",
    chart,
    body: html`
      <h1>Overview</h1>
      ${ctx.regions.wrap("totals", cards)}
      <div class="grid2">
        <div class="panel">
          <h2>Attempts per ${per}</h2>
          <svg class="chart" id="chart-rate" role="img"
            aria-label="attempts ended per ${per} over ${spans[range]}"></svg>
        </div>
        <div class="panel">
          <h2>Failed attempts (% per ${per})</h2>
          <svg class="chart" id="chart-fail" role="img"
            aria-label="share of failed attempts per ${per} over ${spans[range]}"></svg>
        </div>
      </div>
      ${ranges}
      <p
        class="note">Every attempt that ended in queue ${store
          .queue} in each ${per} of ${spans[
            range
          ]}, retries included, from the per-minute sums the clusters keep in KV for 72 hours: they survive a restart. Hover a bar for its values.</p>
      <script type="application/json" id="chart-data">${jsonForScript(chart)}</script>
      ${ctx.regions.wrap("queues", html`${queueTable}`)}
      <div class="panel"><h2>Recent failures</h2>${ctx.regions.wrap("failures", failList)}</div>
      <p class="small muted">States: ${TASK_STATES.map((s) =>
        html`
          ${stateBadge(s)}
        `
      )}</p>
    `,
  };
};
