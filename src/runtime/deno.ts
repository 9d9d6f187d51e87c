/**
 * The Deno adapter: `Deno.openKv` and `Deno.serve`.
 *
 * @module
 */
import type { HttpServer, Kv, KvU64, Runtime, ServeOptions } from "./types.ts";

/** kvq's runtime adapter for Deno. */
export const denoRuntime: Runtime = {
  name: "deno",
  version: Deno.version.deno,
  workerFiresClose: false,
  terminateStopsCpu: false,
  openKv(location: string): Promise<Kv> {
    return Deno.openKv(location);
  },
  u64(value: bigint): KvU64 {
    return new Deno.KvU64(value);
  },
  selfCommand(entry: string) {
    return { cmd: Deno.execPath(), args: ["run", "-A", "--unstable-kv", entry] };
  },
  cron(name: string, schedule: string, handler: () => Promise<void> | void): boolean {
    const cron = (Deno as unknown as { cron?: (n: string, s: string, h: () => unknown) => unknown })
      .cron;
    if (typeof cron !== "function") return false;
    try {
      cron(name, schedule, handler);
      return true;
    } catch {
      return false;
    }
  },
  serve(options: ServeOptions): Promise<HttpServer> {
    return new Promise((resolve, reject) => {
      try {
        const server = Deno.serve({
          hostname: options.hostname,
          port: options.port,
          ...(options.signal ? { signal: options.signal } : {}),
          onListen: ({ hostname, port }) => {
            resolve({ hostname, port, shutdown: () => server.shutdown() });
          },
          onError: (error) => {
            console.error("kvq: request failed:", error);
            return new Response("Internal error", { status: 500 });
          },
        }, options.fetch);
      } catch (error) {
        reject(error);
      }
    });
  },
};
