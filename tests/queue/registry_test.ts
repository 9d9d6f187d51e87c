import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { defineTasks } from "../../src/queue/registry.ts";
import * as controlTasks from "../fixtures/control_tasks.ts";
import { tempQueue } from "../store/_helpers.ts";

test("defineTasks() enqueues by name with arguments the compiler checks", async () => {
  await using t = await tempQueue();
  const tasks = defineTasks({ add: controlTasks.add, echo: controlTasks.echo });
  assert.deepEqual(tasks.names, ["add", "echo"]);
  const a = await tasks.enqueue(t.queue, "add", 1, 2);
  assert.deepEqual(a.record.args, [1, 2]);
  const app = tasks.bind(t.queue);
  const b = await app.enqueue("echo", "x", 1);
  assert.equal(b.record.func, "echo");
  const c = await app.enqueueWith("add", [3, 4], { priority: -1 });
  assert.equal(c.record.priority, -1);
  const call = tasks.call("add", [5, 6], { group: "g" });
  assert.deepEqual(call, { group: "g", func: "add", args: [5, 6] });
  const [d] = await t.queue.enqueueMany([call]);
  assert.equal(d!.record.group, "g");

  // These lines must stay compile errors (deno check tests/).
  // @ts-expect-error: unknown task name
  await assert.rejects(tasks.enqueue(t.queue, "nope", 1), /Unknown task "nope"/);
  // @ts-expect-error: wrong argument type
  await tasks.enqueue(t.queue, "add", "1", 2);
  // @ts-expect-error: missing argument
  await app.enqueue("add", 1);
  // @ts-expect-error: wrong argument type in a call
  tasks.call("add", [1, "2"]);
});

test("defineTasks() works with a module namespace and refuses non-functions", () => {
  const tasks = defineTasks(controlTasks);
  assert.ok(tasks.names.includes("halfway"));
  assert.throws(() => defineTasks({ a: 1 } as never), /Task "a" is not a function/);
});
