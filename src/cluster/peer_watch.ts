/**
 * The peer watch: how a cluster learns at once that another cluster on the same host and the
 * same KV file died, without polling. Each cluster listens on a Unix socket in the KV file's
 * signal folder (`peer-<pid>.sock`); a cluster that sees a same-host peer in the heartbeats
 * connects to it and keeps the connection. When a process dies, even by SIGKILL, the kernel
 * closes its end, and the watcher's `close` event runs recovery then rather than at the next
 * heartbeat. An idle cluster pays nothing for it: a connection that carries no data.
 *
 * It is an accelerator only: the heartbeat's lease recovery stays the mechanism, and a peer that
 * can't be watched (a path too long for a socket, remote KV) is recovered by it as before.
 *
 * States of one peer: `connecting` → `watching` → `gone` (once; a peer is never watched twice).
 *
 * @module
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import process from "node:process";
import { delay } from "../runtime/delay.ts";

/** Longest Unix socket path Linux accepts (108 bytes with the terminating NUL). */
const MAX_SOCKET_PATH = 107;

/** How long after a peer's socket closes its process may take to count as ended, in ms. */
const ENDED_WAIT_MS = 3000;

/** How often that is looked at meanwhile, in ms (only after a close). */
const ENDED_POLL_MS = 10;

/** A same-host peer as its heartbeat names it. */
export interface Peer {
  /** The cluster id. */
  id: string;
  /** Its process id on this host. */
  pid: number;
}

/** Options for {@linkcode PeerWatch}. */
export interface PeerWatchOptions {
  /** The KV file's signal folder. */
  dir: string;
  /** Called once per watched peer whose process ended. */
  onGone(peer: Peer): void;
  /**
   * Called when a peer connects to this one: a cluster that just started. Reading the
   * heartbeats then lets this one watch it back without waiting for its next beat.
   */
  onJoin(): void;
  /** Stops reporting; {@linkcode PeerWatch.close} ends the sockets (last, after a stop). */
  signal: AbortSignal;
  /** Errors that do not stop the cluster (a socket that can't be made). */
  report(error: Error, context: string): void;
}

/** The socket path of process `pid`, or null when it is too long for a Unix socket. */
export function peerSocket(dir: string, pid: number): string | null {
  const path = join(dir, `peer-${pid}.sock`);
  return Buffer.byteLength(path) <= MAX_SOCKET_PATH ? path : null;
}

/** See the module doc. */
export class PeerWatch implements AsyncDisposable {
  readonly #options: PeerWatchOptions;
  #server: Server | null = null;
  #path: string | null = null;
  readonly #peers = new Map<number, { peer: Peer; socket: Socket }>();
  readonly #accepted = new Set<Socket>();

  constructor(options: PeerWatchOptions) {
    this.#options = options;
  }

  /** Listens on this process's socket. A stale socket of a dead process of the same pid goes. */
  async start(): Promise<void> {
    const path = peerSocket(this.#options.dir, process.pid);
    if (path === null) return;
    try {
      mkdirSync(this.#options.dir, { recursive: true });
      if (existsSync(path)) unlinkSync(path);
      pruneStaleSockets(this.#options.dir);
      const server = createServer((socket) => {
        this.#accepted.add(socket);
        socket.on("error", () => {});
        this.#options.onJoin();
        socket.on("close", () => this.#accepted.delete(socket));
      });
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(path, () => resolve());
      });
      server.on("error", (error) => this.#options.report(error, "peer watch"));
      this.#server = server;
      this.#path = path;
    } catch (error) {
      this.#options.report(error as Error, "peer watch");
    }
  }

  async #whenEnded(peer: Peer): Promise<void> {
    for (let waited = 0; waited < ENDED_WAIT_MS; waited += ENDED_POLL_MS) {
      if (this.#options.signal.aborted) return;
      if (processEnded(peer.pid)) {
        this.#options.onGone(peer);
        return;
      }
      await delay(ENDED_POLL_MS);
    }
    // Still alive: it closed its socket without dying. The heartbeat judges it as always.
  }

  /** Watches each of `peers` not watched yet (they run on this host, on the same KV file). */
  watch(peers: Iterable<Peer>): void {
    if (this.#options.signal.aborted) return;
    for (const peer of peers) {
      if (peer.pid === process.pid || this.#peers.has(peer.pid)) continue;
      const path = peerSocket(this.#options.dir, peer.pid);
      if (path === null || !existsSync(path)) continue;
      const socket = connect(path);
      this.#peers.set(peer.pid, { peer, socket });
      let connected = false;
      socket.on("connect", () => connected = true);
      socket.on("error", () => {});
      socket.on("close", () => {
        if (this.#options.signal.aborted || !connected) return;
        // A socket that never connected belongs to a process already gone, or to a stale file:
        // the heartbeat decides. One that was connected closes as its process exits, a moment
        // before the process counts as ended: wait for that (briefly), then report it.
        void this.#whenEnded(peer);
      });
    }
  }

  /** Stops listening and watching, and removes this process's socket. */
  async close(): Promise<void> {
    for (const { socket } of this.#peers.values()) socket.destroy();
    this.#peers.clear();
    for (const socket of this.#accepted) socket.destroy();
    this.#accepted.clear();
    const server = this.#server;
    this.#server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (this.#path !== null) {
      try {
        unlinkSync(this.#path);
      } catch {
        // gone already
      }
      this.#path = null;
    }
  }

  /** Same as {@linkcode close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Removes the sockets of processes that ended without removing theirs (SIGKILL). */
function pruneStaleSockets(dir: string): void {
  for (const name of readdirSync(dir)) {
    const pid = Number(/^peer-(\d+)\.sock$/.exec(name)?.[1]);
    if (!Number.isSafeInteger(pid) || pid === process.pid || !processEnded(pid)) continue;
    try {
      unlinkSync(join(dir, name));
    } catch {
      // gone already
    }
  }
}

/** Whether process `pid` has ended: gone, or a zombie not reaped yet (Linux `/proc`). */
export function processEnded(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as { code?: string }).code !== "EPERM";
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z";
  } catch {
    return false;
  }
}
