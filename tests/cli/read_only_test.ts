/**
 * A KV file this user can't write (mode 0444, another user's store): the commands that read
 * once read a copy and leave the file and its folder as they were; the others say why not.
 *
 * Permissions mean nothing to root, so under root the commands run as `nobody` (setpriv), from a
 * copy of the runtime's binary in a folder `nobody` can reach.
 */
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import process from "node:process";
import { openQueue } from "../../src/queue/queue.ts";
import { tempDir } from "./_helpers.ts";

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const ROOT = new URL("../..", import.meta.url).pathname;
const MAIN = join(ROOT, "main.ts");
const NOBODY = 65534;

/** How to run `kvq` as a user without write access, or why that can't be done here. */
function unprivileged(
  scratch: string,
): { run(args: string[]): Run; evaluate(code: string): Run } | string {
  const home = join(scratch, "home");
  mkdirSync(home, { recursive: true });
  chmodSync(scratch, 0o777);
  chmodSync(home, 0o777);
  const env: Record<string, string> = {
    ...process.env as Record<string, string>,
    NO_COLOR: "1",
    HOME: home,
    TMPDIR: home,
    DENO_DIR: join(home, "deno"),
  };
  let prefix: string[] = [];
  let runtime = process.execPath;
  if (process.getuid?.() === 0) {
    if (spawnSync("setpriv", ["--version"]).status !== 0) return "running as root without setpriv";
    runtime = join(scratch, isDeno ? "deno" : "bun");
    copyFileSync(process.execPath, runtime);
    chmodSync(runtime, 0o755);
    prefix = ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups"];
    const probe = spawnSync(prefix[0]!, [...prefix.slice(1), "test", "-r", MAIN]);
    if (probe.status !== 0) return `user nobody can't read ${MAIN}`;
  }
  // Deno must not try to set up node_modules or write the lockfile as that user.
  const base = isDeno ? ["run", "-A", "--no-lock", "--node-modules-dir=manual", MAIN] : [MAIN];
  const spawn = (args: string[]): Run => {
    const all = [...prefix, runtime, ...args];
    const r = spawnSync(all[0]!, all.slice(1), { cwd: ROOT, env, encoding: "utf8" });
    return { code: r.status, out: r.stdout, err: r.stderr, home };
  };
  return {
    run: (args) => spawn([...base, ...args]),
    evaluate: (code) =>
      spawn(isDeno ? ["eval", "--no-lock", "--node-modules-dir=manual", code] : ["-e", code]),
  };
}

interface Run {
  code: number | null;
  out: string;
  err: string;
  home: string;
}

const digest = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

for (const folderWritable of [false, true]) {
  test(`a read-only KV file in a ${folderWritable ? "writable" : "read-only"} folder: the read commands read a copy, the others say why not, nothing changes`, async (t) => {
    using dir = tempDir();
    const store = join(dir.path, "store");
    mkdirSync(store);
    const kv = join(store, "kv.sqlite3");
    let id: string;
    {
      await using queue = await openQueue({ kv });
      id = (await queue.enqueue({ func: "add", args: [1, 2], group: "g" })).id;
    }
    const as = unprivileged(dir.path);
    if (typeof as === "string") return t.skip(as);
    chmodSync(kv, 0o444);
    chmodSync(store, folderWritable ? 0o777 : 0o555);
    const before = { files: readdirSync(store).sort(), sum: digest(kv) };

    const info = as.run(["info", "--kv", kv, "--json"]);
    assert.equal(info.code, 0, info.err);
    assert.match(info.err, /read-only for this user.*reads a copy of it made now/);
    const parsed = JSON.parse(info.out);
    assert.equal(parsed.kv, kv, "names the store, not the copy");
    assert.equal(parsed.queues[0].counts.queued, 1);

    const tasks = as.run(["tasks", "--kv", kv, "--json"]);
    assert.equal(tasks.code, 0, tasks.err);
    assert.deepEqual(JSON.parse(tasks.out).tasks.map((x: { id: string }) => x.id), [id]);

    const one = as.run(["task", id, "--kv", kv, "--json"]);
    assert.equal(one.code, 0, one.err);
    assert.equal(JSON.parse(one.out).group, "g");

    const exported = as.run(["export", "--kv", kv]);
    assert.equal(exported.code, 0, exported.err);
    assert.ok(exported.out.includes(id), "the export holds the task");

    for (
      const args of [["enqueue", "add", "--args", "[1,2]"], ["monitor"], ["doctor", "--delete"]]
    ) {
      const r = as.run([...args, "--kv", kv]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
      assert.match(r.err, /the file is read-only for this user \(mode 0444/);
      assert.match(r.err, /Run it as the user that owns the store/);
      assert.doesNotMatch(r.err, /attempt to write/);
    }

    // The library refuses it the same way, before SQLite touches it.
    const queueModule = new URL("../../src/queue/queue.ts", import.meta.url).href;
    const lib = as.evaluate(
      `const { openQueue } = await import(${JSON.stringify(queueModule)});
       try { await openQueue({ kv: ${JSON.stringify(kv)} }); console.log("opened"); }
       catch (e) { console.log(e.name + ": " + e.message); }`,
    );
    assert.match(lib.out, /KvOpenError: .*the file is read-only for this user/, lib.err);

    chmodSync(store, 0o755);
    assert.deepEqual(readdirSync(store).sort(), before.files, "no journal left beside it");
    assert.equal(digest(kv), before.sum, "the file is unchanged");
    assert.deepEqual(
      readdirSync(info.home).filter((f) => f.startsWith("kvq-copy-")),
      [],
      "the copies are removed",
    );
  });
}
