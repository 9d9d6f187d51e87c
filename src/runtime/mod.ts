/**
 * Picks the adapter for the runtime kvq runs on. Only this folder looks at `Deno` or `Bun`.
 *
 * @module
 */
import type { Runtime } from "./types.ts";

export type { HttpServer, Kv, KvU64, Runtime, ServeOptions } from "./types.ts";

/** Whether kvq runs on Deno. */
export const isDeno: boolean = "Deno" in globalThis;

/** The adapter for the current runtime. */
export const runtime: Runtime = isDeno
  ? (await import("./deno.ts")).denoRuntime
  : (await import("./bun.ts")).bunRuntime;
