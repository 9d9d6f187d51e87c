/**
 * Optional payload signing for a KV shared by many hosts. Every task record a process with a
 * secret creates carries an HMAC-SHA-256 over what decides what runs (id, queue, function,
 * arguments, hooks); a cluster with a secret refuses a task whose signature does not verify,
 * marks it failed with {@linkcode SignatureError}, and never runs it. Rotation: a cluster also
 * accepts signatures made with any of its old secrets.
 *
 * @module
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import process from "node:process";

/** The secrets of one process: the one it signs with, and old ones it still accepts. */
export interface Secrets {
  /** Signs new tasks and verifies. */
  current: string;
  /** Verify only (key rotation). */
  old: readonly string[];
}

/** A task whose signature is missing or does not verify. Never retried. */
export class SignatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SignatureError";
  }
}

/**
 * What a task's signature covers: what runs (id, queue, function, arguments, hooks) and how
 * (priority, timeout, attempts, backoff, whether the result is kept, cache time).
 */
export interface SignedFields {
  id: string;
  queue: string;
  func: string;
  hook: string | null;
  onFailure?: string | null;
  onTimeout?: string | null;
  priority: number;
  timeout: number | null;
  maxAttempts: number | null;
  backoff: unknown;
  save: boolean;
  cached?: number | null;
}

const MIN_SECRET_LENGTH = 16;

/**
 * Resolves secrets from an option, else from `KVQ_SECRET` (and `KVQ_OLD_SECRETS`, comma
 * separated). A list's first entry is the current secret. Null when none is set.
 *
 * @throws {RangeError} for a secret shorter than 16 characters.
 */
export function resolveSecrets(
  input?: string | readonly string[] | Secrets | null,
): Secrets | null {
  let list: string[];
  if (input === null) return null;
  if (input === undefined) {
    const current = process.env.KVQ_SECRET?.trim();
    if (!current) return null;
    list = [current, ...(process.env.KVQ_OLD_SECRETS ?? "").split(",")];
  } else if (typeof input === "string") list = input.split(",");
  else if (Array.isArray(input)) list = [...input];
  else list = [(input as Secrets).current, ...(input as Secrets).old];
  list = list.map((s) => s.trim()).filter(Boolean);
  if (list.length === 0) return null;
  for (const s of list) {
    if (s.length < MIN_SECRET_LENGTH) {
      throw new RangeError(
        `A signing secret must be at least ${MIN_SECRET_LENGTH} characters: received one of ${s.length}. Generate one with: openssl rand -hex 32`,
      );
    }
  }
  return { current: list[0]!, old: list.slice(1) };
}

function mac(secret: string, fields: SignedFields, argsJson: string): Buffer {
  return createHmac("sha256", secret)
    .update(
      JSON.stringify([
        "kvq-sig-v2",
        fields.id,
        fields.queue,
        fields.func,
        fields.hook ?? null,
        fields.onFailure ?? null,
        fields.onTimeout ?? null,
        fields.priority,
        fields.timeout,
        fields.maxAttempts,
        fields.backoff ?? null,
        fields.save,
        fields.cached ?? null,
      ]),
    )
    .update("\n")
    .update(argsJson)
    .digest();
}

/**
 * The mark a cluster with a secret puts on a task's final record in place of its signature: it
 * verifies as "finished", never as runnable, so a finished record set back to `queued` in KV is
 * refused. A retry by a process with the secret signs it runnable again.
 */
function doneMac(secret: string, id: string): Buffer {
  return jsonMac(secret, ["kvq-done-v1", id]);
}

/** HMAC-SHA-256 of `parts` as JSON: unambiguous, whatever the strings hold. */
function jsonMac(secret: string, parts: readonly unknown[]): Buffer {
  return createHmac("sha256", secret).update(JSON.stringify(parts)).digest();
}

/** The finished mark of task `id` with the current secret. */
export function signDone(secrets: Secrets, id: string): string {
  return doneMac(secrets.current, id).toString("hex");
}

function matches(given: Buffer, make: (secret: string) => Buffer, secrets: Secrets): boolean {
  for (const secret of [secrets.current, ...secrets.old]) {
    const expected = make(secret);
    if (given.length === expected.length && timingSafeEqual(given, expected)) return true;
  }
  return false;
}

/** The hex signature of a task with the current secret. */
export function sign(secrets: Secrets, fields: SignedFields, argsJson: string): string {
  return mac(secrets.current, fields, argsJson).toString("hex");
}

/**
 * Checks a task's signature against the current and old secrets, in constant time.
 *
 * @throws {SignatureError} saying why it was refused.
 */
