import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { relative } from "node:path";
import process from "node:process";
import { loadTaskModules, lookupTask } from "../../src/task/loader.ts";
import { TaskNotFoundError } from "../../src/task/errors.ts";

const fixture = (name: string) => new URL(`../fixtures/${name}`, import.meta.url).href;

test("loadTaskModules() collects named function exports, skipping default and non-functions", async () => {
  const tasks = await loadTaskModules([fixture("tasks.ts")]);
  assert.ok(tasks instanceof Map);
  assert.equal(typeof tasks.get("add"), "function");
  assert.equal(tasks.has("notATask"), false);
  assert.equal(tasks.has("default"), false);
  assert.equal(tasks.get("add")!(2, 3), 5);
});

test("loadTaskModules() accepts file paths relative to the current directory", async () => {
  const path = relative(process.cwd(), fileURLToPath(fixture("more_tasks.ts")));
  const tasks = await loadTaskModules([path]);
  assert.deepEqual([...tasks.keys()].sort(), ["add", "multiply"]);
});

test("loadTaskModules() merges modules and allows the same function re-exported", async () => {
  const tasks = await loadTaskModules([fixture("tasks.ts"), fixture("other_tasks.ts")]);
  assert.equal(typeof tasks.get("greet"), "function");
  assert.equal(typeof tasks.get("echo"), "function");
});

test("loadTaskModules() refuses two modules exporting the same task name, naming both", async () => {
  await assert.rejects(
    loadTaskModules([fixture("tasks.ts"), fixture("more_tasks.ts")]),
    (error: Error) => {
      assert.match(error.message, /"add"/);
      assert.match(error.message, /tasks\.ts/);
      assert.match(error.message, /more_tasks\.ts/);
      return true;
    },
  );
});

test("loadTaskModules() names the file and the cause when a module fails to import", async () => {
  await assert.rejects(loadTaskModules([fixture("broken_tasks.ts")]), (error: Error) => {
    assert.match(error.message, /broken_tasks\.ts/);
    assert.match(error.message, /broken module on purpose/);
    return true;
  });
  await assert.rejects(loadTaskModules([fixture("no_such_module.ts")]), /no_such_module\.ts/);
});

test("lookupTask() only resolves exported task names", async () => {
  const tasks = await loadTaskModules([fixture("tasks.ts")]);
  assert.equal(lookupTask(tasks, "add"), tasks.get("add"));
  const hostile = [
    "../../x",
    "./tasks.ts",
    "constructor",
    "__proto__",
    "toString",
    "hasOwnProperty",
    "notATask",
    "default",
    "",
    "add ",
  ];
  for (const name of hostile) {
    assert.throws(() => lookupTask(tasks, name), TaskNotFoundError, name);
  }
  assert.throws(() => lookupTask(tasks, 42), TaskNotFoundError);
});

test("TaskNotFoundError names the missing task and lists about ten exported ones", () => {
  const names = Array.from({ length: 14 }, (_, i) => `task${String(i).padStart(2, "0")}`);
  const error = new TaskNotFoundError("mail", names);
  assert.equal(error.name, "TaskNotFoundError");
  assert.equal(error.taskName, "mail");
  assert.match(error.message, /"mail"/);
  assert.match(error.message, /task00, .*task09 and 4 more/);
  assert.match(new TaskNotFoundError("x", []).message, /export no functions/);
});
