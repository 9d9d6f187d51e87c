/**
 * SIGINT and SIGTERM as a person means them: the first asks for a graceful stop, and one sent
 * again later asks to exit at once.
 *
 * One request often reaches a process more than once. A terminal's Ctrl-C signals the whole
 * foreground process group, so the sentinel and its cluster host both get it; `deno task` passes
 * the signal it got on to its child, which then has two; systemd's default
 * `KillMode=control-group` signals every process of the unit. So a signal that arrives within
 * `sameWithinMs` of the first is taken as the same request, and only a later one forces the exit.
 *
 * States: `listening` → (signal) → `stopping` → (signal after the window) → `forced`.
 *
 * @module
 */
import process from "node:process";

/** The signals that stop a kvq process. */
export const STOP_SIGNALS = ["SIGINT", "SIGTERM"] as const;

/** Options for {@linkcode listenStopSignals}. */
export interface StopSignalsOptions {
  /** Called once, on the first signal: stop gracefully. */
  onStop(signal: NodeJS.Signals): void;
  /** Called once, on a signal that comes after the window: exit at once. */
  onForce(signal: NodeJS.Signals): void;
  /**
   * Signals within this many milliseconds of the first are the same request.
   * @default {1000}
   */
  sameWithinMs?: number;
  /**
   * The clock, replaceable in tests.
   * @default {performance.now}
   */
  now?: () => number;
}

/** A subscription to the stop signals; `stop()` also counts as the first request. */
export interface StopSignals extends Disposable {
  /** Asks for a graceful stop as a first signal would (another channel, such as a pipe). */
  stop(): void;
  /** Feeds one signal in, as the process's listener does. */
  signal(signal: NodeJS.Signals): void;
}

/**
 * Listens for SIGINT and SIGTERM on this process until disposed.
 *
 * @example
 * ```ts
 * using signals = listenStopSignals({
 *   onStop: () => void cluster.stop(),
 *   onForce: () => process.exit(130),
 * });
 * ```
 */
export function listenStopSignals(options: StopSignalsOptions): StopSignals {
  const handle = stopSignalState(options);
  const listener = (signal: NodeJS.Signals) => handle.signal(signal);
  for (const s of STOP_SIGNALS) process.on(s, listener);
  return {
    stop: handle.stop,
    signal: handle.signal,
    [Symbol.dispose]() {
      for (const s of STOP_SIGNALS) process.off(s, listener);
    },
  };
}

/** The state machine of {@linkcode listenStopSignals}, with no process listeners. */
export function stopSignalState(
  options: StopSignalsOptions,
): Omit<StopSignals, typeof Symbol.dispose> {
  const window = options.sameWithinMs ?? 1000;
  const now = options.now ?? (() => performance.now());
  let state: "listening" | "stopping" | "forced" = "listening";
  let firstAt = 0;
  return {
    stop() {
      if (state !== "listening") return;
      state = "stopping";
      firstAt = now();
      options.onStop("SIGTERM");
    },
    signal(signal) {
      if (state === "listening") {
        state = "stopping";
        firstAt = now();
        options.onStop(signal);
      } else if (state === "stopping" && now() - firstAt > window) {
        state = "forced";
        options.onForce(signal);
      }
    },
  };
}
