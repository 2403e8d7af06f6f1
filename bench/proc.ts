/**
 * What the kernel knows of a process: CPU seconds (utime + stime from /proc/<pid>/stat) and
 * peak resident memory (VmHWM from /proc/<pid>/status, which the kernel keeps itself, so no
 * sampling can miss a spike). Linux only, like the rest of the bench.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { CLOCK_TICKS_PER_SECOND } from "./limits.js";

/** Fields of /proc/<pid>/stat after the command name: utime is field 14, stime 15 (1-based). */
const UTIME_AFTER_COMM = 11;
const STIME_AFTER_COMM = 12;

/** CPU seconds (user + system) the process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name is in parentheses and may hold spaces: count fields after its ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[UTIME_AFTER_COMM]) + Number(fields[STIME_AFTER_COMM]);
  if (!Number.isFinite(ticks)) throw new Error(`unreadable /proc/${pid}/stat`);
  return ticks / CLOCK_TICKS_PER_SECOND;
}

function statusField(pid: number, field: "VmHWM" | "VmRSS"): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status);
  if (match === null) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/** Peak resident bytes since start, or since the last resetPeakRss. */
export function peakRssBytes(pid: number): number {
  return statusField(pid, "VmHWM");
}

export function rssBytes(pid: number): number {
  return statusField(pid, "VmRSS");
}

/** Resets VmHWM to the current RSS (Linux 4.0+, our own processes); false if the kernel refused. */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

export interface ProcessRef {
  /** "gateway", "n1".., "s3rver", "client". */
  readonly name: string;
  readonly pid: number;
}

/** CPU seconds of several processes at one moment, to subtract later. */
export function cpuSnapshot(processes: readonly ProcessRef[]): Map<string, number> {
  return new Map(processes.map((each) => [each.name, each.pid === process.pid ? ownCpuSeconds() : cpuSeconds(each.pid)]));
}

export function ownCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

/** CPU seconds used between two snapshots, per process name. */
export function cpuDelta(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  return new Map([...after].map(([name, seconds]) => [name, seconds - (before.get(name) ?? seconds)]));
}
