/**
 * `test()` for the whole suite: node:test's, with a deadline. A test that does not end within
 * its `timeout` (default {@linkcode TEST_TIMEOUT_MS}) fails with its name, the phase it was in
 * and what the probes registered by helpers report (a cluster's state and counts), so a hang
 * costs two minutes and says where it was, rather than running until CI's limit.
 *
 * @module
 */
import { test as nodeTest, type TestContext, type TestOptions } from "node:test";

/** A test's deadline unless it names one; Bun's `--timeout` (120 s) is longer, so this reports. */
export const TEST_TIMEOUT_MS = 90_000;

type TestFn = (t: TestContext) => unknown;

/** What helpers report about the test running now, read only when it hangs. */
const probes = new Set<() => string>();
let phase = "";

/**
 * Registers `probe`, read if the running test hangs; returns its removal. Helpers that own a
 * cluster or a child process register one for as long as they hold it.
 */
export function onHang(probe: () => string): () => void {
  probes.add(probe);
  return () => probes.delete(probe);
}

/** Names the phase the running test is in (for its hang report). */
export function inPhase(name: string): void {
  phase = name;
}

/** Declares a test, as node:test's `test()`, that fails with a report if it outruns its time. */
export function test(name: string, fn: TestFn): void;
export function test(name: string, options: TestOptions, fn: TestFn): void;
export function test(name: string, a: TestFn | TestOptions, b?: TestFn): void {
  const options: TestOptions = typeof a === "function" ? {} : a;
  const fn = typeof a === "function" ? a : b!;
  const limit = typeof options.timeout === "number" ? options.timeout : TEST_TIMEOUT_MS;
  // The runner's own timeout only backs this one up.
  nodeTest(name, { ...options, timeout: limit + 10_000 }, (t) => withDeadline(name, limit, t, fn));
}

async function withDeadline(name: string, limit: number, t: TestContext, fn: TestFn) {
  phase = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(hangReport(name, limit))), limit);
  });
  try {
    await Promise.race([Promise.resolve().then(() => fn(t)), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function hangReport(name: string, limit: number): string {
  const lines = [`"${name}" did not end within ${limit} ms${phase ? `, in phase "${phase}"` : ""}`];
  for (const probe of probes) {
    try {
      lines.push(`  ${probe()}`);
    } catch (error) {
      lines.push(`  (a probe failed: ${(error as Error).message})`);
    }
  }
  return lines.join("\n");
}
