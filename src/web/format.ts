/**
 * Small renderers shared by the pages: times, durations, sizes, state badges, JSON.
 *
 * @module
 */
import type { TaskState } from "../store/keys.ts";
import { type Html, html } from "./html.ts";

/** A duration in words: `850 ms`, `4.2 s`, `3 min 10 s`, `2 h 5 min`, `3 d 4 h`. */
export function duration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/**
 * Epoch ms as ISO 8601 text, or the number itself (`12345678901234567 ms`) when no date can hold
 * it: a stored time out of range must not make a page or a command fail.
 */
export function isoTime(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? `${ms} ms (not a date)` : d.toISOString();
}

/** A time: UTC text for the server render, turned into the viewer's local time by the script. */
export function time(ms: number | null, options: { zone?: boolean } = {}): Html {
  if (ms === null) return html`<span class="muted">–</span>`;
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return html`<span class="err">${ms} ms (not a date)</span>`;
  const iso = d.toISOString();
  return html`<time datetime="${iso}" data-local="${options.zone ? "zone" : "plain"}">${
    iso.replace("T", " ").replace(/\.\d+Z$/, "Z")
  }</time>`;
}

/** A time with how long ago (or ahead) it is. */
export function timeAgo(ms: number | null, now: number): Html {
  if (ms === null) return html`<span class="muted">–</span>`;
  const d = now - ms;
  return html`${time(ms)} <span class="muted small">(${
    d >= 0 ? `${duration(d)} ago` : `in ${duration(-d)}`
  })</span>`;
}

/** A time in an IANA zone, as `2026-05-01 09:00:00 CEST`. */
export function zonedTime(ms: number, timeZone: string): string {
  try {
    const parts = new Intl.DateTimeFormat("en-CA", {
      timeZone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hourCycle: "h23",
      timeZoneName: "short",
    }).formatToParts(new Date(ms));
    const get = (t: string) => parts.find((p) => p.type === t)?.value ?? "";
    return `${get("year")}-${get("month")}-${get("day")} ${get("hour")}:${get("minute")}:${
      get("second")
    } ${get("timeZoneName")}`;
  } catch {
    return new Date(ms).toISOString();
  }
}

/** Bytes as `12.3 MB`. */
export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n) || n <= 0) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 && i > 0 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** A number with thousands separators. */
export function count(n: number): string {
  return n.toLocaleString("en-US");
}

/** A coloured badge for a task state. */
export function stateBadge(state: TaskState | string): Html {
  return html`<span class="badge ${state}" data-state="${state}">${state}</span>`;
}

/** Pretty JSON in a `<pre>`, escaped. */
export function prettyJson(value: unknown): Html {
  let text: string;
  try {
    text = JSON.stringify(value, null, 2) ?? "undefined";
  } catch {
    text = String(value);
  }
  return html`<pre class="json">${text}</pre>`;
}

/** Short JSON for a table cell, cut at `max` characters. */
export function shortJson(value: unknown, max = 80): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? "";
  } catch {
    text = String(value);
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** The first line of a message, cut at `max` characters. */
export function firstLine(text: string, max = 120): string {
  const line = text.split("\n")[0] ?? "";
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** `1 task`, `2 tasks`: a count with its noun, singular for one. */
export function plural(n: number, noun: string, nouns = `${noun}s`): string {
  return `${n.toLocaleString("en-US")} ${n === 1 ? noun : nouns}`;
}
