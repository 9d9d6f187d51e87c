/**
 * kvq as a dependency: `npm pack` the repository, install the tarball into an app folder outside
 * it, and run apps there on the runtime running the tests. The README's library example runs
 * verbatim, extracted from the README, so the two can't drift apart.
 */
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const isDeno = "Deno" in globalThis;
/** The runtime binary running these tests. */
const RUNTIME = isDeno ? Deno.execPath() : process.execPath;

interface Ran {
  code: number | null;
  out: string;
  err: string;
}

/** Runs `cmd args` in `cwd` and resolves with its exit code and output. */
function run(
  cmd: string,
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd,
      env: { ...process.env, NO_COLOR: "1", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (err += c));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, out, err }));
  });
}

function ok(r: Ran, what: string): string {
  assert.equal(r.code, 0, `${what} exited ${r.code}:\n${r.out}\n${r.err}`);
  return r.out;
}

/** The packed tarball, made once per run of this file. */
let packed: Promise<string> | null = null;
function pack(): Promise<string> {
  packed ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), "kvq-pack-"));
    ok(await run("npm", ["pack", "--pack-destination", dir, "--silent"], ROOT), "npm pack");
    const tgz = readdirSync(dir).find((f) => f.endsWith(".tgz"));
    assert.ok(tgz, `npm pack left no tarball in ${dir}`);
    return join(dir, tgz);
  })();
  return packed;
}

/** A fresh app folder outside the repository with the packed kvq installed. */
async function app(files: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), "kvq-app-"));
  const tgz = await pack();
  writeFileSync(
    join(dir, "package.json"),
    JSON.stringify({ name: "app", private: true, type: "module", dependencies: { kvq: tgz } }),
  );
  ok(
    await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--silent"], dir),
    "npm install",
  );
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return {
    dir,
    /** Runs a module of the app on the runtime running the tests. */
    script: (file: string) =>
      run(RUNTIME, isDeno ? ["run", "-A", "--unstable-kv", file] : [file], dir, {
        KVQ_KV: join(dir, "kv.sqlite3"),
      }),
    [Symbol.dispose]() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The TypeScript blocks of a README section whose first line is `// FILE`, by file name. */
export function readmeFiles(readme: string, heading: string): Record<string, string> {
  const start = readme.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `README has no ${heading}`);
  const rest = readme.slice(start + heading.length + 2);
  const section = rest.slice(0, rest.search(/\n#{1,3} /));
  const files: Record<string, string> = {};
  for (const m of section.matchAll(/```ts\n\/\/ ([\w.]+)\n([\s\S]*?)```/g)) {
    files[m[1]!] = m[2]!;
  }
  return files;
}

test("npm package: an app outside the repo installs the tarball, runs a Cluster with its own task module and reads the result", async () => {
  using a = await app({
    "tasks.ts": "export function shout(text: string): string {\n  return text.toUpperCase();\n}\n",
    "main.ts": `import { Cluster, openQueue, TaskNotFoundError } from "kvq";
import { createDeployRunner } from "kvq/deploy";
await using cluster = new Cluster({ tasks: ["./tasks.ts"], workers: 1 });
await cluster.start();
await using queue = await openQueue();
const { id } = await queue.enqueue("shout", "from the app");
const result = await queue.result(id, { wait: 20_000 });
console.log(JSON.stringify({ result, deploy: typeof createDeployRunner, error: TaskNotFoundError.name }));
`,
  });
  const out = ok(await a.script("main.ts"), "the app");
  const line = out.trim().split("\n").at(-1)!;
  assert.deepEqual(JSON.parse(line), {
    result: "FROM THE APP",
    deploy: "function",
    error: "TaskNotFoundError",
  });
  // The package ships JavaScript and types, not the TypeScript sources.
  const pkg = join(a.dir, "node_modules", "kvq");
  const manifest = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8"));
  assert.equal(manifest.exports["."].types, "./dist/npm/src/mod.d.ts");
  assert.ok(readFileSync(join(pkg, "dist/npm/src/mod.d.ts"), "utf8").includes("openQueue"));
  assert.ok(readFileSync(join(pkg, "dist/npm/src/cluster/worker_main.js"), "utf8").length > 0);
});

test("npm package: the README's library example runs verbatim in an app that installed kvq", async () => {
  const files = readmeFiles(
    readFileSync(join(ROOT, "README.md"), "utf8"),
    "### An app that enqueues and runs tasks",
  );
  assert.deepEqual(Object.keys(files).sort(), ["app.ts", "tasks.ts"]);
  using a = await app(files);
  const out = ok(await a.script("app.ts"), "the README example");
  const lines = out.trim().split("\n");
  assert.match(lines[0]!, /^success [0-9a-f-]{36}$/, out);
  assert.equal(lines.at(-1), "3", out);
});

test("npm package: `npx kvq` runs the CLI from the installed package under Node, handing over to Deno or Bun", async () => {
  using a = await app({
    "tasks.ts": "export function add(a: number, b: number) {\n  return a + b;\n}\n",
  });
  // Only the runtime running the tests, under its plain name, is on PATH (with node and npm).
  const bin = join(a.dir, ".bin");
  mkdirSync(bin);
  const name = isDeno ? "deno" : "bun";
  symlinkSync(RUNTIME, join(bin, name));
  const path = `${bin}:${process.env.PATH ?? ""}`;
  const env = { PATH: path, KVQ_RUNTIME: name, KVQ_KV: join(a.dir, "kv.sqlite3") };
  const kvq = (...args: string[]) => run("npx", ["--no-install", "kvq", ...args], a.dir, env);
  assert.match(ok(await kvq("--version"), "kvq --version"), /^kvq \d+\.\d+\.\d+/);
  const enqueued = ok(await kvq("enqueue", "add", "--args", "[2, 3]"), "kvq enqueue");
  const id = enqueued.trim().split(/\s+/)[0]!;
  ok(await kvq("cluster", "--tasks", "./tasks.ts", "--workers", "1", "--burst"), "kvq cluster");
  assert.equal(ok(await kvq("result", id), "kvq result").trim(), "5");
  const wrong = await run("npx", ["--no-install", "kvq", "--version"], a.dir, {
    ...env,
    KVQ_RUNTIME: "node",
  });
  assert.equal(wrong.code, 2);
  assert.match(wrong.err, /KVQ_RUNTIME must be "deno" or "bun": received "node"/);
});
