/**
 * The KV handle `openQueue` works on: one it is given, one around the app's own `Deno.Kv`, or one
 * it opens (the last two are the queue's to close).
 *
 * @module
 */
import { ensureSchema } from "../store/schema.ts";
import { KvHandle } from "../store/store.ts";
import type { OpenQueueOptions } from "./types.ts";

/** The handle for `options.kv`, and whether the queue owns it (closes it with itself). */
export async function queueHandle(
  options: OpenQueueOptions,
): Promise<{ handle: KvHandle; owned: boolean }> {
  const noNativeQueue = options.noNativeQueue ?? false;
  if (options.kv instanceof KvHandle) return { handle: options.kv, owned: false };
  if (typeof options.kv === "object" && options.kv !== null) {
    await ensureSchema(options.kv, "(the app's own KV)");
    const where = { location: ":app:", remote: false, path: null };
    return { handle: new KvHandle(options.kv, where, { noNativeQueue }), owned: true };
  }
  return { handle: await KvHandle.open({ kv: options.kv ?? null, noNativeQueue }), owned: true };
}
