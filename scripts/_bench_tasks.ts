/**
 * Tasks of the benchmark suite beside `examples/tasks.ts` (see `bench.ts`).
 *
 * @module
 */
import { appendFileSync } from "node:fs";
import { taskContext } from "../src/task/context.ts";

/**
 * Appends `id attempt` to `path` as it starts, then waits `ms` milliseconds: W3 tells a task
 * that ran twice (two lines) from one whose attempt a crash counted without running it (one).
 */
export async function logRun(path: string, ms: number): Promise<void> {
  const { id, attempt } = taskContext();
  appendFileSync(path, `${id} ${attempt}\n`);
  await new Promise((resolve) => setTimeout(resolve, ms));
}
