/**
 * The waits behind `Queue.waitChain` and `Queue.iterResult`: a chain's status once it ends, and
 * an iter's collated results once every member finished, woken by changes.
 *
 * @module
 */
import type { JsonValue } from "../task/json.ts";
import { type ChainStatus, chainStatus } from "../store/chain.ts";
import { collate, getIter, iterDone, iterOutcomes } from "../store/iter.ts";
import type { Store } from "../store/store.ts";
import { IterFailedError, type IterResultOptions, type ResultOptions } from "./types.ts";
import { waitFor } from "./waiters.ts";

/** Waits up to `options.wait` ms for chain `id` to end, and returns its status. */
export async function waitChain(
  store: Store,
  id: string,
  options: ResultOptions = {},
): Promise<ChainStatus> {
  let status = await chainStatus(store, id);
  if (status.state !== "running") return status;
  await waitFor(store, async () => {
    status = await chainStatus(store, id);
    return status.state !== "running";
  }, options);
  return status;
}

/**
 * The collated results of iter `id`, in input order, once every member finished (waiting up to
 * `options.wait` ms); `undefined` when not finished by then.
 *
 * @throws {IterFailedError} when a member failed or was cancelled (unless `failures`).
 */
export async function iterResult(
  store: Store,
  id: string,
  options: IterResultOptions = {},
): Promise<(JsonValue | null)[] | undefined> {
  const iter = await getIter(store, id);
  const done = async () => (await iterDone(store, id)) >= iter.total;
  if (!(await done()) && !(await waitFor(store, done, options))) return undefined;
  const outcomes = await iterOutcomes(store, iter);
  if (!options.failures) {
    const bad = outcomes.findIndex((o) => o !== null && o.state !== "succeeded");
    if (bad >= 0) throw new IterFailedError(id, bad, outcomes[bad]!.state, outcomes[bad]!.error);
  }
  return collate(outcomes);
}
