/**
 * Task identity: a UUIDv7 id (time-ordered, so keys sort by creation), its hex digest, and a
 * human name of four words. Computed once and frozen, unlike Django Q's humanhash, which is
 * recomputed wherever a name is shown.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { v7 as uuidv7 } from "uuid";
import { WORDS } from "./words.ts";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const HUMAN_NAME = /^[a-z]+-[a-z]+-[a-z]+-[a-z]+$/;

/**
 * A task's identity. Use {@linkcode TaskId.create} for a new one and {@linkcode TaskId.parse}
 * for one read from input.
 *
 * @example
 * ```ts
 * const id = TaskId.create();
 * console.log(id.id, id.name); // 0193…, "tango-alpha-nine-river"
 * ```
 */
export class TaskId {
  /** The UUIDv7 string. */
  readonly id: string;
  /** SHA-256 of the id, as lowercase hex. */
  readonly digest: string;
  /** Four words from the digest, e.g. `tango-alpha-nine-river`. */
  readonly name: string;

  private constructor(id: string) {
    this.id = id;
    this.digest = createHash("sha256").update(id).digest("hex");
    this.name = humanName(this.digest);
    Object.freeze(this);
  }

  /** A new id for a task created now. */
  static create(): TaskId {
    return new TaskId(uuidv7());
  }

  /**
   * The id of call `index` of an idempotent batch: a UUIDv7 of the batch's start time, the
   * index in the bits after it (so the batch keeps its order), and the rest from a hash of `seed`
   * and the index. The same seed, time and index give the same id, so a retried batch finds the
   * tasks it stored before.
   */
  static derived(at: number, seed: string, index: number): TaskId {
    if (!Number.isSafeInteger(index) || index < 0 || index >= 2 ** 32) {
      throw new RangeError(`A batch index must be a whole number below 2^32: received ${index}`);
    }
    const hash = BigInt(
      `0x${createHash("sha256").update(`${seed}\n${index}`).digest("hex").slice(0, 12)}`,
    );
    const time = at.toString(16).padStart(12, "0").slice(-12);
    const randA = (0x7000 | (index >>> 20)).toString(16).padStart(4, "0");
    const randB = ((2n << 62n) | (BigInt(index & 0xfffff) << 42n) | (hash & ((1n << 42n) - 1n)))
      .toString(16).padStart(16, "0");
    const hex = `${time}${randA}${randB}`;
    return new TaskId(
      `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
        hex.slice(20)
      }`,
    );
  }

  /**
   * Parses an id string.
   *
   * @throws {TypeError} when `text` is not a UUIDv7.
   */
  static parse(text: string): TaskId {
    if (typeof text !== "string" || !UUID_V7.test(text.toLowerCase())) {
      throw new TypeError(
        `Task id must be a UUIDv7 like 0193a7c2-5b1e-7f00-8a3b-1c2d3e4f5a6b: received ${
          JSON.stringify(text)
        }`,
      );
    }
    return new TaskId(text.toLowerCase());
  }

  /** Whether `text` is a well-formed task id. */
  static isId(text: string): boolean {
    return UUID_V7.test(text.toLowerCase());
  }

  /** Whether `text` has the shape of a human task name. */
  static isHumanName(text: string): boolean {
    return HUMAN_NAME.test(text);
  }

  /** The time the id was created, from its UUIDv7 timestamp. */
  get createdAt(): Date {
    return new Date(parseInt(this.id.slice(0, 8) + this.id.slice(9, 13), 16));
  }

  /** The id string. */
  toString(): string {
    return this.id;
  }
}

function humanName(digest: string): string {
  const words: string[] = [];
  for (let i = 0; i < 4; i++) {
    words.push(WORDS[parseInt(digest.slice(i * 2, i * 2 + 2), 16)]!);
  }
  return words.join("-");
}
