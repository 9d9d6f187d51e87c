/**
 * Figures a test measured (throughput, recovery time, fuzz counts) are printed only with
 * `KVQ_TEST_REPORT=1`, so the suite's output shows failures and nothing else. A fuzz test's seed is
 * in its name, so a failure can be replayed without them.
 *
 * @module
 */
import process from "node:process";

/** Prints `text` when `KVQ_TEST_REPORT=1`. */
export function report(text: string): void {
  if (process.env.KVQ_TEST_REPORT === "1") console.log(text);
}
