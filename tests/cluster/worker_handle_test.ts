import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import {
  type RunRequest,
  type TaskDoneEvent,
  type TaskProgressEvent,
  WorkerHandle,
} from "../../src/cluster/worker_handle.ts";
import { WorkerCrashError } from "../../src/task/errors.ts";

const TASKS = new URL("../fixtures/tasks.ts", import.meta.url).href;
const BROKEN = new URL("../fixtures/broken_tasks.ts", import.meta.url).href;
const onLinux = existsSync("/proc/self/task");

let nextId = 0;

function request(func: string, args: unknown[] = [], extra: Partial<RunRequest> = {}): RunRequest {
  return {
    id: `t${++nextId}`,
    name: "calm-otter",
    func,
    args: JSON.stringify(args),
    attempt: 1,
    queue: "default",
    ...extra,
  };
}

async function started(slot = 1, generation = 1): Promise<WorkerHandle> {
  const worker = new WorkerHandle(slot, generation, { modules: [TASKS] });
  await worker.start();
  return worker;
}

/** Runs a task and resolves with its `task:done`; rejects if the worker exits first. */
function runTask(worker: WorkerHandle, task: RunRequest): Promise<TaskDoneEvent> {
  return new Promise((resolve, reject) => {
    const offDone = worker.on("task:done", (done) => {
      if (done.id !== task.id) return;
      offDone();
      offExit();
      resolve(done);
    });
    const offExit = worker.on("worker:exit", (exit) => {
      offDone();
      offExit();
      reject(new Error(`Worker exited (${exit.reason}) before task ${task.id} was done`));
    });
    worker.run(task);
  });
}

/** Resolves with the first `task:progress` of task `id`. */
function firstProgress(worker: WorkerHandle, id: string): Promise<TaskProgressEvent> {
  return new Promise((resolve) => {
    const off = worker.on("task:progress", (progress) => {
      if (progress.id !== id) return;
      off();
      resolve(progress);
    });
  });
}

function failure(done: TaskDoneEvent) {
  assert.equal(done.ok, false, `expected a failure, got ${JSON.stringify(done)}`);
  return done.error;
}

test("WorkerHandle.start() resolves with the exported task functions only", async () => {
  await using worker = new WorkerHandle(1, 1, { modules: [TASKS] });
  assert.equal(worker.state, "new");
  assert.equal(worker.name, "kvq-w1.g1");
  const funcs = await worker.start();
  assert.equal(worker.state, "idle");
  assert.ok(funcs.includes("add") && funcs.includes("waitAbort"));
  assert.ok(!funcs.includes("notATask"), "a non-function export is not a task");
  assert.ok(!funcs.includes("default"), "the default export is skipped");
  assert.deepEqual([...worker.funcs], funcs);
  if (onLinux) {
    assert.equal(typeof worker.tid, "number");
    const comm = readFileSync(`/proc/self/task/${worker.tid}/comm`, "utf8").trim();
    assert.equal(comm, "kvq-w1.g1", "the worker names its OS thread");
  }
});

test("WorkerHandle runs a task and reports its JSON result, heap and count", async () => {
  await using worker = await started();
  const done = await runTask(worker, request("add", [2, 3]));
  assert.deepEqual(done.ok && done.result, "5");
  assert.ok(done.heap > 0);
  assert.equal(worker.tasksRun, 1);
  assert.equal(worker.lastHeap, done.heap);
  assert.equal(worker.state, "idle");
  assert.equal(worker.inFlight.size, 0);
  const echoed = await runTask(worker, request("echo", ["a", { b: [1] }]));
  assert.equal(echoed.ok && echoed.result, '["a",{"b":[1]}]');
  const nothing = await runTask(worker, request("nothing"));
  assert.equal(nothing.ok && nothing.result, "null");
});

test("WorkerHandle binds this and taskContext() to the same context", async () => {
  await using worker = await started();
  const task = request("whoami", [], { attempt: 3, queue: "mail", name: "brave-fox" });
  const done = await runTask(worker, task);
  assert.ok(done.ok);
  assert.deepEqual(JSON.parse(done.result), {
    sameContext: true,
    id: task.id,
    name: "brave-fox",
    attempt: 3,
    queue: "mail",
    aborted: false,
  });
});

