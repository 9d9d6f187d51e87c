import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { main, missingTaskFile } from "../../src/cli/main.ts";
import { Cluster } from "../../src/cluster/cluster.ts";
import { ConfigError, resolveConfig } from "../../src/cli/config.ts";
import { listQueueNames } from "../../src/store/queues.ts";
import { parseDuration } from "../../src/cli/commands/purge.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { pauseQueue } from "../../src/store/pause.ts";
import { CLI_TASKS, ENTRY, kvq, tempDir } from "./_helpers.ts";

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[/;

test("main() suggests the closest command and flag", async () => {
  const a = await kvq(["infoo"]);
  assert.equal(a.code, 2);
  assert.match(a.err, /unknown command "infoo"\. Did you mean 'info'\?/);
  const b = await kvq(["purge", "--older-then", "7d"]);
  assert.equal(b.code, 2);
  assert.match(b.err, /Did you mean '--older-than'\?/);
  assert.match(b.err, /Usage: kvq purge/);
});

test("main() prints --help for every operator command", async () => {
  for (const name of ["info", "monitor", "memory", "purge", "export", "import", "config"]) {
    const r = await kvq([name, "--help"]);
    assert.equal(r.code, 0, name);
    assert.match(r.out, new RegExp(`Usage: kvq ${name}`), name);
    assert.match(r.out, /--config FILE/, name);
  }
  const top = await kvq(["--help"]);
  for (const name of ["info", "monitor", "memory", "purge", "export", "import", "config"]) {
    assert.match(top.out, new RegExp(`^  ${name} `, "m"));
  }
});

test("resolveConfig() takes flags, then env, then the file, then defaults", () => {
  using dir = tempDir();
  writeFileSync(
    join(dir.path, "kvq.json"),
    JSON.stringify({ kv: "data/kv.sqlite3", workers: 3, timeout: 9000, tasks: ["t.ts"] }),
  );
  const config = resolveConfig({ timeout: "100" }, {
    cwd: dir.path,
    env: { KVQ_WORKERS: "5", KVQ_QUEUE: "" },
  });
  const get = (key: string) => config.settings.find((s) => s.setting.key === key)!;
  assert.equal(config.file, join(dir.path, "kvq.json"));
  assert.deepEqual([get("timeout").value, get("timeout").source], ["100", "flag"]);
  assert.deepEqual([get("workers").value, get("workers").source], ["5", "env"]);
  // Paths in the file are relative to the file.
  assert.deepEqual([get("kv").value, get("kv").source], [
    join(dir.path, "data/kv.sqlite3"),
    "file",
  ]);
  assert.deepEqual(get("tasks").value, [join(dir.path, "t.ts")]);
  assert.deepEqual([get("queue").value, get("queue").source], ["default", "default"]);
  assert.deepEqual([get("maxAttempts").value, get("maxAttempts").source], ["3", "default"]);
});

test("resolveConfig() names the file and the error of a bad kvq.json", () => {
  using dir = tempDir();
  const file = join(dir.path, "kvq.json");
  writeFileSync(file, '{"kv": "x",');
  assert.throws(
    () => resolveConfig({}, { cwd: dir.path, env: {} }),
    (e) => e instanceof ConfigError && e.message.includes(file) && /not valid JSON/.test(e.message),
  );
  writeFileSync(file, '{"wokers": 2}');
  assert.throws(() => resolveConfig({}, { cwd: dir.path, env: {} }), /unknown key "wokers"/);
  writeFileSync(file, '{"workers": "many"}');
  assert.throws(
    () => resolveConfig({}, { cwd: dir.path, env: {} }),
    /"workers" must be a whole number: found "many"/,
  );
  assert.throws(
    () => resolveConfig({}, { cwd: dir.path, env: {}, configFile: "nope.json" }),
    /Cannot read config file .*nope\.json/,
  );
});

test("kvq config shows each value and its source; a bad file exits 2 naming it", async () => {
  using dir = tempDir();
  const file = join(dir.path, "settings.json");
  writeFileSync(file, JSON.stringify({ kv: "kv.sqlite3", dashboardToken: "s3cret-token-1234567" }));
  const r = await kvq(["config", "--config", file, "--workers", "7"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, new RegExp(`config file  ${file.replace(/[.]/g, "\\.")}`));
  assert.match(r.out, /^workers +7 +flag --workers$/m);
  assert.match(r.out, /^kv +\S+kv\.sqlite3 +file$/m);
  assert.match(r.out, /^dashboardToken +\(set, 20 characters\) +file$/m);
  assert.doesNotMatch(r.out, /s3cret/);
  const j = await kvq(["config", "--config", file, "--json"]);
  const parsed = JSON.parse(j.out);
  assert.equal(parsed.settings.kv.source, "file");
  assert.equal(parsed.settings.kv.value, join(dir.path, "kv.sqlite3"));
  assert.equal(parsed.settings.dashboardToken.value, "(set)");

  writeFileSync(file, "{ nope");
  const bad = await kvq(["info", "--config", file]);
  assert.equal(bad.code, 2);
  assert.match(
    bad.err,
    new RegExp(`kvq info: Config file ${file.replace(/[.]/g, "\\.")} is not valid JSON`),
  );
});

test("main() applies the config file: commands use its KV and queue", async () => {
  using dir = tempDir();
  const file = join(dir.path, "kvq.json");
  writeFileSync(file, JSON.stringify({ kv: "from-file.sqlite3", queue: "mail" }));
  const e = await kvq(["enqueue", "add", "--args", "[1, 2]", "--config", file, "--json"]);
  assert.equal(e.code, 0, e.err);
  await using queue = await openQueue({ kv: join(dir.path, "from-file.sqlite3"), name: "mail" });
  assert.equal((await queue.counts()).queued, 1);
  const info = await kvq(["info", "--config", file, "--json"]);
  const parsed = JSON.parse(info.out);
  assert.equal(parsed.kv, join(dir.path, "from-file.sqlite3"));
  assert.deepEqual(parsed.queues.map((q: { name: string }) => q.name), ["mail"]);
});

test("kvq work and cluster name a missing or broken task module and exit 2", async () => {
  using dir = tempDir();
  const missing = join(dir.path, "missing.ts");
  const a = await kvq(["cluster", "--tasks", missing, "--kv", dir.kv]);
  assert.equal(a.code, 2);
  assert.match(a.err, /kvq cluster: The task module .*missing\.ts was not found/);
  assert.equal(missingTaskFile([CLI_TASKS]), null);

  const bad = join(dir.path, "bad.ts");
  writeFileSync(bad, "export function broken( {\n");
  const b = await kvq(["work", "--tasks", bad, "--kv", dir.kv, "--burst"]);
  assert.equal(b.code, 2);
  assert.match(b.err, /kvq work: Cannot load task module .*bad\.ts/);
  assert.match(b.err, /Fix the error in that module/);
});

test("main() refuses a --kv file that is not a KV database and leaves it untouched", async () => {
  using dir = tempDir();
  const notes = join(dir.path, "notes.txt");
  writeFileSync(notes, "my precious notes\n");
  for (const argv of [["info"], ["tasks"], ["export"], ["enqueue", "add"]]) {
    const r = await kvq([...argv, "--kv", notes]);
    assert.equal(r.code, 2, argv.join(" "));
    assert.match(r.err, /is not a KV database .*left untouched/);
  }
  assert.equal(readFileSync(notes, "utf8"), "my precious notes\n");
});

test("kvq info counts tasks per queue, finds every queue, and reports rates", async () => {
  using dir = tempDir();
  for (const args of [["--args", "[1, 2]"], ["--args", "[3, 4]"], ["--args", '["x"]']]) {
    const func = args[1] === '["x"]' ? "fail" : "add";
    const r = await kvq([
      "enqueue",
      func,
      ...args,
      "--kv",
      dir.kv,
      ...(func === "fail" ? ["--max-attempts", "1"] : []),
    ]);
    assert.equal(r.code, 0, r.err);
  }
  assert.equal((await kvq(["enqueue", "add", "--queue", "zeta", "--kv", dir.kv])).code, 0);
  assert.equal((await kvq(["enqueue", "add", "--queue", "alpha", "--kv", dir.kv])).code, 0);
  const work = await kvq(["work", "--tasks", CLI_TASKS, "--kv", dir.kv, "--burst"]);
  assert.equal(work.code, 0, work.err);
  assert.match(work.out, /Ran 3 attempts: 2 succeeded, 1 failed/);

  const r = await kvq(["info", "--kv", dir.kv, "--json"]);
  assert.equal(r.code, 0, r.err);
  const info = JSON.parse(r.out);
  assert.deepEqual(info.queues.map((q: { name: string }) => q.name), ["alpha", "default", "zeta"]);
  const d = info.queues[1];
  assert.deepEqual(d.counts, {
    scheduled: 0,
    queued: 0,
    running: 0,
    succeeded: 2,
    failed: 1,
    cancelled: 0,
  });
  assert.equal(d.rates.perMinute, 3);
  assert.equal(d.rates.perDay, 3);
  assert.ok(d.rates.avgRunMs !== null && d.rates.avgWaitMs !== null);
  assert.equal(d.schedules, 0);
  assert.equal(d.clusters, 0);
  assert.equal(info.queues[2].counts.queued, 1);

  const one = JSON.parse((await kvq(["info", "--kv", dir.kv, "--queue", "zeta", "--json"])).out);
  assert.deepEqual(one.queues.map((q: { name: string }) => q.name), ["zeta"]);

  const text = await kvq(["info", "--kv", dir.kv]);
  assert.match(text.out, /^queue default$/m);
  assert.match(text.out, /succeeded 2 {2}failed 1/);
  assert.match(text.out, /3\/min/);
  assert.doesNotMatch(text.out, ANSI);
  const colour = await kvq(["info", "--kv", dir.kv], { tty: true });
  assert.match(colour.out, ANSI);

  const bad = await kvq(["info", "--kv", dir.kv, "--queue", "no/such"]);
  assert.equal(bad.code, 2);

  // A paused queue says so; a cluster's weighted `--queue zeta:3` names queue zeta.
  await using zeta = await openQueue({ kv: dir.kv, name: "zeta" });
  await pauseQueue(zeta.store, "maintenance");
  const paused = await kvq(["info", "--kv", dir.kv, "--queue", "zeta:3"]);
  assert.equal(paused.code, 0, paused.err);
  assert.match(paused.out, /^queue zeta {2}PAUSED since \S+: maintenance$/m);
  const pj = JSON.parse((await kvq(["info", "--kv", dir.kv, "--json"])).out);
  assert.equal(pj.queues[2].paused.reason, "maintenance");
  assert.equal(pj.queues[1].paused, null);
});

test("listQueueNames() reads one key per queue and stops at the limit", async () => {
  using dir = tempDir();
  await using queue = await openQueue({ kv: dir.kv, name: "q1" });
  const kv = queue.store.kv;
  for (const q of ["b", "a", "c.d", "a-b"]) {
    for (let i = 0; i < 5; i++) await kv.set(["kvq", q, "task", String(i)], new Uint8Array([i]));
  }
  await kv.set(["kvq", 7, "odd"], new Uint8Array()); // not a queue: a number part
  await kv.set(["other"], new Uint8Array());
  assert.deepEqual((await listQueueNames(kv)).names, ["a", "a-b", "b", "c.d"]);
  assert.deepEqual(await listQueueNames(kv, 2), { names: ["a", "a-b"], more: true });
});

test("kvq purge deletes finished tasks of a state older than the cutoff only", async () => {
  using dir = tempDir();
  for (let i = 0; i < 3; i++) await kvq(["enqueue", "add", "--args", `[${i}, 1]`, "--kv", dir.kv]);
  await kvq(["enqueue", "fail", "--max-attempts", "1", "--kv", dir.kv]);
  await kvq(["work", "--tasks", CLI_TASKS, "--kv", dir.kv, "--burst"]);
  const waiting = await kvq(["enqueue", "add", "--kv", dir.kv, "--json"]);

  const young = await kvq(["purge", "--state", "succeeded", "--older-than", "1h", "--kv", dir.kv]);
  assert.equal(young.code, 0, young.err);
  assert.match(young.out, /Deleted 0 succeeded tasks/);

  const dry = await kvq(
    ["purge", "--state", "succeeded", "--older-than", "0s", "--dry-run", "--kv", dir.kv, "--json"],
  );
  assert.equal(JSON.parse(dry.out).deleted, 3);

  const r = await kvq(["purge", "--state", "succeeded", "--older-than", "0s", "--kv", dir.kv]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /Deleted 3 succeeded tasks of queue default/);
  await using queue = await openQueue({ kv: dir.kv });
  const counts = await queue.counts();
  assert.equal(counts.succeeded, 0);
  assert.equal(counts.failed, 1);
  assert.equal(counts.queued, 1);
  assert.equal((await queue.tasks({ state: "succeeded" })).tasks.length, 0);
  assert.notEqual(await queue.fetch(JSON.parse(waiting.out).id), null);

  for (
    const [argv, pattern] of [
      [["--state", "running", "--older-than", "1d"], /--state must be one of succeeded, failed/],
      [["--state", "failed", "--older-than", "soon"], /--older-than: A duration is a number/],
      [["--state", "failed"], /Pass --older-than/],
    ] as const
  ) {
    const bad = await kvq(["purge", ...argv, "--kv", dir.kv]);
    assert.equal(bad.code, 2);
    assert.match(bad.err, pattern);
  }
});

test("parseDuration() reads s, m, h, d and w", () => {
  assert.equal(parseDuration("30s"), 30_000);
  assert.equal(parseDuration("15m"), 900_000);
  assert.equal(parseDuration("2h"), 7_200_000);
  assert.equal(parseDuration("7d"), 604_800_000);
  assert.equal(parseDuration("1w"), 604_800_000);
  assert.equal(parseDuration("250ms"), 250);
  assert.throws(() => parseDuration("7"), RangeError);
  assert.throws(() => parseDuration("-1d"), RangeError);
});

test("kvq tasks, task, cancel, retry and delete work from the command line", async () => {
  using dir = tempDir();
  const a = JSON.parse(
    (await kvq(["enqueue", "add", "--args", "[2, 3]", "--kv", dir.kv, "--json"])).out,
  );
  const b = JSON.parse(
    (await kvq(["enqueue", "add", "--delay", "3600000", "--kv", dir.kv, "--json"])).out,
  );
  const list = JSON.parse((await kvq(["tasks", "--kv", dir.kv, "--json"])).out);
  assert.deepEqual(list.tasks.map((t: { id: string }) => t.id).sort(), [a.id, b.id].sort());

  const shown = await kvq(["task", a.name, "--kv", dir.kv]);
  assert.equal(shown.code, 0);
  assert.match(shown.out, new RegExp(`id +${a.id}`));
  assert.equal((await kvq(["task", "no-such-task-name", "--kv", dir.kv])).code, 4);

  const cancel = await kvq(["cancel", b.id, "--kv", dir.kv]);
  assert.equal(cancel.code, 0, cancel.err);
  assert.equal((await kvq(["cancel", b.id, "--kv", dir.kv])).code, 1); // already cancelled
  const retry = await kvq(["retry", b.id, "--kv", dir.kv]);
  assert.equal(retry.code, 0, retry.err);
  assert.match(retry.out, /queued again/);

  await kvq(["work", "--tasks", CLI_TASKS, "--kv", dir.kv, "--burst"]);
  const result = await kvq(["result", a.id, "--kv", dir.kv]);
  assert.equal(result.out, "5");
  const del = await kvq(["delete", a.id, b.id, "--kv", dir.kv]);
  assert.equal(del.code, 0, del.err);
  assert.equal((await kvq(["delete", a.id, "--kv", dir.kv])).code, 4);
  assert.equal((await kvq(["result", a.id, "--kv", dir.kv])).code, 4);
});

test("kvq memory and monitor --once read the heartbeats; none running is said", async () => {
  using dir = tempDir();
  await kvq(["enqueue", "add", "--kv", dir.kv]);
  const m = await kvq(["memory", "--kv", dir.kv]);
  assert.equal(m.code, 0);
  assert.match(m.err, /No cluster is running/);
  assert.deepEqual(JSON.parse((await kvq(["memory", "--kv", dir.kv, "--json"])).out), {
    clusters: [],
  });
  const mon = await kvq(["monitor", "--once", "--kv", dir.kv]);
  assert.equal(mon.code, 0);
  assert.match(mon.out, /queue default: scheduled 0 {2}queued 1/);
  assert.match(mon.out, /No cluster is running/);
});

test("main() returns 2 with no command and 0 for --version", async () => {
  const out: string[] = [];
  const io = { out: (t: string) => out.push(t), err: () => {}, tty: false };
  assert.equal(await main([], ENTRY, io), 2);
  assert.equal(await main(["--version"], ENTRY, io), 0);
  assert.match(out.join("\n"), /kvq 0\.1\.0/);
});

test("listQueueNames() skips another app's keys under the kvq prefix", async () => {
  using dir = tempDir();
  await using queue = await openQueue({ kv: dir.kv, name: "mail" });
  await queue.enqueue("send", 1);
  const kv = queue.store.kv;
  await kv.set(["kvq", "settings"], "another app's value");
  await kv.set(["kvq", "aaa", "config", "x"], "1");
  // Another app's key that sorts first inside a real queue does not hide it.
  await kv.set(["kvq", "mail", "aaa"], "1");
  assert.deepEqual((await listQueueNames(kv)).names, ["mail"]);
});

test("kvq info shows a cluster whose clock is a minute behind as running, with its skew", async () => {
  using dir = tempDir();
  await using cluster = new Cluster({
    kv: dir.kv,
    tasks: [CLI_TASKS],
    workers: 1,
    heartbeat: 300,
    clock: () => Date.now() - 60_000,
  });
  await cluster.start();
  const r = await kvq(["info", "--kv", dir.kv, "--json"]);
  assert.equal(r.code, 0, r.err);
  const info = JSON.parse(r.out);
  const seen = info.clusters.find((c: { id: string }) => c.id === cluster.id);
  assert.ok(seen, "the cluster is listed");
  assert.equal(seen.stale, false);
  assert.ok(seen.skewMs > 50_000 && seen.skewMs < 70_000, `skew ${seen.skewMs}`);
  assert.equal(info.queues[0].clusters, 1, "and it counts as serving its queue");
  const text = await kvq(["info", "--kv", dir.kv]);
  assert.match(text.out, /running \(clock 1 min( \d+ s)? behind\)/);
});
