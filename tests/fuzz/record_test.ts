import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import {
  CorruptRecordError,
  FIELD_NAMES,
  type TaskFields,
  TaskRecord,
} from "../../src/task/record.ts";
import { CorruptScheduleError, ScheduleRecord } from "../../src/schedule/record.ts";
import { formatKey, TASK_STATES } from "../../src/store/keys.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { getSchedule } from "../../src/schedule/get.ts";
import { check, fc, SEED, timed } from "./_fuzz.ts";
import { fields } from "../task/_helpers.ts";
import { report } from "../_report.ts";

const encoder = new TextEncoder();

/** A finished record's fields with every kind of value set. */
function taskFields(): TaskFields {
  return fields({
    group: "g",
    timeout: 1000,
    maxAttempts: 3,
    attempt: 1,
    state: "succeeded",
    startedAt: 1_700_000_000_100,
    stoppedAt: 1_700_000_000_200,
    resultJson: '{"sum":3}',
    errors: [{ name: "Error", message: "first try" }],
    cluster: "c",
    worker: "kvq-w1.g1",
    progress: { fraction: 0.5, at: 1_700_000_000_150 },
  });
}

function scheduleObject(name: string): Record<string, unknown> {
  return {
    v: 1,
    name,
    func: "tick",
    args: [1],
    type: "cron",
    minutes: null,
    cron: "*/5 * * * * *",
    tz: "Europe/Berlin",
    repeats: -1,
    anchor: 1_700_000_000_000,
    nextRun: 1_700_000_005_000,
    catchUp: false,
    intendedDateArg: true,
    queue: "default",
    timeout: null,
    maxAttempts: null,
    priority: 0,
    lastTaskId: null,
    lastRunAt: null,
    noOverlap: false,
    paused: false,
    createdAt: 1_700_000_000_000,
  };
}

const SCHEDULE_FIELDS = Object.keys(scheduleObject("x")).filter((k) => k !== "v");

/** Values of every kind, including huge strings and deep nesting. */
const wild: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: fc.jsonValue() },
  { weight: 2, arbitrary: fc.anything() },
  { weight: 1, arbitrary: fc.constantFrom("x".repeat(300_000), "é".repeat(100_000)) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1, max: 20_000 }).map((depth) => {
      let v: unknown = 1;
      for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v };
      return v;
    }),
  },
);

/** A JSON text nested `depth` deep: `[[[…]]]`. */
function deepText(depth: number, open: string, close: string): string {
  return open.repeat(depth) + "1" + close.repeat(depth);
}

/** Bytes that may or may not be a record: random, truncated, mutated, huge or deeply nested. */
function storedBytes(
  valid: () => Uint8Array,
  object: () => Record<string, unknown>,
  fields: readonly string[],
) {
  return fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.string({ unit: "binary", maxLength: 200 }).map((s) => encoder.encode(s)),
    fc.nat().map((n) => {
      const bytes = valid();
      return bytes.slice(0, n % (bytes.length + 1));
    }),
    fc.tuple(fc.constantFrom(...fields, "v", "result", "extra"), wild).map(([field, value]) => {
      const o = object();
      o[field] = value;
      return encoder.encode(safeStringify(o));
    }),
    fc.tuple(fc.constantFrom(...fields), fc.boolean()).map(([field, drop]) => {
      const o = object();
      if (drop) delete o[field];
      else o[field] = undefined;
      return encoder.encode(JSON.stringify(o));
    }),
    fc.integer({ min: 1, max: 50_000 }).map((depth) =>
      encoder.encode(
        `{"v":1,"args":${deepText(depth, "[", "]")},"result":${deepText(depth, '{"a":', "}")}}`,
      )
    ),
    fc.nat({ max: 255 }).map((b) => {
      const bytes = valid();
      bytes[b % bytes.length] = b;
      return bytes;
    }),
  );
}

/** JSON.stringify that gives up on what can't be stringified (cycles, BigInt, deep nesting). */
function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value) ?? "null";
  } catch {
    return "null";
  }
}

