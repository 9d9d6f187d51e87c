/**
 * JSON payloads: what a task's arguments and result may hold, checked before anything is stored.
 *
 * @module
 */

/** A value that survives a JSON round trip unchanged. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/**
 * The deepest nesting of arrays and objects a task's arguments or result may have. Deeper values
 * overflow the call stack of JSON and of this check (about 5,000 levels on a default stack), so
 * they are refused with this limit named instead.
 */
export const MAX_JSON_DEPTH = 512;

/**
 * Checks that `value` survives `JSON.stringify` unchanged and returns its JSON text. Refuses
 * what JSON would silently drop or break: functions, symbols, BigInt, non-finite numbers, cycles,
 * `Map`/`Set`, and `undefined` inside arrays.
 *
 * @param what names the value in the error, e.g. `"argument 2"`.
 * @throws {TypeError} naming the value and the path inside it.
 * @throws {RangeError} when it nests deeper than {@linkcode MAX_JSON_DEPTH}.
 */
export function toJson(value: unknown, what: string): string {
  checkJson(value, what, new Set());
  return JSON.stringify(value);
}

function checkJson(value: unknown, path: string, seen: Set<object>): void {
  const refuse = (why: string): never => {
    throw new TypeError(`${capitalise(path)} is not JSON-serialisable: ${why}`);
  };
  switch (typeof value) {
    case "string":
    case "boolean":
      return;
    case "number":
      if (!Number.isFinite(value)) refuse(`${value} is not a finite number`);
      return;
    case "bigint":
      return refuse(`BigInt ${value}n (pass it as a string)`);
    case "function":
      return refuse(`a function (${(value as { name?: string }).name || "anonymous"})`);
    case "symbol":
      return refuse(`a symbol`);
    case "undefined":
      return refuse(`undefined (use null)`);
  }
  if (value === null) return;
  const object = value as object;
  if (seen.has(object)) refuse(`it contains a cycle`);
  if (seen.size >= MAX_JSON_DEPTH) {
    const where = path.length > 80 ? `${path.slice(0, 60)}…` : path;
    throw new RangeError(
      `${
        capitalise(where)
      } nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels, the most kvq stores; flatten it, or store the data elsewhere and pass a reference`,
    );
  }
  if (object instanceof Map || object instanceof Set) {
    refuse(`a ${object.constructor.name} (convert it to an array or object)`);
  }
  if (typeof (object as { toJSON?: unknown }).toJSON === "function") {
    // Date and friends: check what JSON will really write.
    const json = (object as { toJSON(key: string): unknown }).toJSON("");
    if (json === undefined) refuse(`its toJSON() returns undefined`);
    if (json !== object) checkJson(json, path, seen);
    return;
  }
  if (object instanceof Number || object instanceof String || object instanceof Boolean) {
    // Boxed primitives are written as their value.
    checkJson(object.valueOf(), path, seen);
    return;
  }
  seen.add(object);
  if (Array.isArray(object)) {
    for (let i = 0; i < object.length; i++) {
      if (!(i in object)) refuse(`index ${i} is a hole (JSON writes null there)`);
      checkJson(object[i], `${path}[${i}]`, seen);
    }
  } else {
    for (const [key, item] of Object.entries(object)) {
      if (item === undefined) continue; // JSON drops it, as callers expect
      checkJson(item, `${path}.${key}`, seen);
    }
  }
  seen.delete(object);
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
