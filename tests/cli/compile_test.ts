/**
 * `deno task compile`: a build that fails (offline, `denort` can't be downloaded) leaves an
 * existing `dist/kvq` alone. Deno only: the task runs `deno compile`.
 */
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { report } from "../_report.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const isDeno = "Deno" in globalThis;

test("deno task compile that fails keeps the dist/kvq it would have replaced", {
  skip: isDeno ? false : "runs deno compile",
  timeout: 120_000,
}, () => {
  const out = join(ROOT, "dist", "kvq");
  const mine = !existsSync(out);
  const before = mine ? "a previous build of kvq\n" : readFileSync(out, "latin1");
  if (mine) {
    mkdirSync(join(ROOT, "dist"), { recursive: true });
    writeFileSync(out, before);
  }
  try {
    const r = spawnSync(Deno.execPath(), ["task", "compile"], {
      cwd: ROOT,
      encoding: "utf8",
      env: { ...Deno.env.toObject(), NO_COLOR: "1" },
    });
    if (r.status === 0) {
      report("deno compile succeeded here (denort was available): nothing to check");
      return;
    }
    assert.ok(existsSync(out), `dist/kvq is gone after a failed build:\n${r.stderr}`);
    assert.equal(readFileSync(out, "latin1"), before, "dist/kvq was changed by a failed build");
    assert.equal(existsSync(join(ROOT, "dist", ".kvq-deno-build")), false);
  } finally {
    if (mine) rmSync(out, { force: true });
  }
});
