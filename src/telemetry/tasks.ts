/**
 * Spans and metrics of tasks (see `otel.ts`):
 *
 * - an enqueue is a producer span (`kvq enqueue FUNC`), child of the app's active span; every
 *   task it stores carries that span's trace context;
 * - each attempt a cluster runs is a consumer span (`kvq run FUNC`) from its start to its stored
 *   outcome, linked to the producer span (a retry is a new span, linked to it and to the first
 *   attempt's span, whose trace context the record keeps as `firstRun`), with the
 *   task's id, name, func, queue, partition, attempt and outcome as attributes;
 * - metrics `kvq.tasks.started`, `kvq.tasks.finished` (by outcome), `kvq.task.wait_time` and
 *   `kvq.task.run_time` (ms histograms), per queue and partition; `kvq.queue.depth` (tasks
 *   waiting and running, by state) per queue, and `kvq.partition.depth` per partition (the
 *   200 busiest of each queue).
 *
 * With no SDK registered none of it runs: enqueue makes no span, and a cluster subscribes to
 * nothing.
 *
 * @module
 */
import type * as Api from "@opentelemetry/api";
import type { TaskRecord } from "../task/record.ts";
import { readStateCounts } from "../store/counters.ts";
import { type PartitionCounts, readPartitionCounts } from "../store/partitions.ts";
import type { Store } from "../store/store.ts";
import {
  contextOf,
  INSTRUMENTATION,
  metricsOn,
  otel,
  parseTraceContext,
  type TraceContext,
  tracingOn,
} from "./otel.ts";

/**
 * Runs `store` (the enqueue's commits) inside a producer span when tracing is on, handing it the
 * trace context its tasks carry (null: tracing is off, or no SDK).
 */
export async function withProducerSpan<T>(
  func: string,
  count: number,
  queue: string,
  store: (trace: TraceContext | null) => Promise<T>,
): Promise<T> {
  if (otel === null || !tracingOn()) return await store(null);
  const api = otel;
  const tracer = api.trace.getTracer(INSTRUMENTATION);
  return await tracer.startActiveSpan(
    count === 1 ? `kvq enqueue ${func}` : `kvq enqueue ${count} tasks`,
    {
      kind: api.SpanKind.PRODUCER,
      attributes: {
        "messaging.system": "kvq",
        "messaging.operation.type": "send",
        "messaging.destination.name": queue,
        "messaging.batch.message_count": count,
        ...(count === 1 ? { "kvq.task.func": func } : {}),
      },
    },
    async (span) => {
      try {
        return await store(contextOf(span));
      } catch (error) {
        span.recordException(error as Error);
        span.setStatus({ code: api.SpanStatusCode.ERROR, message: (error as Error).message });
        throw error;
      } finally {
        span.end();
      }
    },
  );
}

/** How often a cluster with metrics on reads its queues' counts for `kvq.queue.depth`, in ms. */
const DEPTH_MS = 10_000;

/** What a cluster emits that {@linkcode TaskTelemetry} follows. */
export interface TaskEvents {
  on(event: "task:start", listener: (e: { record: TaskRecord }) => void): unknown;
  on(
    event: "task:finish",
    listener: (e: { id: string; kind: string; record: TaskRecord | null }) => void,
  ): unknown;
}

/** The spans and metrics of the attempts one cluster runs. */
export class TaskTelemetry {
  readonly #spans = new Map<string, { span: Api.Span; record: TaskRecord }>();
  readonly #tracer: Api.Tracer | null;
  readonly #meters: Meters | null;
  readonly #cluster: string;
  readonly #offs: unknown[] = [];

  private constructor(cluster: string, tracing: boolean, metering: boolean) {
    this.#cluster = cluster;
    this.#tracer = tracing ? otel!.trace.getTracer(INSTRUMENTATION) : null;
    this.#meters = metering ? meters(otel!.metrics.getMeter(INSTRUMENTATION)) : null;
  }

  /**
   * Follows the attempts of cluster `cluster` through its events, when an SDK registered a
   * tracer or meter provider (before the cluster started); null when none did.
   */
  static attach(
    cluster: string,
    events: TaskEvents,
    stores: readonly Store[],
  ): TaskTelemetry | null {
    const tracing = tracingOn();
    const metering = metricsOn();
    if (!tracing && !metering) return null;
    const t = new TaskTelemetry(cluster, tracing, metering);
    t.#offs.push(
      events.on("task:start", (e) => t.started(e.record)),
      events.on("task:finish", (e) => t.finished(e.id, e.kind, e.record)),
    );
    if (metering) {
      // The depth gauge reports the counters as last read: read every DEPTH_MS.
      const read = () => {
        for (const store of stores) {
          readStateCounts(store).then((c) => t.#meters?.depth.set(store.queue, c), () => {});
          readPartitionCounts(store, { limit: 200 }).then(
            (p) => t.#meters?.partitions.set(store.queue, p.partitions),
            () => {},
          );
        }
      };
      read();
      const timer = setInterval(read, DEPTH_MS);
      (timer as { unref?: () => void }).unref?.();
      t.#offs.push(() => clearInterval(timer));
    }
    return t;
  }

