/**
 * The dashboard's options, and its listen address.
 *
 * @module
 */
import type { KvHandle } from "../store/store.ts";

/** Options for {@linkcode Dashboard}. */
export interface DashboardOptions {
  /**
   * A KV path, `:memory:`, URL, or an opened {@linkcode KvHandle} (not closed by the dashboard).
   * @default KVQ_KV, else `.kvq/kv.sqlite3`
   */
  kv?: string | KvHandle;
  /**
   * The queues to show; the first is the default view. Without it the dashboard shows every
   * queue the store holds (as `kvq info` lists them), `default` first, and finds new ones as they
   * appear.
   * @default every queue in the store
   */
  queues?: string[];
  /**
   * The access token. Required to listen on anything but loopback; when set, every page needs
   * it (Bearer header or login cookie).
   * @default null (loopback only, no login)
   */
  token?: string | null;
  /**
   * Hide every action and refuse them with 403.
   * @default false
   */
  readOnly?: boolean;
  /**
   * The least time between two live updates of one page, in ms.
   * @default 1000
   */
  liveInterval?: number;
  /**
   * Milliseconds between live updates when nothing changed (times and ages move on).
   * @default 5000
   */
  idleInterval?: number;
  /** Where "now" comes from. @default Date.now */
  clock?: () => number;
  /**
   * What `/readyz` consults besides its own KV read: the health of the process hosting the
   * dashboard, e.g. `() => cluster.kvHealthy` inside a cluster. `false` or `{ ok: false, reason }`
   * answers 503 (with the reason); a throw counts as unhealthy.
   * @default none (the KV read alone decides)
   */
  health?: () => boolean | { ok: boolean; reason: string };
  /** The task page links a trace id there: a URL holding `{traceId}`. @default none */
  traceUrl?: string | null;
  /**
   * How long a search page scans before it answers, in ms; the page script streams the rest.
   * @default 700
   */
  searchBudgetMs?: number;
}

/** Options for {@linkcode Dashboard.listen}. */
export interface ListenOptions {
  /**
   * The address to bind.
   * @default "127.0.0.1"
   */
  hostname?: string;
  /**
   * The port; 0 picks a free one.
   * @default 8080
   */
  port?: number;
}

/** Raised when the dashboard can't listen; the message says what to do. */
export class DashboardListenError extends Error {
  /** Another `HOST:PORT` worth trying, when there is one. */
  readonly suggestion: string | null;
  constructor(message: string, options?: ErrorOptions & { suggestion?: string }) {
    super(message, options);
    this.name = "DashboardListenError";
    this.suggestion = options?.suggestion ?? null;
  }
}

/** Parses `HOST:PORT`, `:PORT`, `PORT` or `[v6]:PORT`. @throws {TypeError} naming the value. */
export function parseListen(text: string): { hostname: string; port: number } {
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):)?(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) {
    throw new TypeError(
      `Listen address must be HOST:PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:8080: received ${
        JSON.stringify(text)
      }`,
    );
  }
  const host = (m[1] ?? "").replace(/^\[|\]$/g, "");
  return { hostname: host === "" ? "127.0.0.1" : host, port };
}
