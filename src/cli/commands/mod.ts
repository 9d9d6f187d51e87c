/**
 * Every CLI command, in the order `kvq --help` lists them.
 *
 * @module
 */
import type { Command } from "../command.ts";
import { cancelCommand, deleteCommand, retryCommand } from "./admin.ts";
import { chainCommand } from "./chain.ts";
import { clusterCommand } from "./cluster.ts";
import { configCommand } from "./config.ts";
import { doctorCommand } from "./doctor.ts";
import { exportCommand } from "./export.ts";
import { importCommand } from "./import.ts";
import { infoCommand } from "./info.ts";
import { iterCommand } from "./iter.ts";
import { memoryCommand } from "./memory.ts";
import { migrateCommand } from "./migrate.ts";
import { monitorCommand } from "./monitor.ts";
import { purgeCommand } from "./purge.ts";
import { dashboardCommand } from "./dashboard.ts";
import { enqueueCommand } from "./enqueue.ts";
import { resultCommand } from "./result.ts";
import { scheduleCommand } from "./schedule.ts";
import { taskCommand } from "./task.ts";
import { tasksCommand } from "./tasks.ts";
import { workCommand } from "./work.ts";
import { pauseCommand, resumeCommand } from "./pause.ts";
import { limitCommand } from "./limit.ts";

/** The commands. */
export const COMMANDS: readonly Command[] = [
  clusterCommand,
  dashboardCommand,
  enqueueCommand,
  chainCommand,
  iterCommand,
  resultCommand,
  scheduleCommand,
  taskCommand,
  tasksCommand,
  cancelCommand,
  retryCommand,
  deleteCommand,
  workCommand,
  pauseCommand,
  resumeCommand,
  limitCommand,
  infoCommand,
  monitorCommand,
  memoryCommand,
  doctorCommand,
  purgeCommand,
  exportCommand,
  importCommand,
  migrateCommand,
  configCommand,
];
