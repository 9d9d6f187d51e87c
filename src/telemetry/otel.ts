/**
 * OpenTelemetry, through the standard `@opentelemetry/api` (an optional peer dependency): kvq
 * loads it if it is installed and does nothing otherwise. With the API but no SDK registered,
 * {@linkcode tracingOn} and {@linkcode metricsOn} say so and the hot path creates no spans.
 *
 * A task carries the W3C trace context of the span that enqueued it (`traceparent`,
 * `tracestate` in its record), written and read here without the API's propagators, so it works
 * whichever propagator the app registered.
 *
 * @module
 */
import type * as Api from "@opentelemetry/api";

/** The API module, or null when it is not installed. */
export const otel: typeof Api | null = await import("@opentelemetry/api").then(
  (m) => (m.trace ? m : (m as unknown as { default: typeof Api }).default),
  () => null,
);

/** The name kvq's tracer and meter go by. */
export const INSTRUMENTATION = "kvq";

/** A task's trace context, as stored in its record. */
export interface TraceContext {
  traceparent: string;
  tracestate: string | null;
}

/** Whether an SDK registered a tracer provider (spans would be recorded). */
export function tracingOn(): boolean {
  if (otel === null) return false;
  const provider = otel.trace.getTracerProvider() as Api.ProxyTracerProvider;
  const delegate = provider.getDelegate?.();
  return delegate !== undefined && delegate.constructor !== noopTracerProvider()?.constructor;
}

/** Whether an SDK registered a meter provider. */
export function metricsOn(): boolean {
  if (otel === null) return false;
  return otel.metrics.getMeter(INSTRUMENTATION).constructor !== otel.createNoopMeter().constructor;
}

let noop: Api.TracerProvider | undefined;
function noopTracerProvider(): Api.TracerProvider | undefined {
  if (otel === null) return undefined;
  return noop ??= new otel.ProxyTracerProvider().getDelegate();
}

/** The trace context of `span`, as a task stores it. */
export function contextOf(span: Api.Span): TraceContext {
  const c = span.spanContext();
  return {
    traceparent: `00-${c.traceId}-${c.spanId}-${
      (c.traceFlags & 0xff).toString(16).padStart(2, "0")
    }`,
    tracestate: c.traceState?.serialize() || null,
  };
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;

/** Warned once per process for a malformed stored `traceparent`. */
let warned = false;

/**
 * The span context a stored trace context names, or null when there is none or it is malformed
 * (a warning then, once: a bad `traceparent` is ignored, never fatal).
 */
export function parseTraceContext(
  traceparent: string | null,
  tracestate: string | null,
): Api.SpanContext | null {
  if (otel === null || traceparent === null) return null;
  const m = TRACEPARENT.exec(traceparent);
  const context = m && m[1] !== "ff"
    ? {
      traceId: m[2]!,
      spanId: m[3]!,
      traceFlags: parseInt(m[4]!, 16),
      isRemote: true,
      ...(tracestate ? { traceState: otel.createTraceState(tracestate) } : {}),
    }
    : null;
  if (context === null || !otel.isSpanContextValid(context)) {
    if (!warned) {
      warned = true;
      console.warn(
        `kvq: ignoring a task's malformed traceparent ${
          JSON.stringify(traceparent.slice(0, 80))
        } (expected 00-<32 hex>-<16 hex>-<2 hex>)`,
      );
    }
    return null;
  }
  return context;
}
