/**
 * The dashboard: one KV handle, the queues it shows, short-lived caches shared by every viewer,
 * and the live event streams. {@linkcode Dashboard.fetch} answers a
 * request (the hono app); {@linkcode Dashboard.listen} serves it over HTTP through the runtime
 * adapter.
 *
 * Dashboard states:
 *
 * ```
 * new ──start()──▶ started ──listen()──▶ serving ──close()──▶ closed
 *                     └────────────────close()──────────────────▲
 * ```
 *
 * @module
 */
import type { Hono } from "hono";
import { openQueue, type Queue } from "../queue/queue.ts";
import { Schedules } from "../schedule/api.ts";
import { type HttpServer, runtime } from "../runtime/mod.ts";
import { listQueuesDefaultFirst } from "../store/queues.ts";
import { validateTraceUrl } from "../task/timeline.ts";
import { KvHandle, type Store } from "../store/store.ts";
import type { TaskRecord } from "../task/record.ts";
import { createApp } from "./app.ts";
import { Guard, validateToken } from "./auth.ts";
import {
  type ChartData,
  type ChartRange,
  type ClusterView,
  readChart,
  readClusters,
  recentFinished,
} from "./data.ts";
import type { AppHost, HealthReport } from "./view.ts";

export {
  DashboardListenError,
  type DashboardOptions,
  type ListenOptions,
  parseListen,
} from "./options.ts";
import { DashboardListenError, type DashboardOptions, type ListenOptions } from "./options.ts";
export type { HealthReport };

interface Cached<T> {
  at: number;
  value: Promise<T>;
}

type State = "new" | "started" | "closed";

/**
 * The web dashboard.
 *
 * @example
 * ```ts
 * await using dashboard = new Dashboard({ kv: ".kvq/kv.sqlite3" });
 * await dashboard.start();
 * const server = await dashboard.listen({ port: 8080 });
 * console.log(`http://${server.hostname}:${server.port}/`);
 * ```
 */
export class Dashboard implements AppHost {
  readonly #options: DashboardOptions;
  readonly #guard: Guard;
  #state: State = "new";
  #handle: KvHandle | null = null;
  #ownsHandle = false;
  #stores: Store[] = [];
  #queues = new Map<string, Queue>();
  #schedules = new Map<string, Schedules>();
  #app: Hono | null = null;
  #server: HttpServer | null = null;
  #caches = new Map<string, Cached<unknown>>();
  #pulseListeners = new Set<() => void>();
  #pulseTimer: ReturnType<typeof setTimeout> | null = null;
  #idleTimer: ReturnType<typeof setInterval> | null = null;
  #lastPulse = 0;
  #unsubscribe: (() => void)[] = [];
  /** No queues were named: show every queue the store holds. */
  readonly #discover: boolean;
  #streams = new Set<() => void>();

  constructor(options: DashboardOptions = {}) {
    const token = options.token ?? null;
    if (token !== null) validateToken("127.0.0.1", token);
    if (options.traceUrl) validateTraceUrl(options.traceUrl);
    const budget = options.searchBudgetMs;
    if (budget !== undefined && !(Number.isFinite(budget) && budget > 0)) {
      throw new RangeError(`searchBudgetMs must be a number of ms above 0: received ${budget}`);
    }
    const queues = options.queues;
    if (queues !== undefined && (!Array.isArray(queues) || queues.length === 0)) {
      throw new TypeError(
        `Dashboard option queues must name at least one queue: received ${JSON.stringify(queues)}`,
      );
    }
    this.#discover = queues === undefined;
    this.#options = { ...options, queues: queues ?? [] };
    this.#guard = new Guard(token);
  }

