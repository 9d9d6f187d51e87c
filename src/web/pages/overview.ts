/**
 * Overview: totals by state (counters, never a scan), throughput and failure rate over the last
 * hour (sampled by the dashboard since it started), wait and run percentiles over the newest
 * finished tasks, and the oldest ready task of each queue.
 *
 * @module
 */
import { TASK_STATES, type TaskState } from "../../store/keys.ts";
import { durations, oldestReady, percentile, RECENT_SAMPLE } from "../data.ts";
import { count, duration, firstLine, stateBadge, time } from "../format.ts";
import { html, jsonForScript } from "../html.ts";
import { link, type Page } from "../_page.ts";

/** `/` */
export const overviewPage: Page = async (ctx) => {
  const d = ctx.dashboard;
  const perQueue = await Promise.all(d.stores.map(async (store) => {
    const [counts, oldest, recent] = await Promise.all([
      d.queue(store.queue)!.counts(),
      oldestReady(store, ctx.now),
      d.recent(store),
    ]);
    return { store, counts, oldest, recent };
  }));
  const totals = Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<TaskState, number>;
  for (const q of perQueue) for (const s of TASK_STATES) totals[s] += q.counts[s];
  const recent = perQueue.flatMap((q) => q.recent);
  const { wait, run } = durations(recent);
  const failures = recent.filter((r) => r.state === "failed").slice(0, 8);
  const pct = (v: number[], p: number) => duration(percentile(v, p));

  const cards = html`
    <div class="cards">${TASK_STATES.map((s) =>
      html`
        <a class="card"
          href="${link(ctx, "/tasks", {
            state: s,
          })}"><div class="k">${s}</div><div class="v" data-count="${s}">${count(
            totals[s],
          )}</div></a>
      `
    )}</div>
    <div class="cards">
        <div class="card"><div class="k">wait p50 / p95</div><div class="v">${pct(
          wait,
          50,
        )}</div><div class="s">p95 ${pct(wait, 95)}</div></div>
        <div class="card"><div class="k">run p50 / p95</div><div class="v">${pct(
          run,
          50,
        )}</div><div class="s">p95 ${pct(run, 95)}</div></div>
        ${perQueue.map((q) =>
          html`
            <div class="card">
              <div class="k">oldest ready · ${q.store.queue}</div>
              <div class="v">${q.oldest ? duration(q.oldest.age) : "–"}</div>
              <div class="s">${q.oldest
                ? html`<a href="${
                  link(ctx, `/tasks/${q.oldest.record.id}`)
                }">${q.oldest.record.name}</a>${
                  q.oldest.partial ? " (first page of the ready index)" : ""
                }`
                : "nothing waiting"}</div>
            </div>
          `
        )}
      </div>
    <p
      class="note">Wait (due → start) and run (start → stop) over the newest ${recent
        .length} finished tasks (at most ${RECENT_SAMPLE} per queue, newest page of succeeded and failed).</p>
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

  const queueTable = d.stores.length > 1
    ? html`
      <div class="panel">
        <h2>By queue</h2>
        <table>
          <thead>
            <tr><th>queue</th>${TASK_STATES.map((s) => html`<th>${s}</th>`)}</tr>
          </thead>
          <tbody>${perQueue.map((q) =>
            html`<tr><td><a href="${link(ctx, "/tasks")}">${q.store.queue}</a></td>${
              TASK_STATES.map((s) => html`<td>${count(q.counts[s])}</td>`)
            }</tr>`
          )}</tbody>
        </table>
      </div>
    `
    : "";

  const chart = d.chartData();
  return {
    title: "Overview",
    nav: "overview",
    chart,
    body: html`
      <h1>Overview</h1>
      ${ctx.regions.wrap("totals", cards)}
      <div class="grid2">
        <div class="panel">
          <h2>Throughput (tasks finished per minute)</h2>
          <svg class="chart" id="chart-rate" role="img" aria-label="throughput over the last hour"></svg>
        </div>
        <div class="panel">
          <h2>Failure rate (% of finished tasks)</h2>
          <svg class="chart" id="chart-fail" role="img"
            aria-label="failure rate over the last hour"></svg>
        </div>
      </div>
      <p
        class="note">The charts come from the state counters, sampled every ${(
          d.sampler.interval / 1000
        )} s since this dashboard started (${time(
          d.startedAt,
        )}); the last hour is kept in memory. A purge or retry inside one sample can hide finishes.</p>
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