test("WorkerHandle reports a throwing task as ok:false with name, message and stack", async () => {
  await using worker = await started();
  const error = failure(await runTask(worker, request("fail", ["bad input"])));
  assert.equal(error.name, "RangeError");
  assert.equal(error.message, "bad input");
  assert.match(error.stack ?? "", /fail/);
  const thrown = failure(await runTask(worker, request("failString")));
  assert.deepEqual(thrown, { name: "Error", message: "plain string" });
  assert.equal(worker.state, "idle", "a task failure does not harm the worker");
});

test("WorkerHandle refuses unknown, hostile and non-function task names with TaskNotFoundError", async () => {
  await using worker = await started();
  for (const func of ["missing", "../../x", "constructor", "__proto__", "toString", "notATask"]) {
    const error = failure(await runTask(worker, request(func)));
    assert.equal(error.name, "TaskNotFoundError", func);
    assert.ok(error.message.includes(JSON.stringify(func)), error.message);
    assert.match(error.message, /add/, "the message lists what the modules export");
  }
  const ok = await runTask(worker, request("add", [1, 1]));
  assert.ok(ok.ok);
});

test("WorkerHandle fails a task whose arguments are not a JSON array or whose result is not JSON", async () => {
  await using worker = await started();
  const notArray = failure(await runTask(worker, { ...request("add"), args: '{"a":1}' }));
  assert.equal(notArray.name, "TypeError");
  assert.match(notArray.message, /JSON array/);
  const notJson = failure(await runTask(worker, { ...request("add"), args: "[1," }));
  assert.equal(notJson.name, "TypeError");
  const bigint = failure(await runTask(worker, request("notJson")));
  assert.equal(bigint.name, "TypeError");
  assert.match(bigint.message, /notJson/);
});

test("WorkerHandle emits task:progress as fractions", async () => {
  await using worker = await started();
  const seen: TaskProgressEvent[] = [];
  worker.on("task:progress", (progress) => seen.push(progress));
  const task = request("progress");
  const done = await runTask(worker, task);
  assert.equal(done.ok && done.result, '"ok"');
  // Reports closer than 50 ms apart are coalesced; the first and the last always arrive.
  assert.deepEqual(seen[0], { id: task.id, fraction: 0.25, message: "a quarter" });
  assert.deepEqual(seen.at(-1), { id: task.id, fraction: 1, message: "all done" });
  const bad = failure(await runTask(worker, request("badProgress")));
  assert.equal(bad.name, "RangeError");
  assert.match(bad.message, /1\.5/);
});

test("WorkerHandle.abort() reaches the task's signal with a typed reason", async () => {
  await using worker = await started();
  const timeout = request("waitAbort");
  const cancel = request("waitAbort");
  const waiting = [firstProgress(worker, timeout.id), firstProgress(worker, cancel.id)];
  const results = [runTask(worker, timeout), runTask(worker, cancel)];
  await Promise.all(waiting);
  assert.equal(worker.inFlight.size, 2, "two tasks run at once");
  assert.equal(worker.state, "busy");
  assert.equal(worker.abort(timeout.id, "timeout"), true);
  assert.equal(worker.abort(cancel.id, "cancel"), true);
  assert.equal(worker.abort("not-running", "cancel"), false);
  const [timedOut, cancelled] = await Promise.all(results);
  assert.equal(failure(timedOut!).name, "TaskTimeoutError");
  assert.equal(failure(cancelled!).name, "TaskCancelledError");
  assert.equal(worker.state, "idle");
});

test("WorkerHandle emits one worker:exit when a task calls self.close()", async () => {
  const worker = await started();
  const exits: unknown[] = [];
  worker.on("worker:exit", (exit) => exits.push(exit));
  const task = request("closeSelf");
  worker.run(task);
  const exit = await worker.exited;
  assert.equal(exit.reason, "close");
  assert.deepEqual(exit.inFlight, [task.id]);
  assert.equal(worker.state, "exited");
  assert.equal(worker.inFlight.size, 0);
  await worker.terminate();
  assert.equal(exits.length, 1);
  assert.throws(() => worker.run(request("add")), /exited/);
});

test("WorkerHandle emits one worker:exit with the code when a task calls process.exit()", async () => {
  const worker = await started();
  let exits = 0;
  worker.on("worker:exit", () => exits++);
  const task = request("exitSelf");
  worker.run(task);
  const exit = await worker.exited;
  assert.equal(exit.reason, "close");
  assert.equal(exit.code, 7);
  assert.deepEqual(exit.inFlight, [task.id]);
  await worker.terminate();
  assert.equal(exits, 1);
});

