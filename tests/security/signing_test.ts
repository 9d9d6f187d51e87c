/**
 * Payload signing for a shared KV: a cluster or worker with a secret runs only tasks whose
 * HMAC verifies, refuses the rest for good with SignatureError, and accepts old secrets during
 * rotation.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { Cluster } from "../../src/cluster/cluster.ts";
import { runInline } from "../../src/cluster/inline.ts";
import { main } from "../../src/cli/main.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { TaskRecord } from "../../src/task/record.ts";
import { resolveSecrets, SignatureError } from "../../src/task/signature.ts";
import { Schedules } from "../../src/schedule/api.ts";
import { fireDueSchedules } from "../../src/schedule/fire.ts";
import { getSchedule } from "../../src/schedule/get.ts";
import { runScheduleNow } from "../../src/schedule/run_now.ts";

const NEW = "n".repeat(32);
const OLD = "o".repeat(32);
const OTHER = "x".repeat(32);
const tasksFile = new URL("../../examples/tasks.ts", import.meta.url).pathname;

function tempKv(): { kv: string; [Symbol.dispose](): void } {
  const dir = mkdtempSync(join(tmpdir(), "kvq-sign-"));
  return {
    kv: join(dir, "kv.sqlite3"),
    [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Runs queued tasks inline with `secret`; returns how often the task function really ran. */
async function runWith(kv: string, secret: string | string[] | null): Promise<number> {
  await using queue = await openQueue({ kv, secret });
  let calls = 0;
  await runInline(queue.store, {
    tasks: new Map([["add", (a: number, b: number) => (calls++, a + b)]]),
    burst: true,
  });
  return calls;
}

test("runInline() with a secret refuses an unsigned task for good and never runs it", async () => {
  using dir = tempKv();
  let id: string;
  {
    await using producer = await openQueue({ kv: dir.kv, secret: null });
    id = (await producer.enqueue("add", 1, 2)).id;
  }
  assert.equal(await runWith(dir.kv, NEW), 0);
  await using queue = await openQueue({ kv: dir.kv, secret: null });
  const record = (await queue.fetch(id))!;
  assert.equal(record.state, "failed");
  assert.equal(record.error?.name, "SignatureError");
  assert.match(record.error!.message, /not signed/);
  assert.equal(record.attempt, 1, "refused once, not retried");
});

test("runInline() runs a task signed with its secret, or with an old secret during rotation", async () => {
  using dir = tempKv();
  {
    await using producer = await openQueue({ kv: dir.kv, secret: NEW });
    await producer.enqueue("add", 1, 2);
  }
  assert.equal(await runWith(dir.kv, NEW), 1);
  {
    await using oldProducer = await openQueue({ kv: dir.kv, secret: OLD });
    await oldProducer.enqueue("add", 3, 4);
  }
  assert.equal(await runWith(dir.kv, [NEW, OLD]), 1, "an old secret still verifies");
  {
    await using oldProducer = await openQueue({ kv: dir.kv, secret: OLD });
    await oldProducer.enqueue("add", 5, 6);
  }
  assert.equal(await runWith(dir.kv, NEW), 0, "once the old secret is dropped, it does not");
});

test("runInline() refuses a signed task whose arguments were changed in KV", async () => {
  using dir = tempKv();
  await using queue = await openQueue({ kv: dir.kv, secret: NEW });
  const { id } = await queue.enqueue("add", 1, 2);
  const key = queue.store.keys.task(id);
  const entry = await queue.store.kv.get(key);
  // As an attacker with write access to KV would: the stored JSON, other arguments.
  const stored = JSON.parse(new TextDecoder().decode(entry.value as Uint8Array));
  const tampered = TaskRecord.fromJSON(key, { ...stored, args: [1000, 2000] });
  await queue.store.kv.set(key, tampered.encode());
  assert.equal(await runWith(dir.kv, NEW), 0);
  const record = (await queue.fetch(id))!;
  assert.equal(record.state, "failed");
  assert.equal(record.error?.name, "SignatureError");
  assert.match(record.error!.message, /no secret of this cluster verifies/);
});

