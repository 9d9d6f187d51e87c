/**
 * Which queues a KV store holds, found without scanning their tasks.
 *
 * @module
 */
import { ROOT } from "./keys.ts";

/** The most queues `kvq info` and the dashboard discover by themselves; past it, name them. */
export const MAX_DISCOVERED_QUEUES = 1000;

/**
 * The distinct queue names in a KV store. Each queue is one prefix `["kvq", name]`, so the names
 * are found by a skip scan: read the first key under `["kvq"]`, then the first key after every
 * key of that queue (`["kvq", name + "\0"]`: queue names never hold NUL, and it sorts after any
 * `["kvq", name, …]`), and so on. That is one read of one key per queue, however many tasks
 * there are. Stops after `max` queues.
 */
export async function listQueueNames(
  kv: Deno.Kv,
  max = MAX_DISCOVERED_QUEUES,
): Promise<{ names: string[]; more: boolean }> {
  const names: string[] = [];
  let after: string | null = null;
  while (true) {
    const selector: Deno.KvListSelector = after === null
      ? { start: [ROOT, ""], end: [ROOT, false] }
      : { start: [ROOT, `${after}\0`], end: [ROOT, false] };
    let next: string | null = null;
    for await (const e of kv.list(selector, { limit: 1, consistency: "eventual" })) {
      // Strings sort before numbers, bigints and booleans: past the last string, no queue is left.
      if (typeof e.key[1] === "string") next = e.key[1];
    }
    if (next === null) return { names, more: false };
    if (names.length >= max) return { names, more: true };
    names.push(next);
    after = next;
  }
}
