import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { Cluster } from "../../src/cluster/cluster.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { Schedules } from "../../src/schedule/api.ts";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { kvq, tempDir } from "../cli/_helpers.ts";
import { startKvq } from "../cluster/_process.ts";
import { withDashboard } from "../web/_helpers.ts";

test("enqueue() refuses times no date can hold, and timeouts a timer can't hold, giving the range", async () => {
  using dir = tempDir();
  await using queue = await openQueue({ kv: dir.kv });
  for (const delay of [9007199254740991, 1e300, -1, Infinity]) {
    await assert.rejects(
      queue.enqueue({ func: "add", args: [], delay }),
      /Option delay of add must be milliseconds from 0 to \d+/,
      String(delay),
    );
  }
  await assert.rejects(
    queue.enqueue({ func: "add", args: [], eta: 9e15 }),
    /Option eta of add must be from 1970-01-01T00:00:00Z to \+275760-09-13/,
  );
  await assert.rejects(
    queue.enqueue({ func: "add", args: [], timeout: 2 ** 31 }),
    /Option timeout of add must be at most 2147483647 ms/,
  );
  assert.throws(
    () => new Cluster({ tasks: ["./x.ts"], timeout: 2 ** 31 }),
    /Cluster option timeout must be at most 2147483647 ms/,
  );
  await assert.rejects(
    new Schedules(queue.store).add("s", "add", [], {
      type: "minutes",
      minutes: 1,
      timeout: 2 ** 31,
    }),
    /"timeout" of schedule "s" must be at most 2147483647 ms/,
  );
  assert.equal(
    (await queue.counts()).queued + (await queue.counts()).scheduled,
    0,
    "nothing stored",
  );
});

test("enqueue() refuses args: null and quotes an over-long value briefly", async () => {
  using dir = tempDir();
  await using queue = await openQueue({ kv: dir.kv });
  await assert.rejects(
    queue.enqueue({ func: "add", args: null as unknown as [] }),
    /Arguments of add must be an array: received null/,
  );
  const error = await queue.enqueue({ func: "add", args: [], group: "g".repeat(10_000) }).then(
    () => null,
    (e: Error) => e,
  );
  assert.ok(error instanceof TypeError);
  assert.ok(error.message.length < 300, `message of ${error.message.length} characters`);
  assert.match(error.message, /\(10002 characters\)/);
});

test("kvq --priority refuses an empty value and hexadecimal", async () => {
  using dir = tempDir();
  for (const bad of ["", "0x10", "1e3", " "]) {
    const r = await kvq(["enqueue", "add", "--priority", bad, "--kv", dir.kv]);
    assert.equal(r.code, 2, JSON.stringify(bad));
    assert.match(r.err, /--priority must be a whole number/);
  }
});

test("a stored time out of range shows as a number: kvq task and the dashboard's task list still work", async () => {
  await withDashboard({}, async ({ client, queue, dir }) => {
    const { id } = await queue.enqueue("add", 1, 2);
    const key = queue.store.keys.task(id);
    const entry = await queue.store.kv.get<Uint8Array>(key);
    const record = JSON.parse(new TextDecoder().decode(entry.value!));
    record.runAt = 1e300;
    await queue.store.kv.set(key, new TextEncoder().encode(JSON.stringify(record)));
    const shown = await kvq(["task", id, "--kv", `${dir}/kv.sqlite3`]);
    assert.equal(shown.code, 0, shown.err);
    assert.match(shown.out, /run at {6}1e\+300 ms \(not a date\)/);
    const page = await client.page("/tasks");
    assert.equal(page.status, 200);
    assert.equal((await client.page(`/tasks/${id}`)).status, 200);
  });
});

test("enqueue() refuses arguments nested deeper than MAX_JSON_DEPTH, naming the limit", async () => {
  using dir = tempDir();
  await using queue = await openQueue({ kv: dir.kv });
  let deep: unknown = [];
  for (let i = 0; i < 6000; i++) deep = [deep];
  await assert.rejects(
    queue.enqueue({ func: "add", args: [deep] }),
    (e: Error) =>
      e instanceof RangeError &&
      /nests arrays and objects deeper than 512 levels/.test(e.message) &&
      e.message.length < 400,
  );
  let fine: unknown = [];
  for (let i = 0; i < 500; i++) fine = [fine];
  assert.ok((await queue.enqueue({ func: "add", args: [fine] })).id);
});

test("kvq enqueue --args @FILE and --args - take arguments too long for a command line", async () => {
  using dir = tempDir();
  const big = JSON.stringify(["x".repeat(200_000), 2]);
  const file = join(dir.path, "args.json");
  writeFileSync(file, big);
  const r = await kvq(["enqueue", "add", "--args", `@${file}`, "--kv", dir.kv, "--json"]);
  assert.equal(r.code, 0, r.err);
  await using queue = await openQueue({ kv: dir.kv });
  assert.equal(JSON.stringify((await queue.fetch(JSON.parse(r.out).id))!.args), big);
  const missing = await kvq(["enqueue", "add", "--args", "@/no/such/file.json", "--kv", dir.kv]);
  assert.equal(missing.code, 2);
  assert.match(missing.err, /--args @\/no\/such\/file\.json: can't read the file/);
  // From standard input, in a child process.
  const child = startKvq(["enqueue", "add", "--args", "-", "--kv", dir.kv, "--json"]);
  child.child.stdin!.end(big);
  const exit = await child.exited;
  assert.equal(exit.code, 0, child.output());
  const id = JSON.parse(child.output().trim().split("\n").at(-1)!).id;
  assert.equal(JSON.stringify((await queue.fetch(id))!.args), big);
});
