/**
 * A KV file on a disk that fills up mid-run: the cluster reports it, claims nothing it can't
 * record, keeps finished results in memory, never marks a task succeeded that wasn't stored, and
 * stores everything once space returns. Needs root to mount a small tmpfs; skipped otherwise.
 */
import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { Cluster } from "../../src/cluster/cluster.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { KvHandle } from "../../src/store/store.ts";

const tasks = new URL("../../examples/tasks.ts", import.meta.url).pathname;

function mountTmpfs(dir: string): boolean {
  if (process.platform !== "linux" || process.getuid?.() !== 0) return false;
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", dir], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Fills the file system holding `path` until it refuses; returns the filler's path. */
function fillDisk(dir: string): string {
  const filler = join(dir, "filler");
  const fd = openSync(filler, "w");
  const chunk = new Uint8Array(64 * 1024).fill(7);
  try {
    while (true) writeSync(fd, chunk);
  } catch (error) {
    if ((error as { code?: string }).code !== "ENOSPC") throw error;
  } finally {
    closeSync(fd);
  }
  return filler;
}

/** Resolves once `condition` holds, checking on each cluster event and every 50 ms. */
function until(
  condition: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = async () => {
      if (await condition()) return resolve();
      if (Date.now() - started > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 50);
    };
    void tick();
  });
}

const dir = mkdtempSync(join(tmpdir(), "kvq-disk-"));
const mounted = mountTmpfs(dir);

test(
  "Cluster survives a full disk: results wait in memory and are stored once space returns",
  { skip: mounted ? false : "needs root and tmpfs to fill a disk safely" },
  async () => {
    const path = join(dir, "kv.sqlite3");
    const handle = await KvHandle.open({ kv: path });
    const errors: string[] = [];
    const cluster = new Cluster({
      kv: handle,
      tasks: [tasks],
      workers: 2,
      heartbeat: 200,
      onError: (e, context) => errors.push(`${context}: ${e.message}`),
    });
    const queue = await openQueue({ kv: handle });
    let filler: string | null = null;
    try {
      await cluster.start();
      const n = 30;
      const started = cluster.once("task:start");
      const enqueued = await queue.enqueueMany(
        Array.from({ length: n }, () => ({ func: "sleep", args: [40] })),
      );
      await started;
      filler = fillDisk(dir);
      await until(() => errors.some((e) => /full/i.test(e)), 20_000, "a disk-full report");
      const stuck = await queue.counts();
      const storedWhileFull = stuck.succeeded;
      // Nothing claimed or finished may be lost while the disk is full.
      rmSync(filler);
      filler = null;
      for (const t of enqueued) {
        const record = await queue.wait(t.id, { wait: 30_000 });
        assert.equal(record.state, "succeeded", `${t.id} ended ${record.state}`);
      }
      const counts = await queue.counts();
      assert.equal(counts.succeeded, n);
      assert.equal(counts.running + counts.queued, 0);
      assert.ok(storedWhileFull < n, "the disk filled before the work was done");
    } finally {
      if (filler) rmSync(filler, { force: true });
      await cluster.stop();
      queue.close();
      handle.close();
      execFileSync("umount", [dir], { stdio: "ignore" });
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

if (!mounted) rmSync(dir, { recursive: true, force: true });
