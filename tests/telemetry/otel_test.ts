/**
 * OpenTelemetry: a cluster with the SDK's in-memory exporters records a producer span for the
 * enqueue and a consumer span per attempt, linked to it, with the task's attributes, and the
 * task metrics; a malformed stored traceparent is ignored with a warning.
 */
import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { metrics, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";
import { Cluster } from "../../src/cluster/cluster.ts";
import { runInline } from "../../src/cluster/inline.ts";
import { taskMap } from "../../src/deploy/mod.ts";
import { openQueue } from "../../src/queue/queue.ts";
import { parseTraceContext, tracingOn } from "../../src/telemetry/otel.ts";
import { CONTROL_TASKS } from "../control/_helpers.ts";
import { CLUSTER_TASKS } from "../cluster/_process.ts";
import { Dashboard } from "../../src/web/dashboard.ts";
import { Client } from "../web/_helpers.ts";
import { tempDir } from "../store/_helpers.ts";

test("spans and metrics of a task that fails once, then succeeds", async () => {
  assert.equal(tracingOn(), false, "no SDK yet: nothing is traced");
  const spans = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const exported = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({
    exporter: exported,
    exportIntervalMillis: 60_000,
  });
  const meters = new MeterProvider({ readers: [reader] });
  trace.setGlobalTracerProvider(provider);
  metrics.setGlobalMeterProvider(meters);
  await using dir = tempDir();
  const kv = `${dir.path}/kv.sqlite3`;
  await using queue = await openQueue({ kv });
  const cluster = new Cluster({ kv, tasks: [CONTROL_TASKS], workers: 1, heartbeat: 200 });
  // Waiting an hour, in its own partition: the depth gauges count it.
  await queue.enqueue({
    func: "later",
    eta: new Date(Date.now() + 3_600_000),
    partition: "tenant-2",
  });
  try {
    await cluster.start();
    const { id } = await queue.enqueue({
      func: "failFirst",
      maxAttempts: 2,
      backoff: { type: "fixed", delay: 0 },
      partition: "tenant-1",
    });
    assert.equal(await queue.result(id, { wait: 10_000 }), 2);
    // The second attempt's span ends when its outcome is stored, just before the wait returns.
    for (let i = 0; i < 100 && spans.getFinishedSpans().length < 4; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const record = (await queue.fetch(id))!;
    const all = spans.getFinishedSpans();
    const producer = all.find((s) =>
      s.kind === SpanKind.PRODUCER && s.name === "kvq enqueue failFirst"
    );
    assert.ok(producer, `a producer span among ${all.map((s) => s.name)}`);
    assert.equal(producer.name, "kvq enqueue failFirst");
    const p = producer.spanContext();
    assert.equal(record.traceparent, `00-${p.traceId}-${p.spanId}-01`, "the task carries it");
    const runs = all.filter((s) => s.kind === SpanKind.CONSUMER)
      .sort((a, b) =>
        Number(a.attributes["kvq.task.attempt"]) - Number(b.attributes["kvq.task.attempt"])
      );
    assert.equal(runs.length, 2, "one span per attempt");
    const first = runs[0]!.spanContext();
    for (const [i, run] of runs.entries()) {
      assert.equal(run.name, "kvq run failFirst");
      assert.deepEqual(
        run.links.map((l) => [l.context.traceId, l.context.spanId]),
        i === 0 ? [[p.traceId, p.spanId]] : [[p.traceId, p.spanId], [first.traceId, first.spanId]],
        i === 0 ? "linked to the enqueue" : "linked to the enqueue and to the first attempt",
      );
      assert.equal(run.attributes["kvq.task.id"], id);
      assert.equal(run.attributes["kvq.task.name"], record.name);
      assert.equal(run.attributes["kvq.task.func"], "failFirst");
      assert.equal(run.attributes["kvq.queue"], "default");
      assert.equal(run.attributes["kvq.task.partition"], "tenant-1");
      assert.equal(run.attributes["kvq.task.attempt"], i + 1);
    }
    assert.equal(runs[0]!.attributes["kvq.task.outcome"], "failure");
    assert.equal(runs[0]!.status.code, SpanStatusCode.ERROR);
    assert.match(runs[0]!.status.message ?? "", /first attempt fails/);
    assert.equal(runs[1]!.attributes["kvq.task.outcome"], "success");
    assert.notEqual(runs[1]!.status.code, SpanStatusCode.ERROR);
    assert.ok(runs[1]!.spanContext().spanId !== runs[0]!.spanContext().spanId, "a new span");

    await reader.forceFlush();
    const points = new Map<string, { attributes: Record<string, unknown>; value: unknown }[]>();
    for (const rm of exported.getMetrics()) {
      for (const sm of rm.scopeMetrics) {
        for (const m of sm.metrics) {
          points.set(
            m.descriptor.name,
            m.dataPoints.map((d) => ({ attributes: d.attributes, value: d.value })),
          );
        }
      }
    }
    const sum = (name: string, where: (a: Record<string, unknown>) => boolean = () => true) =>
      (points.get(name) ?? []).filter((d) => where(d.attributes))
        .reduce(
          (n, d) =>
            n + (typeof d.value === "number" ? d.value : (d.value as { count: number }).count),
          0,
        );
    assert.equal(sum("kvq.tasks.started"), 2);
    assert.equal(sum("kvq.tasks.finished", (a) => a["kvq.task.outcome"] === "failure"), 1);
    assert.equal(sum("kvq.tasks.finished", (a) => a["kvq.task.outcome"] === "success"), 1);
    assert.equal(sum("kvq.task.run_time"), 2, "two run times recorded");
    assert.equal(sum("kvq.task.wait_time"), 2);
    const waiting = (a: Record<string, unknown>) => a["kvq.task.state"] === "scheduled";
    assert.equal(sum("kvq.queue.depth", waiting), 1, `metrics: ${[...points.keys()]}`);
    assert.equal(
      sum("kvq.partition.depth", (a) => waiting(a) && a["kvq.task.partition"] === "tenant-2"),
      1,
    );

    // The task page shows both attempts as rows, and links the trace by the given template.
    await using dashboard = new Dashboard({
      kv,
      traceUrl: "https://tempo.example/trace/{traceId}",
    });
    await dashboard.start();
    const { body } = await new Client(dashboard).page(`/tasks/${id}`);
    assert.match(body, /<tr data-attempt="1" data-outcome="retried">[\s\S]*?first attempt fails/);
    assert.match(body, /<tr data-attempt="2" data-outcome="succeeded">/);
    assert.ok(
      body.includes(`href="https://tempo.example/trace/${p.traceId}"`),
      "the trace id is linked by the template",
    );
  } finally {
    await cluster.stop({ grace: 0 });
    trace.disable();
    metrics.disable();
    await provider.shutdown();
    await meters.shutdown();
  }
});

test("runInline (kvq work, a Deploy drain) makes the same span per attempt as a cluster", async () => {
  const spans = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  trace.setGlobalTracerProvider(provider);
  try {
    await using dir = tempDir();
    await using queue = await openQueue({ kv: `${dir.path}/kv.sqlite3` });
    const { id } = await queue.enqueue({
      func: "failFirst",
      maxAttempts: 2,
      backoff: { type: "fixed", delay: 0 },
      partition: "tenant-1",
    });
    const tasks = taskMap(await import(CONTROL_TASKS));
    const report = await runInline(queue.store, { tasks, burst: true });
    assert.deepEqual(report, { processed: 2, succeeded: 1, failed: 1 });
    const all = spans.getFinishedSpans();
    const p = all.find((s) => s.kind === SpanKind.PRODUCER)!.spanContext();
    const runs = all.filter((s) => s.kind === SpanKind.CONSUMER)
      .sort((a, b) =>
        Number(a.attributes["kvq.task.attempt"]) - Number(b.attributes["kvq.task.attempt"])
      );
    assert.equal(runs.length, 2, `spans: ${all.map((s) => s.name)}`);
    const first = runs[0]!.spanContext();
    assert.deepEqual(
      runs.map((r) => [r.name, r.attributes["kvq.task.id"], r.attributes["kvq.task.outcome"]]),
      [["kvq run failFirst", id, "failure"], ["kvq run failFirst", id, "success"]],
    );
    assert.equal(runs[0]!.status.code, SpanStatusCode.ERROR);
    assert.equal(runs[1]!.attributes["kvq.task.partition"], "tenant-1");
    assert.match(String(runs[0]!.attributes["kvq.cluster"]), /^inline-/);
    assert.deepEqual(
      runs[1]!.links.map((l) => l.context.spanId),
      [p.spanId, first.spanId],
      "the retry links to the enqueue and to the first attempt",
    );
  } finally {
    trace.disable();
    await provider.shutdown();
  }
});

test("a task that comes back unstarted from a starved worker ends the span of that hand-over", async () => {
  const spans = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  trace.setGlobalTracerProvider(provider);
  await using dir = tempDir();
  const kv = `${dir.path}/kv.sqlite3`;
  const log = `${dir.path}/starts.txt`;
  await using queue = await openQueue({ kv });
  await queue.setLimits({ rate: "100/1s" });
  // As in limits_test: the next task reaches the worker while its thread spins for 300 ms.
  const cluster = new Cluster({ kv, tasks: [CLUSTER_TASKS], workers: 1, prefetch: 0 });
  let handed = 0;
  let runs: ReturnType<typeof spans.getFinishedSpans> = [];
  try {
    await cluster.start();
    await queue.enqueue("hogAfter", 300);
    const next = await queue.enqueue("stamp", log);
    cluster.on("task:start", (e) => {
      if (e.record.id === next.id) handed++;
    });
    assert.equal((await queue.wait(next.id, { wait: 10_000 })).state, "succeeded");
    await cluster.stop();
    runs = spans.getFinishedSpans().filter((s) => s.name === "kvq run stamp");
  } finally {
    await cluster.stop();
    trace.disable();
    await provider.shutdown();
  }
  assert.ok(handed >= 2, `handed over ${handed} time(s)`);
  assert.equal(runs.length, handed, `one ended span per hand-over: ${runs.length} of ${handed}`);
  assert.equal(
    runs.filter((s) => s.attributes["kvq.task.outcome"] === "returned").length,
    handed - 1,
  );
});

test("a malformed stored traceparent is ignored with one warning, never a crash", () => {
  const warned: unknown[] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => warned.push(args.join(" "));
  try {
    for (const bad of ["garbage", "00-xyz-abc-01", `00-${"0".repeat(32)}-${"1".repeat(16)}-01`]) {
      assert.equal(parseTraceContext(bad, null), null, bad);
    }
    assert.ok(parseTraceContext(`00-${"a".repeat(32)}-${"b".repeat(16)}-01`, "k=v"));
  } finally {
    console.warn = warn;
  }
  assert.equal(warned.length, 1);
  assert.match(String(warned[0]), /malformed traceparent "garbage"/);
});
