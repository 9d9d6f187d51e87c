/**
 * Helpers for the dashboard tests: a started dashboard on a fresh KV file, a client that keeps
 * cookies and the CSRF token the way a browser does, and a reader for the event stream.
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Queue } from "../../src/queue/queue.ts";
import { runInline } from "../../src/cluster/inline.ts";
import { Dashboard, type DashboardOptions } from "../../src/web/dashboard.ts";

/** The origin test requests use. */
export const ORIGIN = "http://127.0.0.1:8080";

/** A dashboard on a fresh KV file. */
export interface Harness {
  dashboard: Dashboard;
  queue: Queue;
  dir: string;
  client: Client;
}

/** Runs `fn` with a started dashboard (not listening: requests go to `fetch`). */
export async function withDashboard(
  options: DashboardOptions,
  fn: (h: Harness) => Promise<void>,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "kvq-web-"));
  const dashboard = new Dashboard({
    kv: join(dir, "kv.sqlite3"),

    liveInterval: 50,
    idleInterval: 200,
    ...options,
  });
  try {
    await dashboard.start();
    const queue = dashboard.queue(dashboard.stores[0]!.queue)!;
    await fn({ dashboard, queue, dir, client: new Client(dashboard) });
  } finally {
    await dashboard.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs the queued tasks in this process with these functions, until none is left. */
export async function runTasks(
  queue: Queue,
  // deno-lint-ignore no-explicit-any
  tasks: Record<string, (...args: any[]) => unknown>,
): Promise<void> {
  await runInline(queue.store, { tasks: new Map(Object.entries(tasks)), burst: true });
}

/** A browser-like client of `dashboard.fetch`: keeps cookies and the page's CSRF token. */
export class Client {
  readonly #dashboard: Dashboard;
  readonly cookies = new Map<string, string>();
  csrf = "";

  constructor(dashboard: Dashboard) {
    this.#dashboard = dashboard;
  }

  /** Sends a request, storing cookies from the answer. */
  async request(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size > 0 && !headers.has("cookie")) {
      headers.set("cookie", [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; "));
    }
    const res = await this.#dashboard.fetch(
      new Request(`${ORIGIN}${path}`, { ...init, headers, redirect: "manual" }),
    );
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const eq = pair!.indexOf("=");
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      if (/Max-Age=0/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }

  /** GETs a page and remembers its CSRF token. Resolves with status and body. */
  async page(path: string, headers: HeadersInit = {}): Promise<{ status: number; body: string }> {
    const res = await this.request(path, { headers });
    const body = await res.text();
    const token = /<meta name="csrf" content="([^"]*)">/.exec(body)?.[1];
    if (token) this.csrf = token;
    return { status: res.status, body };
  }

  /** POSTs a form as the page script does (JSON answer, token in a header unless overridden). */
  async action(
    path: string,
    fields: Record<string, string | string[]> = {},
    options: { headers?: Record<string, string>; json?: boolean } = {},
  ): Promise<
    {
      status: number;
      json: { ok: boolean; message?: string; error?: string; location?: string } | null;
      body: string;
      res: Response;
    }
  > {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(fields)) {
      for (const one of ([] as string[]).concat(v)) body.append(k, one);
    }
    const headers: Record<string, string> = {
      "content-type": "application/x-www-form-urlencoded",
      origin: ORIGIN,
      ...(options.json === false ? {} : { accept: "application/json" }),
      ...(options.json === false ? {} : { "x-csrf-token": this.csrf }),
      ...options.headers,
    };
    const res = await this.request(path, { method: "POST", body, headers });
    const text = await res.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      // an HTML answer
    }
    return { status: res.status, json, body: text, res };
  }
}

/** One Server-Sent Event. */
export interface SseEvent {
  event: string;
  data: string;
}

/** Reads events from a stream until `until` returns true for one; resolves with it. */
export async function readEvents(
  res: Response,
  until: (e: SseEvent) => boolean,
): Promise<SseEvent> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error("The event stream ended first");
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = "message";
        const data: string[] = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) event = line.slice(7);
          else if (line.startsWith("data: ")) data.push(line.slice(6));
        }
        if (data.length === 0) continue;
        const e = { event, data: data.join("\n") };
        if (until(e)) return e;
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** Hostile text that must come out escaped. */
export const XSS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>'] as const;
