/**
 * Shared set-up of the fuzz tests: one seed per run (from `FUZZ_SEED`, else the time), printed
 * in each test's name so a failure can be replayed, and a count of the inputs tried.
 *
 * @module
 */
import fc from "fast-check";
import process from "node:process";
import { report } from "../_report.ts";

/** The seed of this run: `FUZZ_SEED=123 deno test -A tests/fuzz/` replays a run. */
export const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);

/** Runs `property` with {@linkcode SEED} for `numRuns` inputs, and logs how many were tried. */
export async function check<T>(
  label: string,
  property: fc.IProperty<T> | fc.IAsyncProperty<T>,
  numRuns: number,
): Promise<number> {
  const details = await fc.check(property as fc.IAsyncProperty<T>, { seed: SEED, numRuns });
  if (details.failed) {
    const example = fc.stringify(details.counterexample);
    const error = details.errorInstance as Error | undefined;
    throw new Error(
      `${label} failed after ${details.numRuns} inputs (seed ${SEED}, path ${details.counterexamplePath}): ${
        error?.stack ?? error
      }\nCounterexample (${example.length} characters): ${example.slice(0, 1500)}`,
    );
  }
  report(`fuzz: ${label}: ${details.numRuns} inputs (seed ${SEED})`);
  return details.numRuns;
}

/** Calls `f` and throws if it took longer than `ms` (a decoder must never hang). */
export function timed<T>(ms: number, what: string, f: () => T): T {
  const t0 = performance.now();
  let result: T;
  try {
    result = f();
  } catch (error) {
    const took = performance.now() - t0;
    if (took > ms) throw new Error(`${what} took ${took.toFixed(0)} ms, then threw ${error}`);
    throw error;
  }
  const took = performance.now() - t0;
  if (took > ms) throw new Error(`${what} took ${took.toFixed(0)} ms`);
  return result;
}

export { fc };
