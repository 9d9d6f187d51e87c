/**
 * The change feed: one event source that says "KV may have changed, look again". It merges
 *
 * - in-process commits (this process's own enqueues and completions);
 * - for a local KV file, a file-system watch of a signal file that every kvq process touches
 *   after it commits. The watch is on a folder of its own beside the KV file, never on the
 *   KV file's folder: Deno's file watcher opens and closes each changed file it reports, and
 *   closing any descriptor of a SQLite file drops this process's locks on it, so another
 *   process resets the shared memory under it (measured: SIGBUS and a corrupt file when
 *   clusters were SIGKILLed and restarted). Idle, nothing touches the signal file;
 * - `kv.watch` of the queues' signal keys, for remote KV where there is no file to watch.
 *
 * Events are coalesced: listeners run at most once per macrotask however many sources fire.
 *
 * @module
 */
import {
  type FSWatcher,
  mkdirSync,
  readdirSync,
  statSync,
  unlinkSync,
  watch,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import process from "node:process";
import type { Kv } from "../runtime/mod.ts";
import type { KvLocation } from "./kv.ts";
import { delay } from "../runtime/delay.ts";

type Listener = () => void;

const localBuses = new Map<string, Set<ChangeFeed>>();

/**
 * Fans KV change notifications out to listeners. One per opened store.
 */
export class ChangeFeed {
  #location: KvLocation;
  #kv: Kv;
  #signalKeys: Deno.KvKey[];
  #listeners = new Set<Listener>();
  #watcher: FSWatcher | null = null;
  #remoteWatch: ReadableStream | null = null;
  #pending = false;
  #closed = false;

  constructor(kv: Kv, location: KvLocation, signalKeys: Deno.KvKey[]) {
    this.#kv = kv;
    this.#location = location;
    this.#signalKeys = signalKeys;
  }

  /** Registers a listener and starts the sources on first use. Returns an unsubscribe. */
  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    if (this.#listeners.size === 1) this.#start();
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#stop();
    };
  }

  /**
   * Tells every feed on the same location that this process committed: in this process
   * directly, in other local processes through the signal file.
   */
  notifyLocal(): void {
    for (const feed of localBuses.get(this.#location.location) ?? []) feed.#fire();
    const signal = signalFile(this.#location);
    if (signal) toucher.soon(signal);
  }

  /** Stops every source. */
  close(): void {
    const signal = signalFile(this.#location);
    if (signal) toucher.flush(signal.file);
    this.#closed = true;
    this.#listeners.clear();
    this.#stop();
  }

  #fire(): void {
    if (this.#pending || this.#listeners.size === 0) return;
    this.#pending = true;
    // A microtask, not a timer: a timer costs about a millisecond of latency, and this still
    // coalesces every change signalled in the same turn of the event loop.
    queueMicrotask(() => {
      this.#pending = false;
      for (const listener of [...this.#listeners]) {
        try {
          listener();
        } catch (error) {
          console.error("kvq: change listener failed:", error);
        }
      }
    });
  }

  #start(): void {
    if (this.#closed) return;
    const key = this.#location.location;
    let bus = localBuses.get(key);
    if (!bus) localBuses.set(key, bus = new Set());
    bus.add(this);
    const signal = signalFile(this.#location);
    if (signal) {
      try {
        mkdirSync(signal.dir, { recursive: true });
        pruneSignalFiles(signal.dir);
        // Each process touches a file of its own; its own touches need no wake (this process
        // already knows), so only other processes' files fire.
        const own = basename(signal.file);
        this.#watcher = watch(signal.dir, (_event, name) => {
          if (name === null || String(name) !== own) this.#fire();
        });
        this.#watcher.on("error", () => {});
      } catch (error) {
        console.error(
          `kvq: cannot watch ${signal.dir} (${
            (error as Error).message
          }); other processes' tasks will be seen at the next heartbeat.`,
        );
      }
    } else if (this.#location.remote && this.#signalKeys.length > 0) {
      this.#watchRemote();
    }
  }

  async #watchRemote(): Promise<void> {
    let backoff = 250;
    while (!this.#closed && this.#listeners.size > 0) {
      try {
        const stream = this.#kv.watch(this.#signalKeys);
        this.#remoteWatch = stream;
        for await (const _ of stream) {
          backoff = 250;
          this.#fire();
        }
      } catch {
        // the connection dropped: wait, then watch again
      }
      if (this.#closed) return;
      await delay(backoff);
      backoff = Math.min(backoff * 2, 10_000);
    }
  }

  #stop(): void {
    localBuses.get(this.#location.location)?.delete(this);
    this.#watcher?.close();
    this.#watcher = null;
    this.#remoteWatch?.cancel().catch(() => {});
    this.#remoteWatch = null;
  }
}

/**
 * This process's signal file of a local KV file: `<folder>/.<name>.kvq-signal/touched-<pid>`.
 * Null for remote KV and `:memory:`.
 */
export function signalFile(location: KvLocation): { dir: string; file: string } | null {
  if (!location.path) return null;
  const dir = join(dirname(location.path), `.${basename(location.path)}.kvq-signal`);
  return { dir, file: join(dir, `touched-${process.pid}`) };
}

/**
 * The most often a process touches its signal file, in ms. The first commit after a quiet spell
 * touches it at once (the latency that matters); the commits of a busy spell share one touch
 * per interval, each a file open on the main thread.
 */
export const TOUCH_EVERY_MS = 2;

/** The time and timers a {@linkcode Toucher} uses: the real ones, or a test's fake. */
export interface TouchClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realClock: TouchClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * Touches signal files at most every {@linkcode TOUCH_EVERY_MS}: the first commit after a quiet
 * spell at once, the commits of a busy spell in one trailing touch.
 */
export class Toucher {
  readonly #clock: TouchClock;
  readonly #write: (signal: { dir: string; file: string }) => void;
  /** Per signal file: when it was last touched, and the trailing touch due. */
  readonly #touches = new Map<string, { at: number; timer: unknown }>();

  constructor(
    options: { clock?: TouchClock; write?: (signal: { dir: string; file: string }) => void } = {},
  ) {
    this.#clock = options.clock ?? realClock;
    this.#write = options.write ?? writeSignal;
  }

  /** Touches `signal` now, or in one trailing touch when it was touched just now. */
  soon(signal: { dir: string; file: string }): void {
    let t = this.#touches.get(signal.file);
    if (!t) this.#touches.set(signal.file, t = { at: -Infinity, timer: null });
    if (t.timer !== null) return; // the trailing touch covers this commit
    const since = this.#clock.now() - t.at;
    if (since >= TOUCH_EVERY_MS) return this.#touch(signal);
    const state = t;
    state.timer = this.#clock.setTimeout(() => {
      state.timer = null;
      this.#touch(signal);
    }, TOUCH_EVERY_MS - since);
  }

  /** Writes a trailing touch now, if one is due (a store closing). */
  flush(file: string): void {
    const t = this.#touches.get(file);
    if (t?.timer == null) return;
    this.#clock.clearTimeout(t.timer);
    t.timer = null;
    this.#touch({ dir: dirname(file), file });
  }

  #touch(signal: { dir: string; file: string }): void {
    const t = this.#touches.get(signal.file);
    if (t) t.at = this.#clock.now();
    this.#write(signal);
  }
}

function writeSignal(signal: { dir: string; file: string }): void {
  try {
    writeFileSync(signal.file, "");
  } catch {
    try {
      mkdirSync(signal.dir, { recursive: true });
      writeFileSync(signal.file, "");
    } catch {
      // a read-only folder: other processes will see the change at their next heartbeat
    }
  }
}

/** This process's toucher. */
const toucher = new Toucher();

/** Signal files untouched this long belong to processes long gone. */
const SIGNAL_FILE_MAX_AGE_MS = 24 * 60 * 60 * 1000;

/** Removes other processes' signal files untouched for a day (a cheap readdir at start). */
function pruneSignalFiles(dir: string): void {
  try {
    const now = Date.now();
    for (const name of readdirSync(dir)) {
      if (!name.startsWith("touched")) continue;
      const file = join(dir, name);
      try {
        if (now - statSync(file).mtimeMs > SIGNAL_FILE_MAX_AGE_MS) unlinkSync(file);
      } catch {
        // gone already
      }
    }
  } catch {
    // an unreadable folder: nothing to prune
  }
}
