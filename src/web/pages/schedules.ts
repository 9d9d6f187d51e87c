/**
 * Schedules: the list with each next run in the schedule's zone and the viewer's, the last task
 * and its outcome; a form to create one (or replace it, from the edit page); pause, resume, run
 * now and delete. The form is checked by the same `Schedules.add` the API uses, and its errors
 * are shown next to the form.
 *
 * @module
 */
import type { ScheduleInput } from "../../schedule/add.ts";
import type { ScheduleRecord } from "../../schedule/record.ts";
import { SCHEDULE_TYPES } from "../../schedule/spec.ts";
import { readRecords } from "../data.ts";
import { isoTime, stateBadge, time, zonedTime } from "../format.ts";
import { type Html, html } from "../html.ts";
import { csrfField, link, NotFound, type Page, type PageContext } from "../_page.ts";

/** The form's fields, as text (what the browser sent, or a record's values for editing). */
export type ScheduleForm = Record<string, string>;

/** The form values of an existing schedule, for the edit page. */
export function formOf(s: ScheduleRecord): ScheduleForm {
  return {
    name: s.name,
    func: s.func,
    args: JSON.stringify(s.args),
    type: s.type,
    minutes: s.minutes === null ? "" : String(s.minutes),
    cron: s.cron ?? "",
    tz: s.tz,
    repeats: String(s.repeats),
    nextRun: s.nextRun === null ? "" : isoTime(s.nextRun),
    catchUp: s.catchUp ? "on" : "",
    noOverlap: s.noOverlap ? "on" : "",
    intendedDateArg: s.intendedDateArg ? "on" : "",
    paused: s.paused ? "on" : "",
    priority: String(s.priority),
    timeout: s.timeout === null ? "" : String(s.timeout),
    maxAttempts: s.maxAttempts === null ? "" : String(s.maxAttempts),
  };
}

/**
 * Turns the form into the input of `Schedules.add`. Numbers are passed on as typed (a typo
 * becomes NaN, which the schedule validation rejects by field name).
 *
 * @throws {TypeError} when `args` is not JSON.
 */
export function inputOf(form: ScheduleForm): ScheduleInput {
  const num = (name: string): number | undefined => {
    const v = (form[name] ?? "").trim();
    return v === "" ? undefined : Number(v);
  };
  let args: unknown[] = [];
  const argsText = (form.args ?? "").trim();
  if (argsText !== "") {
    let parsed: unknown;
    try {
      parsed = JSON.parse(argsText);
    } catch (error) {
      throw new TypeError(
        `Schedule field "args" must be a JSON array such as [1, "two"]: ${
          (error as Error).message
        } in ${JSON.stringify(argsText)}`,
      );
    }
    if (!Array.isArray(parsed)) {
      throw new TypeError(
        `Schedule field "args" must be a JSON array such as [1, "two"]: received ${argsText}`,
      );
    }
    args = parsed;
  }
  const input: ScheduleInput = {
    name: form.name ?? "",
    func: (form.func ?? "").trim(),
    args,
    type: (form.type ?? "") as ScheduleInput["type"],
  };
  const set = <K extends keyof ScheduleInput>(key: K, value: ScheduleInput[K] | undefined) => {
    if (value !== undefined) input[key] = value;
  };
  if (input.type === "minutes") set("minutes", num("minutes"));
  if (input.type === "cron") set("cron", (form.cron ?? "").trim());
  const tz = (form.tz ?? "").trim();
  if (tz !== "") input.tz = tz;
  set("repeats", num("repeats"));
  const nextRun = (form.nextRun ?? "").trim();
  if (nextRun !== "") input.nextRun = nextRun;
  for (const flag of ["catchUp", "noOverlap", "intendedDateArg", "paused"] as const) {
    if (form[flag]) input[flag] = true;
  }
  set("priority", num("priority"));
  set("timeout", num("timeout"));
  set("maxAttempts", num("maxAttempts"));
  return input;
}

