/**
 * Finished records of a signed store carry the finished mark instead of their signature (see
 * `signDone`), so a final record set back to `queued` in KV does not verify as runnable.
 *
 * @module
 */
import { signDone } from "../task/signature.ts";
import type { TaskRecord } from "../task/record.ts";
import type { Store } from "./store.ts";

/** `record` as it is stored once final: with the finished mark when the store has a secret. */
export function sealFinished(store: Store, record: TaskRecord): TaskRecord {
  if (store.secrets === null || !record.finished || record.sig === null) return record;
  return record.signed(signDone(store.secrets, record.id));
}
