import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { runInline } from "../../src/cluster/inline.ts";
import { listDamaged } from "../../src/store/damaged.ts";
import { kvq, tempDir } from "../cli/_helpers.ts";
import { withDashboard } from "../web/_helpers.ts";

const add = (a: number, b: number) => a + b;

test("a task record that can't be decoded is set aside once; everything else runs, and every tool copes", async () => {
  await withDashboard({}, async ({ queue, client, dir }) => {
    const kv = ["--kv", join(dir, "kv.sqlite3")];
    const tasks = await queue.enqueueMany(
      Array.from({ length: 5 }, (_, i) => ({ func: "add", args: [i, 1] })),
    );
    const bad = tasks[2]!.id;
    // Another program overwrites one record with garbage.
    await queue.store.kv.set(queue.store.keys.task(bad), new Uint8Array(randomBytes(150)));
    const report = await runInline(queue.store, { tasks: new Map([["add", add]]), burst: true });
    assert.equal(report.succeeded, 4, "the other tasks ran, and the run ended");
    const damaged = await listDamaged(queue.store);
    assert.deepEqual(damaged.map((d) => [d.id, d.bytes]), [[bad, 150]]);
    assert.match(damaged[0]!.reason, /not UTF-8 JSON/);

    const list = await kvq(["tasks", ...kv]);
    assert.equal(list.code, 0, list.err);
    assert.equal(list.out.trim().split("\n").length, 4);
    assert.match(list.err, new RegExp(`${bad}.*not a valid kvq record`));
    const one = await kvq(["task", bad, ...kv]);
    assert.equal(one.code, 1);
    assert.match(one.err, /150 bytes stored, starting [0-9a-f]{64}/);
    const info = await kvq(["info", ...kv]);
    assert.match(info.out, /damaged {4}1 record\(s\) set aside; 'kvq doctor' lists them/);
    const metrics = await client.page("/metrics");
    assert.match(metrics.body, /^kvq_damaged_records\{queue="default"\} 1$/m);
    for (const path of ["/", "/tasks", "/queues"]) {
      assert.equal((await client.page(path)).status, 200, path);
    }
    const out = join(dir, "backup.ndjson");
    assert.equal((await kvq(["export", "--out", out, ...kv])).code, 0);
    assert.match(readFileSync(out, "utf8"), new RegExp(`"task","${bad}"`), "export keeps it raw");
    const doctor = await kvq(["doctor", ...kv]);
    assert.equal(doctor.code, 1);
    assert.match(doctor.out, new RegExp(`${bad} {2}set aside`));

    const deleted = await kvq(["delete", bad, ...kv]);
    assert.equal(deleted.code, 0, deleted.err);
    assert.equal((await kvq(["doctor", ...kv])).code, 0);
    assert.equal(await queue.fetch(bad).catch(() => "gone"), null);
  });
});

test("kvq doctor --scan finds a damaged record no claim meets (a finished one) and --delete removes it", async () => {
  await withDashboard({}, async ({ queue, dir }) => {
    const kv = ["--kv", join(dir, "kv.sqlite3")];
    const { id } = await queue.enqueue("add", 1, 2);
    await runInline(queue.store, { tasks: new Map([["add", add]]), burst: true });
    await queue.store.kv.set(queue.store.keys.task(id), new Uint8Array(randomBytes(64)));
    assert.equal((await kvq(["doctor", ...kv])).code, 0, "no claim met it");
    const scan = await kvq(["doctor", "--scan", ...kv]);
    assert.equal(scan.code, 1);
    assert.match(scan.out, /1 damaged record\(s\) \(1 records read\)/);
    const fix = await kvq(["doctor", "--delete", ...kv]);
    assert.match(fix.out, /deleted 1/);
    assert.equal(fix.code, 0);
  });
});
