/**
 * The task page's attempts: one row each (due, started, stopped, worker and cluster, outcome and
 * error), and the task's trace id, linked by the dashboard's trace URL template.
 *
 * @module
 */
import type { TaskRecord } from "../../task/record.ts";
import { attemptRows, traceIdOf, traceLink } from "../../task/timeline.ts";
import { duration, firstLine, time } from "../format.ts";
import { type Html, html } from "../html.ts";

/** The attempts panel of `record`. */
export function attemptsPanel(record: TaskRecord, traceUrl: string | null): Html {
  const rows = attemptRows(record);
  const traceId = traceIdOf(record);
  const trace = traceId === null
    ? html`<span class="muted">none (enqueued without tracing)</span>`
    : traceUrl === null
    ? html`<span class="mono" data-trace-id>${traceId}</span>`
    : html`
      <a class="mono" data-trace-id href="${traceLink(traceUrl, traceId)}" rel="noopener noreferrer"
        target="_blank">${traceId}</a>
    `;
  return html`
    <div class="panel">
      <h2>Attempts (${rows.length})</h2>
      <table data-attempts>
        <thead>
          <tr>
            <th>#</th>
            <th>due</th>
            <th>started</th>
            <th>stopped</th>
            <th>ran</th>
            <th>worker</th>
            <th>cluster</th>
            <th>outcome</th>
            <th>error</th>
          </tr>
        </thead>
        <tbody>${rows.map((a) =>
          html`
            <tr data-attempt="${a.attempt ?? ""}" data-outcome="${a.outcome}">
              <td>${a.attempt ?? "–"}</td>
              <td>${time(a.due)}</td>
              <td>${time(a.startedAt)}</td>
              <td>${time(a.stoppedAt)}</td>
              <td>${a.startedAt !== null && a.stoppedAt !== null
                ? duration(Math.max(0, a.stoppedAt - a.startedAt))
                : "–"}</td>
              <td class="mono">${a.worker ?? "–"}</td>
              <td class="mono">${a.cluster ?? "–"}</td>
              <td>${a.outcome}</td>
              <td>${a.error
                ? html`<span class="err">${a.error.name}: ${firstLine(a.error.message)}</span>`
                : ""}</td>
            </tr>
          `
        )}</tbody>
      </table>
      <p class="small">trace ${trace}</p>
    </div>
  `;
}
