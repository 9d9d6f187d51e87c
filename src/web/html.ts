/**
 * HTML that escapes by default. Every page of the dashboard is built with the {@linkcode html}
 * tagged template: an interpolated value is escaped unless it is already {@linkcode Html}
 * (made by `html` itself or, for the page's own constant CSS and script, by {@linkcode unsafeRaw}).
 * Task args, results, errors, names and function names come from whoever enqueued the task, so
 * they are never trusted.
 *
 * @module
 */

/** A fragment of HTML that is safe to insert as is. */
export class Html {
  /** The markup. */
  readonly value: string;
  constructor(value: string) {
    this.value = value;
  }
  /** The markup. */
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Escapes text for an HTML text node or a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** Values `html` accepts: escaped text, trusted fragments, lists of either, or nothing. */
export type HtmlValue = Html | string | number | bigint | boolean | null | undefined | HtmlValue[];

function render(value: HtmlValue): string {
  if (value instanceof Html) return value.value;
  if (value === null || value === undefined || value === false) return "";
  if (Array.isArray(value)) return value.map(render).join("");
  return escapeHtml(String(value));
}

/**
 * Builds HTML, escaping every interpolated value that is not already {@linkcode Html}.
 *
 * @example
 * ```ts
 * html`<td>${record.func}</td>`; // "<td>&lt;script&gt;…</td>" for a hostile name
 * html`<ul>${items.map((i) => html`<li>${i}</li>`)}</ul>`;
 * ```
 */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new Html(out);
}

/**
 * Marks constant markup (the page's own CSS and script, never data) as safe. Do not pass
 * anything that came from a request or from KV.
 */
export function unsafeRaw(markup: string): Html {
  return new Html(markup);
}

/**
 * JSON for a `<script type="application/json">` block: `<`, `>`, `&` and line separators are
 * written as `\u` escapes, so no value can close the script element.
 */
export function jsonForScript(value: unknown): Html {
  return new Html(
    JSON.stringify(value).replace(
      /[<>&\u2028\u2029]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    ),
  );
}