/** The create / replace form. */
export function scheduleForm(
  ctx: PageContext,
  values: ScheduleForm,
  options: { replace: boolean; error?: string },
): Html {
  const v = (k: string) => values[k] ?? "";
  const check = (k: string, label: string) =>
    html`<label class="check"><input type="checkbox" name="${k}"${
      v(k)
        ? html`
          checked
        `
        : ""
    }> ${label}</label>`;
  const type = v("type") || "minutes";
  return html`<form method="post" action="${link(ctx, "/schedules")}" data-js${
    options.replace ? "" : html`
      data-reset
    `
  } id="schedule-form">
${csrfField(ctx)}
${options.replace ? html`<input type="hidden" name="replace" value="on">` : ""}
<div class="form-grid">
  <label>name<input name="name" value="${v("name")}" required maxlength="128"${
    options.replace
      ? html`
        readonly
      `
      : ""
  }></label>
  <label>task function<input name="func" value="${
    v("func")
  }" required placeholder="sendReport"></label>
  <label>args (JSON array)<input name="args" value="${
    v("args")
  }" placeholder='["ops@example.com"]'></label>
  <label>type<select name="type" data-schedule-type>${
    SCHEDULE_TYPES.map((t) =>
      html`
        <option value="${t}" ${t === type
          ? html`
            selected
          `
          : ""}>${t}</option>
      `
    )
  }</select></label>
  <label data-for-type="minutes">every N minutes<input name="minutes" value="${
    v("minutes")
  }" inputmode="numeric"></label>
  <label data-for-type="cron">cron (5 fields, or 6 with seconds)<input name="cron" value="${
    v("cron")
  }" placeholder="0 2 * * *"></label>
  <label>time zone<input name="tz" value="${v("tz")}" placeholder="UTC"></label>
  <label>repeats (-1 forever)<input name="repeats" value="${v("repeats")}" placeholder="-1"></label>
  <label>first run (ISO 8601, empty = now)<input name="nextRun" value="${
    v("nextRun")
  }" placeholder="2026-12-01T09:00:00Z"></label>
  <label>priority<input name="priority" value="${v("priority")}" placeholder="0"></label>
  <label>timeout (ms)<input name="timeout" value="${v("timeout")}"></label>
  <label>max attempts<input name="maxAttempts" value="${v("maxAttempts")}"></label>
</div>
<div class="actions">
  ${check("catchUp", "catch up missed slots")}
  ${check("noOverlap", "no overlap")}
  ${check("intendedDateArg", "pass intended date")}
  ${check("paused", "paused")}
</div>
<div class="form-error" data-error role="alert">${options.error ?? ""}</div>
<div class="actions"><button type="submit" class="primary">${
    options.replace ? "Save schedule" : "Add schedule"
  }</button>${
    options.replace
      ? html`
        <a href="${link(ctx, "/schedules")}">cancel</a>
      `
      : ""
  }</div>
</form>`;
}

function spec(s: ScheduleRecord): string {
  if (s.type === "minutes") return `every ${s.minutes} min`;
  if (s.type === "cron") return `cron ${s.cron}`;
  return s.type;
}