test("Cluster with a secret fails unsigned and wrongly signed tasks and runs signed ones", async () => {
  using dir = tempKv();
  await using signed = await openQueue({ kv: dir.kv, secret: NEW });
  await using other = await openQueue({ kv: dir.kv, secret: OTHER });
  await using plain = await openQueue({ kv: dir.kv, secret: null });
  const good = await signed.enqueue("add", 2, 3);
  const wrong = await other.enqueue("add", 2, 3);
  const none = await plain.enqueue("add", 2, 3);
  const cluster = new Cluster({
    kv: dir.kv,
    tasks: [tasksFile],
    workers: 1,
    secret: NEW,
    burst: true,
  });
  await cluster.start();
  await cluster.stopped;
  assert.equal(await signed.result(good.id), 5);
  for (const t of [wrong, none]) {
    const record = (await plain.fetch(t.id))!;
    assert.equal(record.state, "failed");
    assert.equal(record.error?.name, "SignatureError");
  }
});

test("kvq --secret signs on enqueue and work refuses what another secret signed", async () => {
  using dir = tempKv();
  const lines: string[] = [];
  const io = { out: (t: string) => lines.push(t), err: (t: string) => lines.push(t), tty: false };
  assert.equal(
    await main(
      ["enqueue", "add", "--args", "[1,2]", "--kv", dir.kv, "--secret", NEW, "--json"],
      "",
      io,
    ),
    0,
  );
  const { id } = JSON.parse(lines.at(-1)!);
  assert.equal(
    await main(
      ["work", "--tasks", tasksFile, "--burst", "--kv", dir.kv, "--secret", OTHER],
      "",
      io,
    ),
    0,
  );
  assert.equal(await main(["result", id, "--kv", dir.kv], "", io), 1);
  assert.match(lines.join("\n"), /SignatureError/);
});

test("resolveSecrets() refuses a short secret and reads a list with old secrets", () => {
  assert.throws(() => resolveSecrets("short"), /at least 16 characters/);
  assert.deepEqual(resolveSecrets(`${NEW},${OLD}`), { current: NEW, old: [OLD] });
  assert.equal(resolveSecrets(null), null);
});

test("fireDueSchedules() with a secret fires only schedules signed with it, never signing for an unsigned or changed one", async () => {
  using dir = tempKv();
  await using plain = await openQueue({ kv: dir.kv, secret: null });
  await using signed = await openQueue({ kv: dir.kv, secret: NEW });
  const every = { type: "minutes" as const, minutes: 1 };
  await new Schedules(plain.store).add("unsigned", "add", [1, 2], every);
  await new Schedules(signed.store).add("good", "add", [1, 2], every);
  await new Schedules(signed.store).add("forged", "add", [1, 2], every);
  // Someone with write access to the KV changes what the signed schedule runs.
  const key = signed.store.keys.schedule("forged");
  const stored = JSON.parse(
    new TextDecoder().decode((await signed.store.kv.get<Uint8Array>(key)).value!),
  );
  await signed.store.kv.set(
    key,
    new TextEncoder().encode(JSON.stringify({ ...stored, func: "echo", args: ["rm -rf"] })),
  );

  const refused: Error[] = [];
  assert.equal(await fireDueSchedules(signed.store, { onRefused: (e) => refused.push(e) }), 1);
  assert.deepEqual(refused.map((e) => e.name), ["SignatureError", "SignatureError"]);
  assert.match(
    refused.map((e) => e.message).join("\n"),
    /"unsigned" of queue default is not signed/,
  );
  assert.match(
    refused.map((e) => e.message).join("\n"),
    /"forged" .*no secret of this cluster verifies/,
  );
  // Refused once: their due entries are gone, so they are not refused again on every wake.
  assert.equal(await fireDueSchedules(signed.store, { onRefused: (e) => refused.push(e) }), 0);
  assert.equal(refused.length, 2);
  // The schedules stay for an operator to add again with the secret.
  assert.ok(await getSchedule(signed.store, "unsigned"));
  await assert.rejects(runScheduleNow(signed.store, "forged"), SignatureError);
  // The task of the good one is signed and runs.
  const tasks = (await signed.tasks({ state: "queued" })).tasks;
  assert.deepEqual(tasks.map((t) => [t.func, t.args]), [["add", [1, 2]]]);
  assert.equal(await runWith(dir.kv, NEW), 1);
});

