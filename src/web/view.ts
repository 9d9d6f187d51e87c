/**
 * What the routes and pages of the dashboard read of it: narrow views that the `Dashboard`
 * implements, so that pages do not depend on the whole class (nor the class on its pages).
 *
 * @module
 */
import type { Queue } from "../queue/queue.ts";
import type { Schedules } from "../schedule/api.ts";
import type { KvHandle, Store } from "../store/store.ts";
import type { TaskRecord } from "../task/record.ts";
import type { Guard } from "./auth.ts";
import type { ChartData, ChartRange, ClusterView } from "./data.ts";

/** What {@linkcode AppHost.health} found. */
export interface HealthReport {
  /** Whether the host is healthy. */
  ok: boolean;
  /** Why not (empty when healthy). */
  reason: string;
}

/** What a page reads: the queues served, their APIs, and the shared reads. */
export interface PageView {
  /** The stores of the queues served, the default queue first. */
  readonly stores: readonly Store[];
  /** The API of queue `name`, if served. */
  queue(name: string): Queue | undefined;
  /** The schedules of queue `name`, if served. */
  schedules(name: string): Schedules | undefined;
  /** The cluster heartbeats (cached briefly). */
  clusters(): Promise<ClusterView[]>;
  /** The newest finished tasks of `store` (cached briefly). */
  recent(store: Store): Promise<TaskRecord[]>;
  /** The trace link template (`{traceId}`), or null. */
  readonly traceUrl: string | null;
  /** How long a search page scans before it answers (see `pages/search.ts`), in ms. */
  readonly searchBudgetMs: number;
  /** The overview's chart data for `store`. */
  chartData(store: Store, range?: ChartRange): Promise<ChartData>;
  /** Now, by the dashboard's clock. */
  now(): number;
  /** One render of `key` shared by the live streams that ask for it at once. */
  sharedRender<T>(key: string, load: () => Promise<T>): Promise<T>;
}

/** What the routes use besides the pages' view. */
export interface AppHost extends PageView {
  readonly handle: KvHandle;
  readonly guard: Guard;
  readonly readOnly: boolean;
  /** How often the live streams render again, in ms. */
  readonly liveInterval: number;
  health(): HealthReport;
  /** Looks for queues that appeared since the dashboard started. */
  refreshQueues(): Promise<void>;
  /** Calls `listener` on each change pulse; returns the function that stops it. */
  onPulse(listener: () => void): () => void;
  /** Registers a live stream to end at close; returns the function that forgets it. */
  trackStream(end: () => void): () => void;
}