test(
  `TaskRecord.decode() of fuzzed bytes gives a record or a CorruptRecordError naming the key (seed ${SEED})`,
  { timeout: 60_000 },
  async () => {
    const base = new TaskRecord(taskFields());
    const key = ["kvq", "default", "task", base.id];
    const object = () => JSON.parse(base.toJsonText()) as Record<string, unknown>;
    const bytes = storedBytes(() => base.encode().slice(), object, FIELD_NAMES);
    let records = 0;
    await check(
      "TaskRecord.decode",
      fc.property(
        fc.oneof({ weight: 9, arbitrary: bytes }, { weight: 1, arbitrary: fc.anything() }),
        (value) => {
          try {
            const record = timed(2000, "decode", () => TaskRecord.decode(key, value));
            assert.ok(record instanceof TaskRecord);
            assert.equal(record.id, base.id);
            assert.ok(TASK_STATES.includes(record.state));
            // What decodes must encode and decode to the same record.
            const text = record.toJsonText();
            assert.equal(TaskRecord.decode(key, record.encode()).toJsonText(), text);
            records++;
          } catch (error) {
            if (!(error instanceof CorruptRecordError)) throw error;
            assert.deepEqual(error.key, key);
            assert.ok(error.message.includes(formatKey(key)), error.message);
          }
        },
      ),
      1000,
    );
    report(`fuzz: TaskRecord.decode: ${records} inputs decoded as records`);
  },
);

test(
  `ScheduleRecord.decode() of fuzzed bytes gives a record or a CorruptScheduleError naming the key (seed ${SEED})`,
  { timeout: 60_000 },
  async () => {
    const key = ["kvq", "default", "schedule", "nightly"];
    const object = () => scheduleObject("nightly");
    const bytes = storedBytes(
      () => encoder.encode(JSON.stringify(object())),
      object,
      SCHEDULE_FIELDS,
    );
    let records = 0;
    await check(
      "ScheduleRecord.decode",
      fc.property(
        fc.oneof({ weight: 9, arbitrary: bytes }, { weight: 1, arbitrary: fc.anything() }),
        (value) => {
          try {
            const record = timed(2000, "decode", () => ScheduleRecord.decode(key, value));
            assert.ok(record instanceof ScheduleRecord);
            assert.equal(record.name, "nightly");
            const text = new TextDecoder().decode(record.encode());
            assert.equal(
              new TextDecoder().decode(ScheduleRecord.decode(key, record.encode()).encode()),
              text,
            );
            records++;
          } catch (error) {
            if (!(error instanceof CorruptScheduleError)) throw error;
            assert.deepEqual(error.key, key);
            assert.ok(error.message.includes(formatKey(key)), error.message);
          }
        },
      ),
      1000,
    );
    report(`fuzz: ScheduleRecord.decode: ${records} inputs decoded as records`);
  },
);

test(`queue.fetch() and getSchedule() of fuzzed stored values touch nothing else in the store (seed ${SEED})`, async () => {
  const queue = await openQueue({ kv: ":memory:" });
  try {
    const kv = queue.store.kv;
    const known = await queue.enqueue({ func: "add", args: [1, 2], group: "kept" });
    const snapshot = async () => {
      const out: string[] = [];
      for await (const e of kv.list({ prefix: [] })) {
        if (e.key[2] === "fuzz" || (e.key[2] === "schedule" && e.key[3] === "fuzzed")) continue;
        out.push(
          `${formatKey(e.key)} ${e.versionstamp} ${
            safeStringify(e.value instanceof Uint8Array ? [...e.value] : String(e.value))
          }`,
        );
      }
      return out;
    };
    const before = await snapshot();
    const base = new TaskRecord(taskFields());
    const taskObject = () => JSON.parse(base.toJsonText()) as Record<string, unknown>;
    const bytes = fc.oneof(
      storedBytes(() => base.encode().slice(), taskObject, FIELD_NAMES),
      storedBytes(
        () => encoder.encode(JSON.stringify(scheduleObject("fuzzed"))),
        () => scheduleObject("fuzzed"),
        SCHEDULE_FIELDS,
      ),
    );
    await check(
      "stored values via queue.fetch and getSchedule",
      fc.asyncProperty(bytes, async (value) => {
        if (value.length > 60_000) return; // a KV value holds at most 64 KiB
        const taskKey = queue.store.keys.task(base.id);
        await kv.set(taskKey, value);
        try {
          const record = await queue.fetch(base.id);
          assert.ok(record === null || record.id === base.id);
        } catch (error) {
          if (!(error instanceof CorruptRecordError)) throw error;
          assert.deepEqual(error.key, taskKey);
        }
        await kv.delete(taskKey);
        const scheduleKey = ["kvq", "default", "schedule", "fuzzed"];
        await kv.set(scheduleKey, value);
        try {
          await getSchedule(queue.store, "fuzzed");
        } catch (error) {
          if (!(error instanceof CorruptScheduleError)) throw error;
          assert.deepEqual(error.key, scheduleKey);
        }
        await kv.delete(scheduleKey);
      }),
      500,
    );
    assert.deepEqual(await snapshot(), before);
    assert.deepEqual((await queue.fetch(known.id))?.fields(), known.record.fields());
  } finally {
    queue.close();
  }
});
