/**
 * `kvq dashboard`: serve the web dashboard on its own, and the helper `kvq cluster --dashboard`
 * uses to serve it inside a cluster process.
 *
 * @module
 */
import { validateTraceUrl } from "../../task/timeline.ts";
import { queueNameOf } from "./info.ts";
import process from "node:process";
import { type Command, type CommandContext, UsageError } from "../command.ts";
import type { KvHandle } from "../../store/store.ts";
import { Dashboard, DashboardListenError, parseListen } from "../../web/dashboard.ts";

/** The default listen address. */
export const DEFAULT_LISTEN = "127.0.0.1:8080";

function listenOf(flag: string, text: string): { hostname: string; port: number } {
  try {
    return parseListen(text);
  } catch (error) {
    throw new UsageError(`${flag}: ${(error as Error).message}`);
  }
}

function tokenOf(ctx: CommandContext): string | null {
  const flag = ctx.values.token;
  if (typeof flag === "string") return flag;
  const env = process.env.KVQ_DASHBOARD_TOKEN;
  return env === undefined || env === "" ? null : env;
}

/** The queues `--queue` (or `KVQ_QUEUE`) names, or undefined for every queue in the store. */
function queuesOf(ctx: CommandContext): string[] | undefined {
  const given = ctx.values.queue ?? process.env.KVQ_QUEUE;
  if (given === undefined || given === "") return undefined;
  const names = String(given).split(",").map(queueNameOf).filter(Boolean);
  return names.length > 0 ? names : undefined;
}

async function serve(
  ctx: CommandContext,
  options: {
    kv: string | KvHandle | null;
    /** The flag that gave the address, for messages: `--listen` or `--dashboard`. */
    flag: string;
    listen: string;
    readOnly: boolean;
    health?: () => boolean;
  },
): Promise<Dashboard> {
  const { hostname, port } = listenOf(options.flag, options.listen);
  let dashboard: Dashboard;
  const queues = queuesOf(ctx);
  const traceUrl = ctx.values["trace-url"];
  if (traceUrl !== undefined) {
    try {
      validateTraceUrl(String(traceUrl));
    } catch (error) {
      throw new UsageError(`--trace-url: ${(error as Error).message}`);
    }
  }
  try {
    dashboard = new Dashboard({
      ...(options.kv !== null ? { kv: options.kv } : {}),
      ...(queues !== undefined ? { queues } : {}),
      token: tokenOf(ctx),
      readOnly: options.readOnly,
      ...(options.health ? { health: options.health } : {}),
      ...(traceUrl !== undefined ? { traceUrl: String(traceUrl) } : {}),
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  await dashboard.start();
  try {
    await dashboard.listen({ hostname, port });
  } catch (error) {
    await dashboard.close();
    // Can't listen (the port is taken, a bind without a token): a setup error, exit 2.
    if (!(error instanceof DashboardListenError)) throw error;
    const hint = error.suggestion ? ` Try ${options.flag} ${error.suggestion}.` : "";
    throw new UsageError(`${options.flag} ${options.listen}: ${error.message}${hint}`);
  }
  ctx.err(
    `kvq: dashboard on ${dashboard.url}/${options.readOnly ? " (read-only)" : ""}${
      tokenOf(ctx) ? " (token required)" : ""
    }`,
  );
  return dashboard;
}

/**
 * Starts the dashboard of `kvq cluster --dashboard HOST:PORT` on the cluster's KV handle.
 * Resolves with the function that stops it.
 */
export async function startClusterDashboard(
  ctx: CommandContext,
  handle: KvHandle,
  options: { health?: () => boolean } = {},
): Promise<() => Promise<void>> {
  const listen = ctx.values.dashboard;
  if (typeof listen !== "string") return () => Promise.resolve();
  const dashboard = await serve(ctx, {
    kv: handle,
    flag: "--dashboard",
    listen,
    readOnly: ctx.values["dashboard-read-only"] === true,
    ...(options.health ? { health: options.health } : {}),
  });
  return () => dashboard.close();
}

/** `kvq dashboard [--listen HOST:PORT] [--token T] [--read-only]` */
export const dashboardCommand: Command = {
  name: "dashboard",
  readsOnly: true,
  summary: "Serve the web dashboard",
  usage:
    "kvq dashboard [--listen HOST:PORT] [--token TOKEN] [--read-only] [--queue A,B] [--trace-url URL]",
  options: {
    listen: { type: "string" },
    token: { type: "string" },
    "read-only": { type: "boolean" },
    "trace-url": { type: "string" },
  },
  help: `  --listen HOST:PORT   where to listen (default ${DEFAULT_LISTEN}; port 0 picks a free one)
  --token TOKEN        required to sign in (default: KVQ_DASHBOARD_TOKEN); needed to bind
                       anything but 127.0.0.1 / localhost; at least 16 characters
  --read-only          hide every action and refuse them
  --queue A,B          show only these queues (default: KVQ_QUEUE, else every queue in the
                       store, with a switcher)
  --trace-url URL      link a task's trace id there; URL holds {traceId}, e.g.
                       'https://tempo.example/trace/{traceId}'

Pages: overview, queues, tasks, schedules, clusters; /metrics (Prometheus), /healthz, /readyz.
Inside a cluster: kvq cluster --tasks ./tasks.ts --dashboard 127.0.0.1:8080

Examples:
  kvq dashboard
  KVQ_DASHBOARD_TOKEN=$(openssl rand -hex 16) kvq dashboard --listen 0.0.0.0:8080`,
  async run(ctx) {
    if (ctx.positionals.length > 0) {
      throw new UsageError(`Unexpected argument ${JSON.stringify(ctx.positionals[0])}`);
    }
    const dashboard = await serve(ctx, {
      kv: ctx.kv,
      flag: "--listen",
      listen: typeof ctx.values.listen === "string" ? ctx.values.listen : DEFAULT_LISTEN,
      readOnly: ctx.values["read-only"] === true,
    });
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
        resolve();
      };
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
    });
    ctx.err("kvq: dashboard stopping");
    await dashboard.close();
    return 0;
  },
};
