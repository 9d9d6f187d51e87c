/**
 * Loads task modules and resolves task names against what they export.
 *
 * Security: a task name comes from a payload stored in KV, so it is untrusted. It is only ever
 * looked up in the `Map` that {@linkcode loadTaskModules} builds from the modules' own exports;
 * it is never passed to `import()`, evaluated, or resolved as a path. A `Map` (not an object) means
 * `__proto__`, `constructor` or `toString` cannot reach anything that was not exported.
 *
 * @module
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { TaskNotFoundError } from "./errors.ts";

/** A task: any function a task module exports by name. */
// deno-lint-ignore no-explicit-any
export type TaskFunction = (this: any, ...args: any[]) => unknown;

/**
 * Imports each task module and collects its named function exports as tasks. `default` is
 * skipped; non-function exports are ignored. File paths are resolved against the current
 * directory; `file:`, `http(s):`, `data:` and `jsr:`/`npm:` specifiers are imported as given.
 *
 * @throws {Error} naming the file, when a module fails to import, or when two modules export the
 *   same task name.
 * @example
 * ```ts
 * import { loadTaskModules } from "./loader.ts";
 * const tasks = await loadTaskModules(["./examples/tasks.ts"]);
 * [...tasks.keys()]; // ["add", ...]
 * ```
 */
export async function loadTaskModules(specifiers: string[]): Promise<Map<string, TaskFunction>> {
  const tasks = new Map<string, TaskFunction>();
  const origin = new Map<string, string>();
  const seen = new Set<string>();
  for (const specifier of specifiers) {
    const url = toModuleUrl(specifier);
    if (seen.has(url)) continue;
    seen.add(url);
    let namespace: Record<string, unknown>;
    try {
      namespace = await import(url);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`Cannot load task module ${specifier}: ${reason}`, { cause: error });
    }
    for (const name of Object.keys(namespace)) {
      if (name === "default") continue;
      const value = namespace[name];
      if (typeof value !== "function") continue;
      const previous = tasks.get(name);
      if (previous !== undefined && previous !== value) {
        throw new Error(
          `Task ${JSON.stringify(name)} is exported by both ${
            origin.get(name)
          } and ${specifier}; ` +
            "rename one of them",
        );
      }
      tasks.set(name, value as TaskFunction);
      if (!origin.has(name)) origin.set(name, specifier);
    }
  }
  return tasks;
}

/**
 * Returns the task called `name`, or throws {@linkcode TaskNotFoundError}. Only names present in
 * `tasks` resolve; nothing else about `name` is interpreted.
 */
export function lookupTask(tasks: ReadonlyMap<string, TaskFunction>, name: unknown): TaskFunction {
  const task = typeof name === "string" ? tasks.get(name) : undefined;
  if (task === undefined) throw new TaskNotFoundError(String(name), tasks.keys());
  return task;
}

function toModuleUrl(specifier: string): string {
  if (typeof specifier !== "string" || specifier === "") {
    throw new TypeError(`Task module must be a non-empty path or URL: received ${specifier}`);
  }
  // A scheme of two or more letters (so `C:\…` stays a path).
  if (/^[a-z][a-z0-9+.-]+:/i.test(specifier)) return specifier;
  return pathToFileURL(resolve(specifier)).href;
}
