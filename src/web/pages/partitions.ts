/**
 * The queues page's partitions: per queue, its busiest partitions with how many of their tasks
 * run and wait, and the weights as the limits form shows them.
 *
 * @module
 */
import { count } from "../format.ts";
import { type Html, html } from "../html.ts";
import type { PartitionCounts } from "../../store/partitions.ts";

/** How many partitions of a queue the page lists. */
export const SHOWN_PARTITIONS = 50;

/** Weights as the limits form takes them: `vip=3, big=2`. */
export function weightsText(weights: Readonly<Record<string, number>> | undefined): string {
  return Object.entries(weights ?? {}).map(([p, w]) => `${p}=${w}`).join(", ");
}

/** A queue's partitions, busiest first, as a table. */
export function partitionsTable(
  queue: string,
  read: { partitions: PartitionCounts[]; more: boolean },
): Html {
  const { partitions, more } = read;
  const shown = partitions.slice(0, SHOWN_PARTITIONS);
  const left = partitions.length - shown.length;
  return html`
    <h2>Partitions of ${queue}</h2>
    <table data-partitions="${queue}">
      <thead>
        <tr>
          <th>partition</th>
          <th>running</th>
          <th>queued</th>
          <th>scheduled</th>
        </tr>
      </thead>
      <tbody>${shown.map((p) =>
        html`
          <tr data-partition="${p.partition}">
            <td>${p.partition}</td>
            <td>${count(p.running)}</td>
            <td>${count(p.queued)}</td>
            <td>${count(p.scheduled)}</td>
          </tr>
        `
      )}</tbody>
    </table>
    ${left > 0 || more
      ? html`<p class="note">${
        left > 0 ? `${left} more` : "More"
      } partitions not shown ('kvq limit ${queue} --json' lists them).</p>`
      : ""}
  `;
}