test("a chain's later steps run only as signed: a step changed in KV is never created", async () => {
  using dir = tempKv();
  await using queue = await openQueue({ kv: dir.kv, secret: NEW });
  const good = await queue.chain([{ func: "add", args: [1, 2] }, { func: "add", args: [3, 4] }]);
  const forged = await queue.chain([{ func: "add", args: [1, 2] }, { func: "add", args: [5, 6] }]);
  const key = queue.store.keys.chain(forged);
  const stored = JSON.parse(
    new TextDecoder().decode((await queue.store.kv.get<Uint8Array>(key)).value!),
  );
  stored.steps[1].func = "echo";
  stored.steps[1].args = ["forged"];
  await queue.store.kv.set(key, new TextEncoder().encode(JSON.stringify(stored)));

  const ran: string[] = [];
  await runInline(queue.store, {
    tasks: new Map<string, (...a: unknown[]) => unknown>([
      ["add", (a, b) => (ran.push(`add ${a} ${b}`), (a as number) + (b as number))],
      ["echo", (...a) => (ran.push(`echo ${a}`), a)],
    ]),
    burst: true,
  });
  assert.deepEqual((await queue.chainStatus(good)).state, "succeeded");
  const status = await queue.chainStatus(forged);
  assert.equal(status.state, "failed");
  assert.equal(status.error?.name, "SignatureError");
  assert.match(status.error!.message, /no secret of this cluster verifies/);
  assert.deepEqual(ran.sort(), ["add 1 2", "add 1 2", "add 3 4"], "the forged step never ran");
});

/** Rewrites task `id`'s stored record through `patch`, as someone with write access could. */
async function tamper(
  queue: Awaited<ReturnType<typeof openQueue>>,
  id: string,
  patch: (r: Record<string, unknown>) => void,
): Promise<void> {
  const key = queue.store.keys.task(id);
  const r = JSON.parse(
    new TextDecoder().decode((await queue.store.kv.get<Uint8Array>(key)).value!),
  );
  patch(r);
  await queue.store.kv.set(key, new TextEncoder().encode(JSON.stringify(r)));
}

test("a signed task whose priority, timeout or attempts were changed in KV is refused", async () => {
  using dir = tempKv();
  await using queue = await openQueue({ kv: dir.kv, secret: NEW });
  const ids = [];
  for (const patch of [{ priority: -100 }, { timeout: 1 }, { maxAttempts: 99 }]) {
    const { id } = await queue.enqueue({ func: "add", args: [1, 2], maxAttempts: 1 });
    await tamper(queue, id, (r) => Object.assign(r, patch));
    ids.push(id);
  }
  assert.equal(await runWith(dir.kv, NEW), 0);
  for (const id of ids) {
    const record = (await queue.fetch(id))!;
    assert.equal(record.error?.name, "SignatureError", id);
    assert.match(record.error!.message, /changed in KV/);
  }
});

test("a finished signed task set back to queued in KV is not run again; a retry with the secret runs it", async () => {
  using dir = tempKv();
  await using queue = await openQueue({ kv: dir.kv, secret: NEW });
  const { id } = await queue.enqueue("add", 1, 2);
  assert.equal(await runWith(dir.kv, NEW), 1);
  assert.equal((await queue.fetch(id))!.state, "succeeded");
  // Replay: the record is put back to queued, with a ready entry, as if it had never run.
  await tamper(
    queue,
    id,
    (r) => Object.assign(r, { state: "queued", attempt: 0, stoppedAt: null }),
  );
  await queue.store.kv.set(queue.store.keys.ready(0, id), new Uint8Array());
  assert.equal(await runWith(dir.kv, NEW), 0, "the replayed task did not run");
  const replayed = (await queue.fetch(id))!;
  assert.equal(replayed.error?.name, "SignatureError");
  assert.match(replayed.error!.message, /already finished and was set back/);
  // A retry by a process with the secret signs it again; one without the secret does not.
  await using unsigned = await openQueue({ kv: dir.kv, secret: null });
  await unsigned.retry(id);
  assert.equal(await runWith(dir.kv, NEW), 0, "retried without the secret: refused");
  await queue.retry(id);
  assert.equal(await runWith(dir.kv, NEW), 1, "retried with the secret: runs");
  assert.equal((await queue.fetch(id))!.state, "succeeded");
});