/** `/schedules` (also renders the form again with an error, after a failed non-script POST) */
export function schedulesPage(form?: { values: ScheduleForm; error: string }): Page {
  return async (ctx) => {
    const schedules = await ctx.dashboard.schedules(ctx.store.queue)!.list({
      onCorrupt: (e) => console.error(`kvq dashboard: ${e.message}`),
    });
    const lastIds = schedules.map((s) => s.lastTaskId).filter((id): id is string => id !== null);
    const last = new Map((await readRecords(ctx.store, lastIds)).map((r) => [r.id, r]));
    const act = (s: ScheduleRecord, op: string, label: string, confirm?: string) =>
      html`
        <form class="inline" method="post" action="${link(ctx, "/schedules/action")}"
          data-js${confirm
            ? html`
              data-confirm="${confirm}"
            `
            : ""}>${csrfField(ctx)}<input type="hidden" name="name" value="${s
            .name}"><input type="hidden" name="op" value="${op}"><button type="submit" data-op="${op}" class="${op ===
              "delete"
            ? "danger"
            : ""}">${label}</button></form>
      `;
    const list = schedules.length === 0
      ? html`<p class="muted">No schedules in queue ${ctx.store.queue}.</p>`
      : html`
        <table>
          <thead>
            <tr><th>name</th><th>call</th><th>when</th><th>state</th><th>next run (schedule zone)</th><th>next run (yours)</th><th>repeats left</th><th>last task</th>${ctx
                .readOnly
              ? ""
              : html`<th></th>`}</tr>
          </thead>
          <tbody>${schedules.map((s) => {
            const lastTask = s.lastTaskId ? last.get(s.lastTaskId) : undefined;
            const state = s.done ? "done" : s.paused ? "paused" : "active";
            return html`<tr data-schedule="${s.name}">
<td><strong>${s.name}</strong></td>
<td class="mono small">${s.func}(${JSON.stringify(s.args).slice(1, -1)})</td>
<td>${spec(s)} <span class="muted small">${s.tz}</span></td>
<td><span class="badge ${state}">${state}</span></td>
<td>${s.nextRun === null ? "–" : zonedTime(s.nextRun, s.tz)}</td>
<td>${s.nextRun === null ? "–" : time(s.nextRun, { zone: true })}</td>
<td>${s.repeats < 0 ? "∞" : s.repeats}</td>
<td data-last-task>${
              s.lastTaskId === null
                ? html`<span class="muted">never ran</span>`
                : lastTask
                ? html`<a href="${link(ctx, `/tasks/${lastTask.id}`)}">${lastTask.name}</a> ${
                  stateBadge(lastTask.state)
                }<div class="small muted">${time(s.lastRunAt)}</div>`
                : html`<span class="muted">deleted</span> <div class="small muted">${
                  time(s.lastRunAt)
                }</div>`
            }</td>
${
              ctx.readOnly ? "" : html`
                <td>
                  <div class="actions">${s.paused
                    ? act(s, "resume", "Resume")
                    : act(s, "pause", "Pause")}${act(s, "run", "Run now")}<a href="${link(
                      ctx,
                      "/schedules/edit",
                      { name: s.name },
                    )}">Edit</a>${act(
                      s,
                      "delete",
                      "Delete",
                      `Delete schedule ${s.name}? Its tasks stay.`,
                    )}</div>
                </td>
              `
            }</tr>`;
          })}</tbody>
        </table>
      `;
    return {
      title: "Schedules",
      nav: "schedules",
      ...(form ? { status: 422 } : {}),
      body: html`<h1>Schedules</h1>
<div class="panel">${ctx.regions.wrap("schedules", list)}</div>
${
        ctx.readOnly
          ? ""
          : html`<div class="panel"><h2>Add a schedule</h2>${
            scheduleForm(ctx, form?.values ?? {}, {
              replace: false,
              ...(form ? { error: form.error } : {}),
            })
          }</div>`
      }`,
    };
  };
}

/** `/schedules/edit?name=…` */
export function scheduleEditPage(form?: { values: ScheduleForm; error: string }): Page {
  return async (ctx) => {
    if (ctx.readOnly) throw new NotFound("The dashboard is read-only: schedules can't be edited.");
    const name = ctx.url.searchParams.get("name") ?? form?.values.name ?? "";
    const record = await ctx.dashboard.schedules(ctx.store.queue)!.get(name).catch(() => null);
    if (record === null) {
      throw new NotFound(`No schedule ${JSON.stringify(name)} in queue ${ctx.store.queue}.`);
    }
    return {
      title: `Edit ${record.name}`,
      nav: "schedules",
      live: false,
      ...(form ? { status: 422 } : {}),
      body: html`<h1>Edit schedule ${record.name}</h1>
<div class="panel">${
        scheduleForm(ctx, form?.values ?? formOf(record), {
          replace: true,
          ...(form ? { error: form.error } : {}),
        })
      }
<p class="note">Saving replaces the schedule (keeping its creation time and last task); its next run is computed again from the first run given.</p></div>`,
    };
  };
}
