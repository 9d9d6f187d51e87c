/**
 * A streamed text response that ends cleanly whichever side stops first: the route, the
 * browser going away (Deno cancels the body; Bun aborts the request's signal), or the dashboard
 * closing (`AppHost.trackStream`).
 *
 * @module
 */
import type { Context } from "hono";
import { runtime } from "../runtime/mod.ts";
import type { AppHost } from "./view.ts";

/** What a route writes its stream through. */
export interface TextStream {
  /** Sends `text`; nothing once ended. */
  send(text: string): void;
  /** Ends the stream (once). */
  end(): void;
  /** Whether it has ended. */
  readonly closed: boolean;
}

/**
 * A response of `contentType` whose body `start` writes. `start` may return a cleanup, run once
 * when the stream ends for any reason.
 */
export function streamResponse(
  c: Context,
  d: Pick<AppHost, "trackStream">,
  contentType: string,
  start: (stream: TextStream) => (() => void) | void,
): Response {
  const encoder = new TextEncoder();
  let controller: ReadableStreamDefaultController<Uint8Array>;
  let cleanup: (() => void) | void = undefined;
  let untrack = () => {};
  const s: TextStream = {
    closed: false,
    send(text) {
      if (s.closed) return;
      try {
        controller.enqueue(encoder.encode(text));
      } catch {
        s.end();
      }
    },
    end() {
      if (s.closed) return;
      (s as { closed: boolean }).closed = true;
      cleanup?.();
      untrack();
      try {
        controller.close();
      } catch {
        // already closed by the browser
      }
    },
  };
  const body = new ReadableStream<Uint8Array>({
    start(ctrl) {
      controller = ctrl;
      untrack = d.trackStream(() => s.end());
      // (On Deno, request.signal also aborts once a response is delivered.)
      if (runtime.name === "bun") {
        c.req.raw.signal?.addEventListener("abort", () => s.end(), { once: true });
      }
      cleanup = start(s);
      // It may have ended while starting: its cleanup still runs.
      if (s.closed) cleanup?.();
    },
    cancel() {
      s.end();
    },
  });
  return new Response(body, {
    headers: {
      "content-type": contentType,
      "cache-control": "no-store",
      "x-accel-buffering": "no",
    },
  });
}
