/**
 * KV keys as text, for messages: `["kvq","default","task","01…"]`, a bigint as `5n`, bytes by
 * their length.
 *
 * @module
 */

/** Renders a key for messages: `["kvq","default","task","0193…"]`. */
export function formatKey(key: Deno.KvKey): string {
  return `[${
    key.map((part) =>
      typeof part === "bigint"
        ? `${part}n`
        : part instanceof Uint8Array
        ? `<${part.length} bytes>`
        : JSON.stringify(part)
    ).join(",")
  }]`;
}
