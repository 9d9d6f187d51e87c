import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { TaskId } from "../../src/task/task_id.ts";
import { WORDS } from "../../src/task/words.ts";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test("TaskId.create() makes a UUIDv7 whose time is now", () => {
  const before = Date.now();
  const id = TaskId.create();
  assert.match(id.id, UUID_V7);
  assert.ok(id.createdAt.getTime() >= before && id.createdAt.getTime() <= Date.now());
  assert.equal(String(id), id.id);
});

test("TaskId.create() ids sort in creation order", () => {
  const ids = Array.from({ length: 1000 }, () => TaskId.create().id);
  assert.deepEqual([...ids].sort(), ids);
  assert.equal(new Set(ids).size, ids.length);
});

test("TaskId digest is the SHA-256 of the id in lowercase hex", () => {
  const id = TaskId.create();
  assert.equal(id.digest, createHash("sha256").update(id.id).digest("hex"));
  assert.match(id.digest, /^[0-9a-f]{64}$/);
});

test("TaskId name is four words chosen by the first four digest bytes", () => {
  const id = TaskId.create();
  const words = id.name.split("-");
  assert.equal(words.length, 4);
  words.forEach((word, i) => {
    assert.equal(word, WORDS[parseInt(id.digest.slice(i * 2, i * 2 + 2), 16)]);
  });
  assert.ok(TaskId.isHumanName(id.name));
  assert.equal(TaskId.parse(id.id).name, id.name, "the name is a function of the id");
});

test("TaskId values are frozen", () => {
  const id = TaskId.create();
  assert.ok(Object.isFrozen(id));
  assert.throws(() => {
    (id as { name: string }).name = "x";
  }, TypeError);
});

test("TaskId.parse() accepts any case and normalises to lowercase", () => {
  const id = TaskId.create();
  assert.equal(TaskId.parse(id.id.toUpperCase()).id, id.id);
  assert.ok(TaskId.isId(id.id.toUpperCase()));
});

test("TaskId.parse() throws a TypeError naming a bad id", () => {
  for (
    const bad of [
      "not-an-id",
      "",
      "0193a7c2-5b1e-4f00-8a3b-1c2d3e4f5a6b", // a v4 UUID
      "0193a7c2-5b1e-7f00-8a3b-1c2d3e4f5a6", // one digit short
      " 0193a7c2-5b1e-7f00-8a3b-1c2d3e4f5a6b",
    ]
  ) {
    assert.throws(() => TaskId.parse(bad), (error: Error) => {
      assert.ok(error instanceof TypeError);
      assert.ok(error.message.includes(JSON.stringify(bad)), error.message);
      return true;
    });
  }
  assert.throws(() => TaskId.parse(42 as unknown as string), /received 42/);
  assert.throws(() => TaskId.parse(null as unknown as string), /received null/);
});
