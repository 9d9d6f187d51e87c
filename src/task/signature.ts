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

/** What a signature covers. */
export interface SignedFields {
  id: string;
  queue: string;
  func: string;
  hook: string | null;
  onFailure?: string | null;
  onTimeout?: string | null;
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
      [
        "kvq-sig-v1",
        fields.id,
        fields.queue,
        fields.func,
        fields.hook ?? "",
        fields.onFailure ?? "",
        fields.onTimeout ?? "",
        argsJson,
      ].join("\n"),
    )
    .digest();
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
  for (const secret of [secrets.current, ...secrets.old]) {
    const expected = mac(secret, fields, argsJson);
    if (given.length === expected.length && timingSafeEqual(given, expected)) return;
  }
  throw new SignatureError(
    `Task ${fields.id} (${fields.func}) has a signature that no secret of this cluster verifies: it was changed in KV, or signed with another secret. It was not run.`,
  );
}
