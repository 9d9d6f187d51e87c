import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { copyFileSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Cluster } from "../../src/cluster/cluster.ts";
import { Schedules } from "../../src/schedule/api.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { listClaims } from "../../src/store/leases.ts";
import { migrate } from "../../src/store/migrate.ts";
import { pruneFinished } from "../../src/store/prune.ts";
import { rawRows } from "../../src/store/raw_rows.ts";
import { SCHEMA_KEY, SchemaError, schemaVersion } from "../../src/store/schema.ts";
import { KvHandle } from "../../src/store/store.ts";
import { kvq, tempDir } from "../cli/_helpers.ts";
import { CONTROL_TASKS } from "../control/_helpers.ts";

/** A file made by the release before layout versions (see tests/fixtures/layout1/make.ts). */
const FIXTURE = fileURLToPath(new URL("../fixtures/layout1/kv.sqlite3", import.meta.url));
const expected = JSON.parse(
  readFileSync(new URL("../fixtures/layout1/expected.json", import.meta.url), "utf8"),
);

function copyFixture(dir: { kv: string }): string {
  copyFileSync(FIXTURE, dir.kv);
  return dir.kv;
}

async function rows(path: string): Promise<string[]> {
  const out: string[] = [];
  for await (const r of rawRows(path, [], null)) {
    out.push(`${JSON.stringify(r.key)}=${Array.from(r.value).join(",")}`);
  }
  return out;
}

test("a layout-1 file is refused on open, naming 'kvq migrate', and nothing in it changes", async () => {
  using dir = tempDir();
  const kv = copyFixture(dir);
  const before = await rows(kv);
  assert.ok(before.length > 40, `${before.length} rows`);
  await assert.rejects(openQueue({ kv }), (error: Error) => {
    assert.ok(error instanceof SchemaError, String(error));
    assert.match(error.message, /layout 1/);
    assert.match(error.message, new RegExp(`kvq migrate --kv ${kv}`));
    return true;
  });
  // A setup error, exit 2: the sentinel does not restart a cluster for it.
  const run = await kvq(["info", "--kv", kv]);
  assert.equal(run.code, 2);
  assert.match(run.err, /kvq migrate/);
  assert.deepEqual(await rows(kv), before);
});

test("kvq migrate upgrades a layout-1 file: every task, schedule, chain, iter and group is kept, and a cluster recovers the dead cluster's tasks", async () => {
  using dir = tempDir();
  const kv = copyFixture(dir);
  const run = await kvq(["migrate", "--kv", kv]);
  assert.equal(run.code, 0, run.err);
  assert.match(run.out, /layout 1 → 5; 2 running task lease\(s\) moved/);
  const again = await kvq(["migrate", "--kv", kv]);
  assert.match(again.out, /already has kvq layout 5/);
  await using queue = await openQueue({ kv });
  assert.deepEqual(await queue.counts(), expected.counts);
  for (const state of ["succeeded", "failed", "cancelled", "scheduled"]) {
    for (const id of expected[state]) assert.equal((await queue.fetch(id))!.state, state, id);
  }
  const running = await queue.tasks({ state: "running" });
  assert.deepEqual(running.tasks.map((r) => r.id).sort(), [...expected.running].sort());
  const claims = await listClaims(queue.store);
  assert.deepEqual(claims.map((c) => c.cluster), ["old-cluster", "old-cluster"]);
  assert.deepEqual(claims.flatMap((c) => c.value!.held), expected.held);
  assert.equal((await queue.fetchGroup(expected.group)).length, 2);
  assert.deepEqual(
    (await new Schedules(queue.store).list()).map((s) => s.name).sort(),
    expected.schedules,
  );
  // The dead cluster's tasks come back: the started chain step as a failed attempt (retried),
  // the held iter member uncounted. Then the chain and the iter run to their end.
  const cluster = new Cluster({
    kv,
    tasks: [CONTROL_TASKS],
    workers: 2,
    heartbeat: 100,
    leaseTimeout: 500,
  });
  await cluster.start();
  try {
    const chain = await queue.waitChain(expected.chain, { wait: 20_000 });
    assert.equal(chain.state, "succeeded", JSON.stringify(chain));
    const results = await queue.iterResult(expected.iter, { wait: 20_000 });
    assert.deepEqual(results, [2, 4, 6]);
  } finally {
    await cluster.stop();
  }
  const step = await queue.fetch(expected.running[0]);
  assert.equal(step!.attempt, 2);
  assert.equal(step!.errors[0]?.name, "WorkerCrashError");
  const member = await queue.fetch(expected.held[0]);
  assert.equal(member!.attempt, 1);
  assert.deepEqual(await listClaims(queue.store), []);
});

