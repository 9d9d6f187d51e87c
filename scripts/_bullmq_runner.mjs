// BullMQ's side of `deno task bench --vs bullmq`, run under Node as BullMQ users run it. It
// runs one workload against the Redis at 127.0.0.1:<port> and prints its figures as one JSON
// line. The workloads mirror kvq's W1 and W2 in scripts/bench.ts:
//
//   node scripts/_bullmq_runner.mjs w1 <port> <tasks> <concurrency>
//     addBulk <tasks> no-op jobs, then one Worker at <concurrency> processes them:
//     {"enqueue tasks/s", "processing tasks/s"} (first start to last completion).
//   node scripts/_bullmq_runner.mjs w2-worker <port> <queue> <concurrency>
//     a Worker that runs no-op jobs until SIGTERM (the other process of W2).
//   node scripts/_bullmq_runner.mjs w2 <port> <queue> <tasks>
//     adds <tasks> jobs one at a time, 50 ms apart, each awaited with waitUntilFinished:
//     enqueue→start and enqueue→result in ms, sorted.
import process from "node:process";
import { Queue, QueueEvents, Worker } from "bullmq";

const [mode, portText, ...rest] = process.argv.slice(2);
const connection = { host: "127.0.0.1", port: Number(portText), maxRetriesPerRequest: null };
const name = `bench-${process.pid}-${Date.now()}`;
const noop = () => Promise.resolve(null);
const options = { removeOnComplete: false, removeOnFail: false };

async function w1(tasks, concurrency) {
  const queue = new Queue(name, { connection });
  const t0 = performance.now();
  for (let i = 0; i < tasks; i += 1000) {
    const jobs = Array.from(
      { length: Math.min(1000, tasks - i) },
      () => ({ name: "noop", data: {}, opts: options }),
    );
    await queue.addBulk(jobs);
  }
  const enqueue = tasks / ((performance.now() - t0) / 1000);
  let first = 0;
  let done = 0;
  let finished;
  const all = new Promise((resolve) => finished = resolve);
  const worker = new Worker(name, () => {
    if (first === 0) first = performance.now();
    return Promise.resolve(null);
  }, { connection, concurrency });
  worker.on("completed", () => {
    if (++done === tasks) finished(performance.now());
  });
  const last = await all;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  return { "enqueue tasks/s": enqueue, "processing tasks/s": tasks / ((last - first) / 1000) };
}

async function w2Worker(queueName, concurrency) {
  const worker = new Worker(queueName, noop, { connection, concurrency });
  await worker.waitUntilReady();
  process.stdout.write("ready\n");
  await new Promise((resolve) => process.once("SIGTERM", resolve));
  await worker.close();
}

async function w2(queueName, tasks) {
  const queue = new Queue(queueName, { connection });
  const events = new QueueEvents(queueName, { connection });
  await events.waitUntilReady();
  const toStart = [];
  const toResult = [];
  for (let i = 0; i < tasks; i++) {
    const wall = Date.now();
    const t0 = performance.now();
    const job = await queue.add("noop", {}, options);
    await job.waitUntilFinished(events, 10_000);
    toResult.push(performance.now() - t0);
    const stored = await queue.getJob(job.id);
    toStart.push(stored.processedOn - wall);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await events.close();
  await queue.obliterate({ force: true });
  await queue.close();
  const sort = (xs) => xs.sort((a, b) => a - b);
  return { toStart: sort(toStart), toResult: sort(toResult) };
}

let out;
if (mode === "w1") out = await w1(Number(rest[0]), Number(rest[1]));
else if (mode === "w2-worker") out = await w2Worker(rest[0], Number(rest[1]));
else if (mode === "w2") out = await w2(rest[0], Number(rest[1]));
else {
  console.error(`unknown mode ${JSON.stringify(mode)}: use w1, w2 or w2-worker`);
  process.exit(2);
}
if (out !== undefined) process.stdout.write(JSON.stringify(out) + "\n");
process.exit(0);