  /** Opens KV and the queues it shows. */
  async start(): Promise<void> {
    if (this.#state !== "new") throw new Error("Dashboard was already started");
    const kv = this.#options.kv;
    if (kv instanceof KvHandle) this.#handle = kv;
    else {
      this.#handle = await KvHandle.open({ kv: kv ?? null });
      this.#ownsHandle = true;
    }
    try {
      const names = this.#discover
        ? await listQueuesDefaultFirst(this.#handle!.kv)
        : this.#options.queues!;
      for (const name of names) await this.#addQueue(name);
    } catch (error) {
      await this.close();
      throw error;
    }
    this.#app = createApp(this);
    this.#state = "started";
  }

  /**
   * Serves the dashboard over HTTP.
   *
   * @throws {DashboardListenError} when the port is taken or a non-loopback bind has no token.
   */
  async listen(options: ListenOptions = {}): Promise<HttpServer> {
    if (this.#state !== "started") throw new Error("Call start() before listen()");
    if (this.#server) throw new Error("The dashboard is already listening");
    const hostname = options.hostname ?? "127.0.0.1";
    const port = options.port ?? 8080;
    try {
      validateToken(hostname, this.#options.token ?? null);
    } catch (error) {
      throw new DashboardListenError((error as Error).message);
    }
    try {
      this.#server = await runtime.serve({ hostname, port, fetch: (r) => this.fetch(r) });
    } catch (error) {
      const e = error as Error & { code?: string };
      if (e.name === "AddrInUse" || e.code === "EADDRINUSE" || /in use/i.test(e.message)) {
        throw new DashboardListenError(
          `Port ${port} on ${hostname} is already in use (another dashboard or program listens there). Stop it, or pick another port (port 0 picks a free one).`,
          { cause: error, suggestion: `${hostname}:${port + 1}` },
        );
      }
      if (e.name === "PermissionDenied" || e.code === "EACCES" || /permission/i.test(e.message)) {
        throw new DashboardListenError(
          `Not allowed to listen on ${hostname}:${port}: ports below 1024 need privileges. Pick a port above 1024.`,
          { cause: error, suggestion: `${hostname}:8080` },
        );
      }
      throw new DashboardListenError(
        `Can't listen on ${hostname}:${port}: ${e.message}`,
        { cause: error },
      );
    }
    return this.#server;
  }

  /** The base URL once listening, e.g. `http://127.0.0.1:8080`. */
  get url(): string | null {
    if (!this.#server) return null;
    const h = this.#server.hostname.includes(":")
      ? `[${this.#server.hostname}]`
      : this.#server.hostname;
    return `http://${h}:${this.#server.port}`;
  }

  /** Answers one request. */
  async fetch(request: Request): Promise<Response> {
    if (!this.#app || this.#state !== "started") {
      return new Response("The dashboard is not running.\n", { status: 503 });
    }
    return await this.#app.fetch(request);
  }

  /** Stops serving, ends the live streams, and closes KV if it opened it. */
  async close(): Promise<void> {
    if (this.#state === "closed") return;
    this.#state = "closed";
    for (const end of [...this.#streams]) end();
    this.#streams.clear();
    if (this.#pulseTimer) clearTimeout(this.#pulseTimer);
    if (this.#idleTimer) clearInterval(this.#idleTimer);
    for (const off of this.#unsubscribe) off();
    this.#unsubscribe = [];
    this.#pulseListeners.clear();
    await this.#server?.shutdown();
    this.#server = null;
    for (const q of this.#queues.values()) q.close();
    if (this.#ownsHandle) this.#handle?.close();
  }

  /** Same as {@linkcode close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ── what pages and routes use ──────────────────────────────────────────────────────────

  /** The served queues' stores, in the order given (or `default` first, then by name). */
  get stores(): readonly Store[] {
    return this.#stores;
  }

  /**
   * Finds queues created since the last look, when the dashboard shows every queue: at most
   * one skip scan a second, shared by all requests.
   */
  refreshQueues(): Promise<void> {
    if (!this.#discover || this.#state !== "started") return Promise.resolve();
    return this.#cached("queues", 1000, async () => {
      for (const name of await listQueuesDefaultFirst(this.#handle!.kv)) {
        if (!this.#queues.has(name)) await this.#addQueue(name);
      }
    });
  }

  async #addQueue(name: string): Promise<void> {
    const clock = this.#options.clock;
    const queue = await openQueue({ kv: this.#handle!, name, ...(clock ? { clock } : {}) });
    this.#queues.set(name, queue);
    this.#schedules.set(name, new Schedules(queue.store));
    this.#stores.push(queue.store);
    if (this.#pulseListeners.size > 0) {
      this.#unsubscribe.push(queue.store.changes.subscribe(() => this.#schedulePulse()));
    }
  }

  /** The KV handle. */
  get handle(): KvHandle {
    return this.#handle!;
  }

  /** The queue API of a served queue. */
  queue(name: string): Queue | undefined {
    return this.#queues.get(name);
  }

  /** The schedules of a served queue. */
  schedules(name: string): Schedules | undefined {
    return this.#schedules.get(name);
  }

  /** The credential and CSRF checks. */
  get guard(): Guard {
    return this.#guard;
  }

  /** Whether actions are hidden and refused. */
  get readOnly(): boolean {
    return this.#options.readOnly ?? false;
  }

  /** The trace link template (`{traceId}`), or null. */
  get traceUrl(): string | null {
    return this.#options.traceUrl ?? null;
  }

  get searchBudgetMs(): number {
    return this.#options.searchBudgetMs ?? 700;
  }

  /** The host's health as given by the `health` option; healthy when there is none. */
  health(): HealthReport {
    const check = this.#options.health;
    if (!check) return { ok: true, reason: "" };
    try {
      const out = check();
      if (typeof out === "boolean") {
        return { ok: out, reason: out ? "" : "the host reports itself unhealthy" };
      }
      return { ok: out.ok, reason: out.ok ? "" : out.reason };
    } catch (error) {
      return { ok: false, reason: `the health check failed: ${(error as Error).message}` };
    }
  }

  /** Now. */
  now(): number {
    return (this.#options.clock ?? Date.now)();
  }

  /** The overview chart of a queue (see `readChart`), read once a second per queue and range. */
  chartData(store: Store, range: ChartRange = "1h"): Promise<ChartData> {
    return this.#cached(
      `chart:${store.queue}:${range}`,
      1000,
      () => readChart(store, range, this.now()),
    );
  }

  #cached<T>(key: string, ttl: number, load: () => Promise<T>): Promise<T> {
    const hit = this.#caches.get(key) as Cached<T> | undefined;
    const now = performance.now();
    if (hit && now - hit.at < ttl) return hit.value;
    const value = load();
    this.#caches.set(key, { at: now, value });
    value.catch(() => this.#caches.delete(key));
    return value;
  }

  /** Cluster heartbeats under every served queue (shared by viewers for a second). */
  clusters(): Promise<ClusterView[]> {
    return this.#cached(
      "clusters",
      1000,
      () => readClusters(this.#stores, (m) => console.error(`kvq dashboard: ${m}`)),
    );
  }

  /** The newest finished tasks of a queue (shared by viewers for two seconds). */
  recent(store: Store): Promise<TaskRecord[]> {
    return this.#cached(`recent:${store.queue}`, 2000, () => recentFinished(store));
  }

  /** A render shared by the viewers of one page for half a live interval. */
  sharedRender<T>(key: string, load: () => Promise<T>): Promise<T> {
    return this.#cached(`render:${key}`, Math.max(200, this.liveInterval / 2), load);
  }

  /** The least time between live updates. */
  get liveInterval(): number {
    return this.#options.liveInterval ?? 1000;
  }

  /**
   * Calls `listener` when KV may have changed (at most once per live interval) and every idle
   * interval anyway. Returns the unsubscribe.
   */
  onPulse(listener: () => void): () => void {
    this.#pulseListeners.add(listener);
    if (this.#pulseListeners.size === 1) {
      for (const store of this.#stores) {
        this.#unsubscribe.push(store.changes.subscribe(() => this.#schedulePulse()));
      }
      this.#idleTimer = setInterval(
        () => this.#schedulePulse(),
        this.#options.idleInterval ?? 5000,
      );
    }
    return () => {
      this.#pulseListeners.delete(listener);
      if (this.#pulseListeners.size === 0) {
        for (const off of this.#unsubscribe) off();
        this.#unsubscribe = [];
        if (this.#idleTimer) clearInterval(this.#idleTimer);
        this.#idleTimer = null;
      }
    };
  }

  #schedulePulse(): void {
    if (this.#pulseTimer || this.#state !== "started") return;
    const wait = Math.max(0, this.#lastPulse + this.liveInterval - performance.now());
    this.#pulseTimer = setTimeout(() => {
      this.#pulseTimer = null;
      this.#lastPulse = performance.now();
      for (const fn of [...this.#pulseListeners]) fn();
    }, wait);
  }

  /** Registers a live stream so {@linkcode close} can end it. Returns the unregister. */
  trackStream(end: () => void): () => void {
    this.#streams.add(end);
    return () => this.#streams.delete(end);
  }
}
