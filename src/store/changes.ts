/**
 * The change feed: one event source that says "KV may have changed, look again". It merges
 *
 * - in-process commits (this process's own enqueues and completions);
 * - a file-system watch of a local KV file's folder: its `-wal` file changes on every commit by
 *   any local process, and reads never touch it (measured), so this costs nothing when idle;
 * - `kv.watch` of the queues' signal keys, for remote KV where there is no file to watch.
 *
 * Events are coalesced: listeners run at most once per macrotask however many sources fire.
 *
 * @module
 */
import { type FSWatcher, watch } from "node:fs";
import { basename, dirname } from "node:path";
import type { Kv } from "../runtime/mod.ts";
import type { KvLocation } from "./kv.ts";

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

  /** Tells every feed on the same location in this process that this process committed. */
  notifyLocal(): void {
    for (const feed of localBuses.get(this.#location.location) ?? []) feed.#fire();
  }

  /** Stops every source. */
  close(): void {
    this.#closed = true;
    this.#listeners.clear();
    this.#stop();
  }

  #fire(): void {
    if (this.#pending || this.#listeners.size === 0) return;
    this.#pending = true;
    setTimeout(() => {
      this.#pending = false;
      for (const listener of [...this.#listeners]) {
        try {
          listener();
        } catch (error) {
          console.error("kvq: change listener failed:", error);
        }
      }
    }, 0);
  }

  #start(): void {
    if (this.#closed) return;
    const key = this.#location.location;
    let bus = localBuses.get(key);
    if (!bus) localBuses.set(key, bus = new Set());
    bus.add(this);
    if (this.#location.path) {
      const file = basename(this.#location.path);
      const wanted = new Set([file, `${file}-wal`]);
      try {
        this.#watcher = watch(dirname(this.#location.path), (_event, name) => {
          if (name !== null && wanted.has(String(name))) this.#fire();
        });
        this.#watcher.on("error", () => {});
      } catch (error) {
        console.error(
          `kvq: cannot watch ${dirname(this.#location.path)} (${
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
      await new Promise((resolve) => setTimeout(resolve, backoff));
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
