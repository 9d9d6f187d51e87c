/**
 * The one seam between kvq and the JavaScript runtime it runs on. Deno and Bun differ in how KV
 * is opened, how Web Workers end, and whether `terminate()` stops a CPU-bound worker; everything
 * else in kvq talks to this interface, never to `Deno.*` or `Bun.*`.
 *
 * @module
 */

/** The KV handle kvq uses: Deno's own, or `@deno/kv`'s, which has the same shape. */
export type Kv = Deno.Kv;

/** A 64-bit unsigned counter value as the runtime's KV library represents it. */
export type KvU64 = Deno.KvU64;

/** What kvq needs from the runtime it runs on. */
export interface Runtime {
  /** `"deno"` or `"bun"`. */
  readonly name: "deno" | "bun";
  /** The runtime's version, for `kvq info` and benchmark reports. */
  readonly version: string;
  /**
   * Whether a Web Worker fires `close` by itself when it ends. Deno's never do, so the worker
   * handle synthesises the event.
   */
  readonly workerFiresClose: boolean;
  /**
   * Whether `Worker.terminate()` stops a worker that is stuck in CPU-bound code. It does not on
   * Deno: the thread keeps burning a core until the process exits.
   */
  readonly terminateStopsCpu: boolean;
  /** Opens a KV store: a file path, `":memory:"`, or an `http(s)://` KV Connect URL. */
  openKv(location: string): Promise<Kv>;
  /** Makes a KV counter value. */
  u64(value: bigint): KvU64;
  /** The command line that runs this same program again: runtime binary plus entry arguments. */
  selfCommand(entry: string): { cmd: string; args: string[] };
  /**
   * Registers a cron job where the runtime has one (`Deno.cron`); returns false where it has
   * none (Bun, or Deno without `--unstable-cron`).
   */
  cron(name: string, schedule: string, handler: () => Promise<void> | void): boolean;
  /** Starts an HTTP server; resolves once it listens. */
  serve(options: ServeOptions): Promise<HttpServer>;
}

/** Options for {@linkcode Runtime.serve}. */
export interface ServeOptions {
  /** Host name or address to bind. */
  hostname: string;
  /** Port to bind; 0 picks a free one. */
  port: number;
  /** The request handler. */
  fetch: (request: Request) => Response | Promise<Response>;
  /** Aborting stops the server. */
  signal?: AbortSignal;
}

/** A running HTTP server. */
export interface HttpServer {
  /** The port the server listens on. */
  readonly port: number;
  /** The host name it is bound to. */
  readonly hostname: string;
  /** Stops accepting connections and resolves once closed. */
  shutdown(): Promise<void>;
}
