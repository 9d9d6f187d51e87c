/**
 * The forms an enqueue call takes (a task function, its name, or `{ func, args, ...options }`)
 * turned into one spec, and what enqueue returns for each stored task.
 *
 * @module
 */
import type { TaskRecord } from "../task/record.ts";
import type { EnqueueSpec } from "../store/spec.ts";
import type { EnqueueCall, Enqueued } from "./types.ts";

/** What enqueue returns for `record` (`existing`: ids stored by an earlier call). */
export function enqueued(record: TaskRecord, existing: Set<string>): Enqueued {
  return { id: record.id, name: record.name, record, existing: existing.has(record.id) };
}

/**
 * One spec from an enqueue call.
 *
 * @throws {TypeError} when the call is none of the forms.
 */
export function toSpec(first: unknown, rest: unknown[]): EnqueueSpec {
  if (typeof first === "function") return { func: first.name, args: rest };
  if (typeof first === "string") return { func: first, args: rest };
  if (typeof first === "object" && first !== null && "func" in first) {
    const { func, args, ...options } = first as EnqueueCall;
    return {
      func: typeof func === "function" ? func.name : func,
      // Left out means no arguments; anything else must be an array (null is refused).
      args: args === undefined ? [] : args,
      options,
    };
  }
  throw new TypeError(
    `enqueue() takes a task function, its name, or { func, args, ...options }: received ${typeof first}`,
  );
}
