/**
 * A typed task registry: name the task functions once and enqueue them by name with their
 * argument types checked by the compiler.
 *
 * @example
 * ```ts
 * import * as tasksModule from "./tasks.ts";
 * const tasks = defineTasks(tasksModule);
 * await tasks.enqueue(queue, "sendEmail", "ada@example.com");   // checked
 * const app = tasks.bind(queue);
 * await app.enqueue("resize", "cat.png", 800);                  // checked
 * await queue.enqueueMany([tasks.call("resize", "a.png", 64, { priority: -1 })]);
 * ```
 *
 * @module
 */
import type { EnqueueCall, Enqueued, Queue } from "./queue.ts";
import type { EnqueueOptions } from "../store/spec.ts";

// deno-lint-ignore no-explicit-any
type AnyTask = (...args: any[]) => unknown;

/** A task's arguments as a JSON call takes them (what it gets as `this` is not an argument). */
export type TaskArgs<F extends AnyTask> = Parameters<F>;

/** A typed handle on a set of tasks. */
export interface TaskRegistry<T extends Record<string, AnyTask>> {
  /** The task names. */
  readonly names: readonly (keyof T & string)[];
  /** Enqueues task `name` on `queue` with arguments checked against its function. */
  enqueue<K extends keyof T & string>(
    queue: Queue,
    name: K,
    ...args: TaskArgs<T[K]>
  ): Promise<Enqueued>;
  /** A checked call with options, for `enqueue`, `enqueueMany`, `enqueueIn` and `chain`. */
  call<K extends keyof T & string>(
    name: K,
    args: TaskArgs<T[K]>,
    options?: EnqueueOptions,
  ): EnqueueCall & { func: K };
  /** The registry bound to one queue. */
  bind(queue: Queue): BoundTasks<T>;
}

/** A registry bound to a queue. */
export interface BoundTasks<T extends Record<string, AnyTask>> {
  /** Enqueues task `name` with arguments checked against its function. */
  enqueue<K extends keyof T & string>(name: K, ...args: TaskArgs<T[K]>): Promise<Enqueued>;
  /** Enqueues task `name` with options. */
  enqueueWith<K extends keyof T & string>(
    name: K,
    args: TaskArgs<T[K]>,
    options: EnqueueOptions,
  ): Promise<Enqueued>;
}

/**
 * Declares the tasks an app enqueues. Pass the task module's namespace or an object of the
 * functions; non-function values are refused.
 *
 * @throws {TypeError} naming a value that is not a function.
 */
export function defineTasks<T extends Record<string, AnyTask>>(tasks: T): TaskRegistry<T> {
  if (typeof tasks !== "object" || tasks === null) {
    throw new TypeError(`defineTasks() takes an object of task functions: received ${tasks}`);
  }
  const names = Object.keys(tasks).filter((n) => n !== "default") as (keyof T & string)[];
  for (const name of names) {
    if (typeof tasks[name] !== "function") {
      throw new TypeError(`Task ${JSON.stringify(name)} is not a function: ${typeof tasks[name]}`);
    }
  }
  const known = (name: string) => {
    if (!names.includes(name as keyof T & string)) {
      throw new TypeError(
        `Unknown task ${JSON.stringify(name)}: defineTasks() knows ${names.join(", ")}`,
      );
    }
  };
  const registry: TaskRegistry<T> = {
    names: Object.freeze([...names]),
    async enqueue(queue, name, ...args) {
      known(name);
      return await queue.enqueue({ func: name, args });
    },
    call(name, args, options = {}) {
      known(name);
      return { ...options, func: name, args };
    },
    bind(queue) {
      return {
        enqueue: (name, ...args) => registry.enqueue(queue, name, ...args),
        enqueueWith: async (name, args, options) =>
          await queue.enqueue(registry.call(name, args, options)),
      };
    },
  };
  return Object.freeze(registry);
}
