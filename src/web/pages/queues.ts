/**
 * Queues: size, latency, paused state, limits and the workers serving each queue (from cluster
 * heartbeats), and its partitions; purge of finished tasks by state; pause and resume; setting
 * the limits.
 *
 * @module
 */
import { oldestReady } from "../data.ts";
import { count, duration, timeAgo } from "../format.ts";
import { html } from "../html.ts";
import { csrfField, link, type Page } from "../_page.ts";
import { limitsText } from "../../store/flow.ts";
import { readPartitionCounts } from "../../store/partitions.ts";
import { partitionsTable, weightsText } from "./partitions.ts";

/** The finished states a purge may delete. */
export const PURGE_STATES = ["succeeded", "failed", "cancelled"] as const;

/** The longest pause reason the dashboard accepts (it is shown on every page view). */
export const MAX_PAUSE_REASON = 200;

/** `/queues` */
export const queuesPage: Page = async (ctx) => {
  const d = ctx.dashboard;
  const clusters = await d.clusters();
  const rows = await Promise.all(d.stores.map(async (store) => {
    const queue = d.queue(store.queue)!;
    const [counts, oldest, paused, limits, partitions] = await Promise.all([
      queue.counts(),
      oldestReady(store, ctx.now),
      queue.paused(),
      queue.limits(),
      readPartitionCounts(store, { limit: 1000 }),
    ]);
    let workers = 0, busy = 0, serving = 0;
    for (const { stat } of clusters) {
      if (!stat.queues.includes(store.queue) || stat.state !== "running") continue;
      serving++;
      workers += stat.workers.length;
      busy += stat.workers.filter((w) => w.tasks.length > 0).length;
    }
    return { store, counts, oldest, paused, limits, partitions, workers, busy, serving };
  }));
  const table = html`
    <table>
      <thead>
        <tr>
          <th>queue</th>
          <th>state</th>
          <th>size (queued)</th>
          <th>scheduled</th>
          <th>running</th>
          <th>succeeded</th>
          <th>failed</th>
          <th>cancelled</th>
          <th>latency (oldest ready)</th>
          <th>workers</th>
          <th>limits</th>
        </tr>
      </thead>
      <tbody>${rows.map((r) =>
        html`
          <tr data-queue="${r.store.queue}">
            <td><strong>${r.store.queue}</strong></td>
            <td data-paused="${r.paused ? "yes" : "no"}">${r.paused
              ? html`<span class="badge paused">paused</span> since ${
                timeAgo(
                  r.paused.at,
                  ctx.now,
                )
              }${r.paused.until === null ? "" : html`, until ${timeAgo(r.paused.until, ctx.now)}`}${
                r.paused.reason === null ? "" : html`<div class="note">${r.paused.reason}</div>`
              }`
              : html`<span class="badge active">active</span>`}</td>
            <td><a href="${link({ ...ctx, store: r.store }, "/tasks", {
              state: "queued",
            })}">${count(r.counts.queued)}</a></td>
            <td>${count(r.counts.scheduled)}</td>
            <td>${count(r.counts.running)}</td>
            <td>${count(r.counts.succeeded)}</td>
            <td>${count(r.counts.failed)}</td>
            <td>${count(r.counts.cancelled)}</td>
            <td>${r.oldest
              ? duration(r.oldest.age)
              : html`<span class="muted">none waiting</span>`}</td>
            <td>${r.serving === 0
              ? html`<span class="badge warn">no cluster</span>`
              : `${r.busy} busy of ${r.workers} in ${r.serving} cluster${
                r.serving > 1 ? "s" : ""
              }`}</td>
            <td data-limits>${r.limits === null
              ? html`<span class="muted">none</span>`
              : limitsText(r.limits)}</td>
          </tr>
        `
      )}</tbody>
    </table>
  `;

  // Each queue's controls are a region of their own: it changes (and is sent again) only when
  // the queue is paused or resumed, so a reason being typed is not wiped by other updates.
  const controls = ctx.readOnly ? "" : rows.map(({ store, paused, limits }) =>
    html`
      <div class="panel">
        <h2>Queue ${store.queue}</h2>
        <form method="post" action="${link(
          { ...ctx, store },
          "/queues/purge",
        )}" data-js class="actions"
          data-confirm="Delete every finished task of this state in queue ${store
            .queue}? This cannot be undone.">
        ${csrfField(ctx)}
        <label>purge finished tasks in state
          <select name="state">${PURGE_STATES.map((s) =>
            html`<option value="${s}">${s}</option>`
          )}</select>
        </label>
        <button type="submit" class="danger">Purge</button>
        </form>
        ${ctx.regions.wrap(
          `pause-${store.queue}`,
          paused
            ? html`<form method="post" action="${
              link(
                { ...ctx, store },
                "/queues/resume",
              )
            }" data-js class="actions">
        ${csrfField(ctx)}
        <span class="muted">Paused: clusters claim nothing from it.</span>
        <button type="submit" data-queue-action="resume">Resume</button>
        </form>`
            : html`<form method="post" action="${
              link(
                { ...ctx, store },
                "/queues/pause",
              )
            }" data-js data-reset class="actions">
        ${csrfField(ctx)}
        <label>reason <input type="text" name="reason" maxlength="${MAX_PAUSE_REASON}"
          placeholder="optional, shown here"></label>
        <button type="submit" data-queue-action="pause">Pause</button>
        </form>`,
        )}
        <form method="post" action="${link({ ...ctx, store }, "/queues/limits")}" data-js
          class="actions">
        ${csrfField(ctx)}
        <label>concurrency <input type="text" name="concurrency" size="5" inputmode="numeric"
          value="${limits?.concurrency ?? ""}" placeholder="none"></label>
        <label>rate <input type="text" name="rate" size="8" value="${limits?.rate
          ? `${limits.rate.count}/${limits.rate.ms}ms`
          : ""}" placeholder="e.g. 100/1s"></label>
        <label>per partition: concurrency <input type="text" name="partitionConcurrency" size="5"
          inputmode="numeric" value="${limits?.partitionConcurrency ??
            ""}" placeholder="none"></label>
        <label>rate <input type="text" name="partitionRate" size="8" value="${limits?.partitionRate
          ? `${limits.partitionRate.count}/${limits.partitionRate.ms}ms`
          : ""}" placeholder="e.g. 5/1s"></label>
        <label>weights <input type="text" name="partitionWeights" size="16" value="${weightsText(
          limits?.partitionWeights,
        )}" placeholder="e.g. vip=3, big=2"></label>
        <button type="submit" data-queue-action="limits">Set limits</button>
        </form>
        <p class="note">Limits hold across every cluster: at most that many of its tasks run at once,
          and at most N start in any window, in all and for each partition; a partition's weight
          is its turns to another's one (empty: no limit).</p>
        <p
          class="note">A paused queue keeps its tasks: clusters finish what runs and claim nothing more from it until it is resumed.</p>
        <p
          class="note">A purge deletes in pages of 100 tasks, for up to 20 s per click; it says how many remain if it stops early.</p>
      </div>
    `
  );
  const partitioned = rows.filter((r) => r.partitions.partitions.length > 0);
  return {
    title: "Queues",
    nav: "queues",
    body: html`<h1>Queues</h1>
<div class="panel">${ctx.regions.wrap("queues", table)}</div>
${
      partitioned.length === 0 ? "" : html`<div class="panel">${
        ctx.regions.wrap(
          "partitions",
          html`${partitioned.map((r) => partitionsTable(r.store.queue, r.partitions))}`,
        )
      }</div>`
    }
${controls}`,
  };
};
