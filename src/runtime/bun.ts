/**
 * The Bun adapter: KV through the npm `@deno/kv` package, HTTP through `Bun.serve`.
 *
 * `@deno/kv` on Bun has no V8 value codec of its own. kvq stores every value as bytes and sends
 * queue doorbells as short ASCII strings, so the package's limited serializer (strings, null,
 * booleans) is all it needs.
 *
 * @module
 */
import { KvU64 as NpmKvU64, makeLimitedV8Serializer, openKv } from "@deno/kv";
import process from "node:process";
import { speedUpNapiKv } from "./bun_fast_kv.ts";
import { decodeV8String } from "./v8_string.ts";
import type { HttpServer, Kv, KvU64, Runtime, ServeOptions } from "./types.ts";

interface BunServer {
  port: number;
  hostname: string;
  stop(closeActive?: boolean): Promise<void> | void;
}
interface BunGlobal {
  version: string;
  serve(options: {
    hostname: string;
    port: number;
    fetch: (request: Request) => Response | Promise<Response>;
    idleTimeout?: number;
  }): BunServer;
}

const bun = (globalThis as unknown as { Bun: BunGlobal }).Bun;

/** kvq's runtime adapter for Bun. */
export const bunRuntime: Runtime = {
  name: "bun",
  version: bun.version,
  workerFiresClose: true,
  terminateStopsCpu: true,
  async openKv(location: string): Promise<Kv> {
    const limited = makeLimitedV8Serializer();
    const kv = await openKv(location, {
      encodeV8: limited.encodeV8,
      // Doorbells a Deno process enqueued are strings in V8's newer format (see v8_string.ts).
      decodeV8: (bytes: Uint8Array) => {
        try {
          return limited.decodeV8(bytes);
        } catch (error) {
          const text = decodeV8String(bytes);
          if (text === null) throw error;
          return text;
        }
      },
    });
    // A local file's messages to the native binding go through kvq's own codec (see there).
    speedUpNapiKv(kv);
    return kv as unknown as Kv;
  },
  u64(value: bigint): KvU64 {
    return new NpmKvU64(value) as unknown as KvU64;
  },
  selfCommand(entry: string) {
    const exe = process.execPath;
    // A `bun build --compile` binary is its own entry point.
    const compiled = !/\/bun(\.exe)?$/.test(exe) || entry.startsWith("/$bunfs/");
    return { cmd: exe, args: compiled ? [] : [entry] };
  },
  cron(): boolean {
    return false;
  },
  serve(options: ServeOptions): Promise<HttpServer> {
    const server = bun.serve({
      hostname: options.hostname,
      port: options.port,
      fetch: options.fetch,
      idleTimeout: 0,
    });
    const handle: HttpServer = {
      port: server.port,
      hostname: server.hostname,
      shutdown: async () => {
        await server.stop(true);
      },
    };
    options.signal?.addEventListener("abort", () => void handle.shutdown(), { once: true });
    return Promise.resolve(handle);
  },
};
