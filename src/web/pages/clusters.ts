/**
 * Clusters: every cluster whose heartbeat sits under a served queue, and each of its workers
 * live: generation, state, current task and elapsed time, CPU, memory, reincarnations. A worker
 * the cluster marked stuck, or one whose task runs far past its timeout, stands out.
 *
 * @module
 */
import { readRecords, STALE_HEARTBEAT_MS, stuckReason } from "../data.ts";
import { bytes, duration, time, timeAgo } from "../format.ts";
import { html } from "../html.ts";
import { link, type Page } from "../_page.ts";

/** `/clusters` */
export const clustersPage: Page = async (ctx) => {
  const d = ctx.dashboard;
  const clusters = await d.clusters();
  const ids = clusters.flatMap((c) => c.stat.workers.flatMap((w) => w.tasks.map((t) => t.id)));
  const timeouts = new Map<string, number | null>();
  if (ids.length > 0) {
    for (const store of d.stores) {
      for (const r of await readRecords(store, ids)) timeouts.set(r.id, r.timeout);
    }
  }
  const body = clusters.length === 0
    ? html`
      <div class="panel">
        <p>No cluster heartbeats under ${d.stores.map((s) => s.queue).join(
          ", ",
        )}. Start one with <code>kvq cluster --tasks ./tasks.ts</code>.</p>
      </div>
    `
    : clusters.map(({ stat, seenIn }) => {
      const age = ctx.now - stat.beatAt;
      const stale = age > STALE_HEARTBEAT_MS;
      const workers = stat.workers.map((w) => {
        const reason = stuckReason(stat, w, timeouts, ctx.now);
        return html`
          <tr class="${reason ? "stuck" : ""}" data-worker="${w.name}">
            <td class="mono">${w.name}</td>
            <td>${w.generation}</td>
            <td>${w.state}${reason
              ? html`
                <span class="badge failed" title="${reason}">stuck</span>
              `
              : ""}</td>
            <td>${w.tasks.length === 0
              ? html`<span class="muted">idle</span>`
              : w.tasks.map((t) =>
                html`<div><a href="${
                  link(ctx, `/tasks/${t.id}`)
                }">${t.name}</a> <span class="mono">${t.func}</span> <span class="muted">${
                  duration(ctx.now - t.startedAt)
                }</span></div>`
              )}${reason ? html`<div class="err small">${reason}</div>` : ""}</td>
            <td>${w.cpu.toFixed(1)}%</td>
            <td>${bytes(w.heap)}</td>
            <td>${w.tasksRun}</td>
            <td class="muted">${w.tid ?? "–"}</td>
          </tr>
        `;
      });
      return html`
        <div class="panel" data-cluster="${stat.id}">
          <h2><span class="mono">${stat.id}</span> <span class="badge ${stat.state === "running"
            ? "succeeded"
            : "warn"}">${stat.state}</span>${stale
            ? html`
              <span class="badge stale">no heartbeat for ${duration(age)}</span>
            `
            : ""}${stat.stuck?.length
            ? html`
              <span class="badge failed">stuck worker</span>
            `
            : ""}</h2>
          <dl class="kv">
            <dt>host</dt>
            <dd>${stat.host} · pid ${stat.pid} · ${stat.runtime} ${stat.version}</dd>
            <dt>queues</dt>
            <dd>${stat.queues.join(", ")} <span class="muted small">(heartbeat under ${seenIn.join(
              ", ",
            )})</span></dd>
            <dt>started</dt>
            <dd>${timeAgo(stat.startedAt, ctx.now)}</dd>
            <dt>heartbeat</dt>
            <dd>${time(stat.beatAt)} <span class="muted small">(${duration(age)} ago)</span></dd>
            <dt>CPU · memory</dt>
            <dd>${stat.cpu}% · RSS ${bytes(stat.rss)} · lowest free ${bytes(
              stat.lowestFreeMemory,
            )}</dd>
            <dt>attempts</dt>
            <dd>${stat.processed} run · ${stat.succeeded} succeeded · ${stat
              .failed} failed <span class="muted small">(since it started, across its queues; a retried task counts each attempt)</span></dd>
            <dt>reincarnations</dt>
            <dd>${stat.reincarnations}</dd>
          </dl>
          <table>
            <thead>
              <tr>
                <th>worker</th>
                <th>generation</th>
                <th>state</th>
                <th>current task · elapsed</th>
                <th>CPU</th>
                <th>heap</th>
                <th>tasks run</th>
                <th>thread</th>
              </tr>
            </thead>
            <tbody>${workers}</tbody>
          </table>
        </div>
      `;
    });
  return {
    title: "Clusters",
    nav: "clusters",
    body: html`<h1>Clusters</h1>${ctx.regions.wrap("clusters", html`${body}`)}`,
  };
};