test("WorkerHandle emits one worker:exit when a task throws asynchronously", async () => {
  const worker = await started();
  let exits = 0;
  worker.on("worker:exit", () => exits++);
  const task = request("asyncCrash");
  worker.run(task);
  const exit = await worker.exited;
  assert.equal(exit.reason, "error");
  assert.deepEqual(exit.inFlight, [task.id]);
  assert.match(exit.error?.message ?? "", /boom/);
  await worker.terminate();
  assert.equal(exits, 1);
});

test("WorkerHandle.terminate() reports the tasks in flight", async () => {
  const worker = await started();
  const task = request("hang");
  worker.run(task);
  const exit = await worker.terminate("timeout");
  assert.equal(exit.reason, "terminated");
  assert.equal(exit.detail, "timeout");
  assert.deepEqual(exit.inFlight, [task.id]);
  assert.equal(await worker.terminate(), exit, "terminating twice gives the same exit");
});

test("WorkerHandle.drain() lets running tasks finish, then exits", async () => {
  const worker = await started();
  const task = request("waitAbort");
  const progressed = firstProgress(worker, task.id);
  const result = runTask(worker, task);
  await progressed;
  const drained = worker.drain();
  assert.equal(worker.state, "draining");
  assert.throws(() => worker.run(request("add")), /draining/);
  worker.abort(task.id, "cancel");
  assert.equal(failure(await result).name, "TaskCancelledError");
  const exit = await drained;
  assert.equal(exit.reason, "terminated");
  assert.equal(exit.detail, "recycled");
  assert.deepEqual(exit.inFlight, []);
});

test("WorkerHandle.start() rejects with the module error when a task module fails to load", async () => {
  const worker = new WorkerHandle(2, 1, { modules: [BROKEN] });
  await assert.rejects(worker.start(), (error: Error) => {
    assert.match(error.message, /broken_tasks\.ts/);
    assert.match(error.message, /broken module on purpose/);
    return true;
  });
  const exit = await worker.exited;
  assert.equal(exit.reason, "init-error");
  assert.deepEqual(exit.inFlight, []);
  assert.equal(worker.state, "exited");
});

test("WorkerHandle.start() rejects with WorkerCrashError when the entry module cannot run", async () => {
  const entry = new URL("../fixtures/broken_tasks.ts", import.meta.url);
  const worker = new WorkerHandle(3, 1, { modules: [TASKS], entry });
  await assert.rejects(worker.start(), WorkerCrashError);
  assert.equal((await worker.exited).reason, "error");
});

test("WorkerHandle validates its slot and refuses to run before start", () => {
  assert.throws(() => new WorkerHandle(-1, 1, { modules: [] }), RangeError);
  assert.throws(() => new WorkerHandle(1000, 1, { modules: [] }), RangeError);
  assert.throws(() => new WorkerHandle(1, 1.5, { modules: [] }), RangeError);
  const worker = new WorkerHandle(999, 99999, { modules: [] });
  assert.equal(worker.name, "kvq-w999.g99999");
  assert.ok(worker.name.length <= 15);
  assert.throws(() => worker.run(request("add")), /new/);
});

test("WorkerHandle with concurrency 1 keeps tasks sent early waiting in the worker, in order, and an aborted waiting task ends without running", async () => {
  const worker = new WorkerHandle(1, 1, { modules: [TASKS], concurrency: 1 });
  await worker.start();
  try {
    const ends: string[] = [];
    worker.on("task:done", (done) => ends.push(done.id));
    // The first task waits for its signal; the others are sent while it runs.
    const first = request("waitAbort");
    const second = request("echo", ["second"]);
    const third = request("echo", ["third"]);
    const firstDone = runTask(worker, first);
    const secondDone = runTask(worker, second);
    const thirdDone = runTask(worker, third);
    assert.equal(worker.inFlight.size, 3);
    await firstProgress(worker, first.id);
    assert.deepEqual(ends, [], "nothing may start while the first task runs");
    // Aborting a task that waits in the worker ends it at once, without running it.
    worker.abort(second.id, "cancel");
    const cancelled = await secondDone;
    assert.equal(cancelled.ok, false);
    assert.equal(!cancelled.ok && cancelled.error.name, "TaskCancelledError");
    assert.deepEqual(ends, [second.id]);
    worker.abort(first.id, "cancel");
    assert.equal((await firstDone).ok, false);
    const last = await thirdDone;
    assert.deepEqual(last.ok && JSON.parse(last.result), ["third"]);
    assert.deepEqual(ends, [second.id, first.id, third.id]);
    assert.equal(worker.state, "idle");
  } finally {
    await worker.terminate();
  }
});