export function verify(
  secrets: Secrets,
  fields: SignedFields,
  argsJson: string,
  sig: string | null,
): void {
  if (!sig) {
    throw new SignatureError(
      `Task ${fields.id} (${fields.func}) is not signed, and this cluster only runs signed tasks: enqueue it with --secret or KVQ_SECRET`,
    );
  }
  const given = Buffer.from(sig, "hex");
  if (matches(given, (secret) => mac(secret, fields, argsJson), secrets)) return;
  if (matches(given, (secret) => doneMac(secret, fields.id), secrets)) {
    throw new SignatureError(
      `Task ${fields.id} (${fields.func}) had already finished and was set back to run in KV; it was not run again. Retry it with the secret (kvq retry --secret, or KVQ_SECRET) to run it again.`,
    );
  }
  throw new SignatureError(
    `Task ${fields.id} (${fields.func}) has a signature that no secret of this cluster verifies: it was changed in KV (what runs or how: function, arguments, hooks, priority, timeout, attempts, backoff), or signed with another secret, or by a release before signatures covered all of these. It was not run.`,
  );
}

/** What a schedule's signature covers: everything that decides what runs, and when. */
export interface SignedSchedule {
  queue: string;
  name: string;
  func: string;
  args: readonly unknown[];
  type: string;
  minutes: number | null;
  cron: string | null;
  tz: string;
  anchor: number;
  catchUp: boolean;
  intendedDateArg: boolean;
  timeout: number | null;
  maxAttempts: number | null;
  priority: number;
  noOverlap: boolean;
}

function scheduleMac(secret: string, s: SignedSchedule): Buffer {
  return jsonMac(secret, [
    "kvq-schedule-v1",
    s.queue,
    s.name,
    s.func,
    s.args,
    s.type,
    s.minutes,
    s.cron,
    s.tz,
    s.anchor,
    s.catchUp,
    s.intendedDateArg,
    s.timeout,
    s.maxAttempts,
    s.priority,
    s.noOverlap,
  ]);
}

/** The hex signature of a schedule with the current secret. */
export function signSchedule(secrets: Secrets, schedule: SignedSchedule): string {
  return scheduleMac(secrets.current, schedule).toString("hex");
}

/**
 * Checks a schedule's signature against the current and old secrets, in constant time. A
 * cluster with a secret fires only schedules that pass; it never signs for one that does not.
 *
 * @throws {SignatureError} saying why it was refused and how to fix it.
 */
export function verifySchedule(
  secrets: Secrets,
  schedule: SignedSchedule,
  sig: string | null,
): void {
  const fix =
    `It does not fire until it is added again by a process with the secret (kvq schedule add … --replace --secret, or KVQ_SECRET).`;
  if (!sig) {
    throw new SignatureError(
      `Schedule ${
        JSON.stringify(schedule.name)
      } of queue ${schedule.queue} is not signed, and this cluster only fires signed schedules. ${fix}`,
    );
  }
  if (matches(Buffer.from(sig, "hex"), (secret) => scheduleMac(secret, schedule), secrets)) return;
  throw new SignatureError(
    `Schedule ${
      JSON.stringify(schedule.name)
    } of queue ${schedule.queue} has a signature that no secret of this cluster verifies: it was changed in KV, or signed with another secret. ${fix}`,
  );
}

/** What a chain's signature covers: its id, queue and every step (func, args, options). */
export interface SignedChain {
  id: string;
  queue: string;
  passResult: boolean;
  steps: readonly { func: string; args: readonly unknown[]; options: unknown }[];
}

function chainMac(secret: string, c: SignedChain): Buffer {
  return jsonMac(secret, [
    "kvq-chain-v1",
    c.id,
    c.queue,
    c.passResult,
    c.steps.map((step) => [step.func, step.args, step.options]),
  ]);
}

/** The hex signature of a chain with the current secret. */
export function signChain(secrets: Secrets, chain: SignedChain): string {
  return chainMac(secrets.current, chain).toString("hex");
}

/**
 * Checks a chain's signature before its next step is created.
 *
 * @throws {SignatureError} saying why the chain's steps were refused.
 */
export function verifyChain(secrets: Secrets, chain: SignedChain, sig: string | null): void {
  if (!sig) {
    throw new SignatureError(
      `Chain ${chain.id} is not signed, and this cluster only creates steps of signed chains: create it with --secret or KVQ_SECRET`,
    );
  }
  if (matches(Buffer.from(sig, "hex"), (secret) => chainMac(secret, chain), secrets)) return;
  throw new SignatureError(
    `Chain ${chain.id} has steps that no secret of this cluster verifies: they were changed in KV, or signed with another secret. Its next step was not created.`,
  );
}