  /** Stops following the cluster; spans still open are ended as they stand. */
  close(): void {
    for (const off of this.#offs.splice(0)) if (typeof off === "function") off();
    for (const { span } of this.#spans.values()) span.end();
    this.#spans.clear();
  }

  started(record: TaskRecord): void {
    const attributes = attributesOf(record);
    this.#meters?.started.add(1, attributes);
    if (record.startedAt !== null) {
      this.#meters?.wait.record(Math.max(0, record.startedAt - record.runAt), attributes);
    }
    if (this.#tracer === null) return;
    // Handed to a worker again: under a rate, it came back unstarted from the first.
    const before = this.#spans.get(record.id);
    if (before) {
      before.span.setAttribute("kvq.task.outcome", "returned");
      before.span.end();
    }
    const producer = parseTraceContext(record.traceparent, record.tracestate);
    // A retry links to its first attempt's span too.
    const first = record.attempt > 1 ? parseTraceContext(record.firstRun, null) : null;
    const span = this.#tracer.startSpan(`kvq run ${record.func}`, {
      kind: otel!.SpanKind.CONSUMER,
      startTime: record.startedAt ?? Date.now(),
      links: [producer, first].filter((c) => c !== null).map((context) => ({ context })),
      // A root of its own: the run happens later, elsewhere, and links to the enqueue.
      root: true,
      attributes: {
        ...attributes,
        "messaging.system": "kvq",
        "messaging.operation.type": "process",
        "messaging.destination.name": record.queue,
        "messaging.message.id": record.id,
        "kvq.task.id": record.id,
        "kvq.task.name": record.name,
        "kvq.task.attempt": record.attempt,
        "kvq.cluster": this.#cluster,
        ...(record.worker ? { "kvq.worker": record.worker } : {}),
      },
    });
    this.#spans.set(record.id, { span, record });
  }

  /** The `traceparent` of the open span of task `id`, or null. */
  runTrace(id: string): string | null {
    const open = this.#spans.get(id);
    return open ? contextOf(open.span).traceparent : null;
  }

  finished(id: string, kind: string, stored: TaskRecord | null): void {
    const open = this.#spans.get(id);
    this.#spans.delete(id);
    const record = stored ?? open?.record;
    if (record === undefined) return;
    const outcome = stored === null ? "lost" : kind;
    const attributes = { ...attributesOf(record), "kvq.task.outcome": outcome };
    this.#meters?.finished.add(1, attributes);
    const started = open?.record.startedAt ?? record.startedAt;
    const stopped = stored?.stoppedAt ?? Date.now();
    if (started !== null) this.#meters?.run.record(Math.max(0, stopped - started), attributes);
    if (open === undefined) return;
    const { span } = open;
    span.setAttribute("kvq.task.outcome", outcome);
    if (kind === "failure" || kind === "cancelled") {
      const error = stored?.error;
      span.setStatus({
        code: otel!.SpanStatusCode.ERROR,
        ...(error ? { message: `${error.name}: ${error.message}` } : {}),
      });
      if (error) span.setAttribute("kvq.task.error", error.name);
    }
    span.end(stopped);
  }
}

function attributesOf(record: TaskRecord): Api.Attributes {
  return {
    "kvq.queue": record.queue,
    "kvq.task.func": record.func,
    ...(record.partition !== null ? { "kvq.task.partition": record.partition } : {}),
  };
}

interface Meters {
  started: Api.Counter;
  finished: Api.Counter;
  wait: Api.Histogram;
  run: Api.Histogram;
  depth: Map<string, { scheduled: number; queued: number; running: number }>;
  partitions: Map<string, PartitionCounts[]>;
}

const WAITING_STATES = ["scheduled", "queued", "running"] as const;

function meters(meter: Api.Meter): Meters {
  const depth = new Map<string, { scheduled: number; queued: number; running: number }>();
  meter.createObservableGauge("kvq.queue.depth", {
    description: "Tasks of the queue waiting (scheduled, queued) and running, by state",
  }).addCallback((result) => {
    for (const [queue, counts] of depth) {
      for (const state of WAITING_STATES) {
        result.observe(counts[state], { "kvq.queue": queue, "kvq.task.state": state });
      }
    }
  });
  const partitions = new Map<string, PartitionCounts[]>();
  meter.createObservableGauge("kvq.partition.depth", {
    description: "Tasks of a partition waiting (scheduled, queued) and running, by state",
  }).addCallback((result) => {
    for (const [queue, list] of partitions) {
      for (const p of list) {
        for (const state of WAITING_STATES) {
          result.observe(p[state], {
            "kvq.queue": queue,
            "kvq.task.partition": p.partition,
            "kvq.task.state": state,
          });
        }
      }
    }
  });
  return {
    started: meter.createCounter("kvq.tasks.started", { description: "Attempts started" }),
    finished: meter.createCounter("kvq.tasks.finished", {
      description: "Attempts whose outcome was stored, by outcome",
    }),
    wait: meter.createHistogram("kvq.task.wait_time", {
      description: "From when a task could run to when its attempt started",
      unit: "ms",
    }),
    run: meter.createHistogram("kvq.task.run_time", {
      description: "From an attempt's start to its stored outcome",
      unit: "ms",
    }),
    depth,
    partitions,
  };
}
