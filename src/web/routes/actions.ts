/**
 * The action routes: retry, cancel and delete a task, bulk actions, purge, pause and resume a
 * queue, and add, edit, pause, resume, run and delete schedules. Each is a POST, answered with
 * JSON for the page script or a 303 redirect for a plain form.
 *
 * @module
 */
import type { Hono } from "hono";
import { NoSuchScheduleError } from "../../schedule/errors.ts";
import { TASK_STATES, type TaskState } from "../../store/keys.ts";
import { bulk, type BulkOp, purge, retryAllFailed } from "../actions.ts";
import { type Kit, statusOf } from "../kit.ts";
import { MAX_PAUSE_REASON } from "../pages/queues.ts";
import { limitsText, parseWeight, type QueueLimitsInput } from "../../store/flow.ts";
import { inputOf, scheduleEditPage, type ScheduleForm, schedulesPage } from "../pages/schedules.ts";
import type { AppHost } from "../view.ts";

/** Adds these routes to `app`. */
export function addActionRoutes(app: Hono, d: AppHost, kit: Kit): void {
  const { action, backOf, fields, one, render, respond, storeOf, taskRef, wantsJson } = kit;
  // ── actions ────────────────────────────────────────────────────────────────────────────
  app.post(
    "/tasks/bulk",
    action(async (_c, form, store) => {
      const queue = d.queue(store.queue)!;
      if (one(form.all) === "failed") return await retryAllFailed(queue);
      const op = one(form.op);
      if (op !== "retry" && op !== "cancel" && op !== "delete") {
        throw new RangeError(
          `Bulk action must be retry, cancel or delete: received ${JSON.stringify(op)}`,
        );
      }
      const ids = ([] as string[]).concat(form.id ?? []);
      return await bulk(queue, op as BulkOp, ids);
    }),
  );
  app.post(
    "/tasks/:ref/retry",
    action(async (c, _form, store) => {
      const r = await d.queue(store.queue)!.retry(taskRef(c));
      return { message: `Task ${r.name} is queued again.` };
    }),
  );
  app.post(
    "/tasks/:ref/cancel",
    action(async (c, _form, store) => {
      const outcome = await d.queue(store.queue)!.cancel(taskRef(c));
      return {
        message: outcome === "cancelled"
          ? "Task cancelled."
          : "Cancel requested: the cluster running it will stop it.",
      };
    }),
  );
  app.post(
    "/tasks/:ref/delete",
    action(async (c, form, store) => {
      const ref = taskRef(c);
      await d.queue(store.queue)!.delete(ref);
      const back = backOf(c, form);
      // Deleting the task being viewed: go to the list instead of a page that no longer exists.
      const onDetail = back !== null && /^\/tasks\/[^/?]+/.test(back);
      return {
        message: "Task deleted.",
        ...(onDetail || back === null ? { location: "/tasks" } : {}),
      };
    }),
  );
  app.post(
    "/queues/purge",
    action(async (_c, form, store) => {
      const state = one(form.state) as TaskState;
      if (!TASK_STATES.includes(state)) {
        throw new RangeError(`Purge needs a task state: received ${JSON.stringify(state)}`);
      }
      return await purge(store, state);
    }),
  );
  app.post(
    "/queues/pause",
    action(async (_c, form, store) => {
      const reason = one(form.reason).trim();
      if (reason.length > MAX_PAUSE_REASON) {
        throw new RangeError(
          `Pause reason must be at most ${MAX_PAUSE_REASON} characters: received ${reason.length}`,
        );
      }
      await d.queue(store.queue)!.pause(reason === "" ? undefined : reason);
      return {
        message: `Paused queue ${store.queue}: clusters finish what runs and claim nothing more.`,
      };
    }),
  );
  app.post(
    "/queues/limits",
    action(async (_c, form, store) => {
      const queue = d.queue(store.queue)!;
      const text = (name: string) => one(form[name]).trim();
      const limits: QueueLimitsInput = {};
      for (const name of ["concurrency", "partitionConcurrency"] as const) {
        const value = text(name);
        if (value === "") continue;
        if (!/^\d+$/.test(value)) {
          throw new RangeError(
            `Limit ${name} must be a whole number of at least 1: received ${JSON.stringify(value)}`,
          );
        }
        limits[name] = Number(value);
      }
      for (const name of ["rate", "partitionRate"] as const) {
        if (text(name) !== "") limits[name] = text(name);
      }
      const weights = text("partitionWeights").split(",").map((w) => w.trim()).filter(Boolean);
      if (weights.length > 0) {
        limits.partitionWeights = Object.fromEntries(weights.map(parseWeight));
      }
      if (Object.keys(limits).length === 0) {
        await queue.clearLimits();
        return { message: `Queue ${store.queue} has no limits now.` };
      }
      const set = await queue.setLimits(limits);
      return { message: `Queue ${store.queue} limits: ${limitsText(set)}.` };
    }),
  );
  app.post(
    "/queues/resume",
    action(async (_c, _form, store) => {
      const queue = d.queue(store.queue)!;
      if ((await queue.paused()) === null) {
        return { message: `Queue ${store.queue} was not paused.` };
      }
      await queue.resume();
      return { message: `Resumed queue ${store.queue}.` };
    }),
  );

  const scheduleValues = (form: Record<string, string | string[]>): ScheduleForm => {
    const out: ScheduleForm = {};
    for (const [k, v] of Object.entries(form)) if (k !== "_csrf") out[k] = one(v);
    return out;
  };
  app.post("/schedules", async (c) => {
    const form = await fields(c);
    const values = scheduleValues(form);
    const replace = values.replace === "on";
    try {
      const store = storeOf(new URL(c.req.url));
      const input = inputOf(values);
      const { name, func, args, ...options } = input;
      const record = await d.schedules(store.queue)!.add(name, func, args ?? [], {
        ...options,
        ...(replace ? { replace: true } : {}),
      });
      const location = `/schedules${
        d.stores.length > 1 ? `?queue=${encodeURIComponent(store.queue)}` : ""
      }`;
      return respond(c, {
        message: `${replace ? "Saved" : "Added"} schedule ${record.name}.`,
        ...(replace ? { location } : {}),
      }, location);
    } catch (error) {
      const status = statusOf(error);
      if (status === 500) console.error("kvq dashboard: schedule add failed:", error);
      const message = (error as Error).message;
      if (wantsJson(c)) return c.json({ ok: false, error: message }, status as 400);
      const page = replace
        ? scheduleEditPage({ values, error: message })
        : schedulesPage({ values, error: message });
      const res = await render(c, page, {});
      return new Response(res.body, { status: status === 500 ? 500 : 422, headers: res.headers });
    }
  });
  app.post(
    "/schedules/action",
    action(async (_c, form, store) => {
      const name = one(form.name);
      const op = one(form.op);
      const s = d.schedules(store.queue)!;
      switch (op) {
        case "pause":
          await s.pause(name);
          return { message: `Paused schedule ${name}.` };
        case "resume":
          await s.resume(name);
          return { message: `Resumed schedule ${name}.` };
        case "run": {
          const task = await s.runNow(name);
          return { message: `Schedule ${name} enqueued task ${task.name}.` };
        }
        case "delete":
          if (!(await s.delete(name))) throw new NoSuchScheduleError(name, store.queue);
          return { message: `Deleted schedule ${name}.` };
        default:
          throw new RangeError(
            `Schedule action must be pause, resume, run or delete: received ${JSON.stringify(op)}`,
          );
      }
    }),
  );
}
