/**
 * What every long-running `tessera` role does the same way as a process: pino logs on stdout
 * (JSON lines for machines and log files, pretty when stdout is a terminal), and a clean stop
 * on the first SIGTERM or SIGINT with a hard deadline, so a supervisor never waits on a hung
 * process. Roles log `{"msg":"listening","url":...,"port":...}` once serving; supervisors
 * (bin/local-cluster.ts) and tests wait for that line.
 */
import pino, { type Logger } from "pino";
import PinoPretty from "pino-pretty";
import type { LogLevel } from "./settings.js";

export function createRoleLogger(level: LogLevel, base: Record<string, string>): Logger {
  const options = { level, base, timestamp: pino.stdTimeFunctions.isoTime };
  // Synchronous writes: the last lines before a crash or process.exit are never lost.
  return process.stdout.isTTY ? pino(options, PinoPretty({ colorize: true })) : pino(options, pino.destination({ fd: 1, sync: true }));
}

/** Resolves on the first SIGTERM or SIGINT; a second one exits at once (status 1). */
export function waitForStopSignal(logger: Logger): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let received = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (received) {
        logger.warn({ signal }, "second signal: exiting without a clean shutdown");
        process.exit(1);
      }
      received = true;
      resolve(signal);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}

/** Exits the process with status 1 if `disarm` is not called within `deadlineMs`. */
export function armShutdownDeadline(logger: Logger, deadlineMs: number): { disarm(): void } {
  const timer = setTimeout(() => {
    logger.fatal(`shutdown took over ${deadlineMs} ms; exiting now`);
    process.exit(1);
  }, deadlineMs);
  timer.unref();
  return { disarm: () => clearTimeout(timer) };
}