test("a migration stopped part-way carries on from where it stopped", async () => {
  using dir = tempDir();
  const kv = copyFixture(dir);
  // What a run killed after its first commit leaves: one lease moved, the version not written.
  {
    await using handle = await KvHandle.open({ kv, checkSchema: false });
    const [first] = await Array.fromAsync(
      handle.kv.list({ prefix: ["kvq", "default", "lease"] }, { limit: 1 }),
    );
    const id = first!.key[3] as string;
    await handle.kv.atomic().delete(first!.key).set(
      ["kvq", "default", "lease", "old-cluster", `0-${id}`],
      new TextEncoder().encode(JSON.stringify({ ids: [id], held: [] })),
    ).commit();
    assert.equal(await schemaVersion(handle.kv), 1);
    const report = await migrate(handle.kv);
    assert.deepEqual(report, { from: 1, to: 5, leases: 1, doneBy: 4, funcs: 9 });
    assert.equal(await schemaVersion(handle.kv), 5);
  }
  await using queue = await openQueue({ kv });
  const ids = (await listClaims(queue.store)).flatMap((c) => c.value!.ids).sort();
  assert.deepEqual(ids, [...expected.running].sort());
  // Retention per func finds the func of a `done` entry layout 1 left empty in its record.
  const pruned = await pruneFinished(queue.store, {
    keepFailed: { count: 0, minAge: 0 },
    keepPer: "func",
  });
  assert.equal(pruned, 2); // the failed task and the cancelled one
  assert.equal(await queue.fetch(expected.failed[0]), null);
  assert.equal(await queue.fetch(expected.cancelled[0]), null);
  assert.equal((await queue.fetch(expected.succeeded[0]))!.state, "succeeded");
});

test("migrate refuses while a cluster beats unless forced, and a newer layout is refused on open", async () => {
  using dir = tempDir();
  const kv = copyFixture(dir);
  {
    await using handle = await KvHandle.open({ kv, checkSchema: false });
    const beat = {
      id: "live",
      host: "h",
      pid: 1,
      workers: [],
      queues: ["default"],
      beatAt: Date.now(),
      heartbeatMs: 60_000,
      state: "running",
    };
    await handle.kv.set(
      ["kvq", "default", "cluster", "live"],
      new TextEncoder().encode(JSON.stringify(beat)),
    );
    await assert.rejects(migrate(handle.kv), /Cluster live on queue default is running/);
    assert.equal(await schemaVersion(handle.kv), 1);
    assert.equal((await migrate(handle.kv, { force: true })).to, 5);
    await handle.kv.set(SCHEMA_KEY, new TextEncoder().encode(JSON.stringify({ version: 99 })));
  }
  await assert.rejects(openQueue({ kv }), /layout 99, newer than this kvq's \(5\); upgrade kvq/);
  const run = await kvq(["migrate", "--kv", kv]);
  assert.notEqual(run.code, 0);
  assert.match(run.err, /newer than this kvq's/);
});

test("kvq migrate upgrades a layout-2 file: every task gets its func look-up, a cached one's expiring with it", async () => {
  using dir = tempDir();
  {
    await using queue = await openQueue({ kv: dir.kv });
    await queue.enqueueMany([
      ...Array.from({ length: 5 }, (_, i) => ({ func: "add", args: [i, 1] })),
      { func: "echo", args: ["x"] },
    ]);
    // What layout 2 had: no func look-ups.
    const kv = queue.store.kv;
    for await (const e of kv.list({ prefix: ["kvq", "default", "func"] })) await kv.delete(e.key);
    await kv.set(SCHEMA_KEY, new TextEncoder().encode(JSON.stringify({ version: 2 })));
  }
  await assert.rejects(openQueue({ kv: dir.kv }), /layout 2, from an older kvq/);
  const run = await kvq(["migrate", "--kv", dir.kv]);
  assert.equal(run.code, 0, run.err);
  assert.match(run.out, /layout 2 → 5; .* 6 func look-up\(s\) added/);
  await using queue = await openQueue({ kv: dir.kv });
  assert.equal((await queue.tasks({ func: "add" })).tasks.length, 5);
  assert.deepEqual((await queue.tasks({ func: "echo" })).tasks.map((r) => r.func), ["echo"]);
});

test("kvq migrate takes a layout-3 file to layout 5 converting nothing, and its per-task tail entries are read as before", async () => {
  using dir = tempDir();
  const made: { id: string; name: string }[] = [];
  {
    await using queue = await openQueue({ kv: dir.kv });
    // What layout 3 wrote for a bulk enqueue: a name-tail entry and a func look-up per task.
    for (let i = 0; i < 3; i++) made.push(await queue.enqueue({ func: "add", args: [i, 1] }));
    await queue.store.kv.set(SCHEMA_KEY, new TextEncoder().encode(JSON.stringify({ version: 3 })));
  }
  await assert.rejects(openQueue({ kv: dir.kv }), /layout 3, from an older kvq/);
  const run = await kvq(["migrate", "--kv", dir.kv]);
  assert.equal(run.code, 0, run.err);
  assert.match(run.out, /layout 3 → 5; 0 running task lease\(s\) moved/);
  await using queue = await openQueue({ kv: dir.kv });
  for (const m of made) {
    assert.equal((await queue.fetch(m.name))?.id, m.id, "by name, from the tail");
  }
  assert.equal((await queue.tasks({ func: "add" })).tasks.length, 3);
});

test("a fresh file gets the current layout on first open", async () => {
  using dir = tempDir();
  await using queue = await openQueue({ kv: dir.kv });
  assert.equal(await schemaVersion(queue.store.kv), 5);
});
