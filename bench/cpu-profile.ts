/**
 * Reads V8 .cpuprofile files (what `node --cpu-prof` writes) and sums self time per function
 * within a time window, so a profile of a whole process life shows only the measured run.
 * Timestamps are V8's monotonic microseconds, the clock of process.hrtime on Linux.
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface FunctionCost {
  /** "name file:line", the file relative to the project or node_modules package. */
  readonly where: string;
  /** Self milliseconds within the window. */
  readonly selfMs: number;
  /** Milliseconds with this function anywhere on the stack (its callees included). */
  readonly totalMs: number;
}

export interface ProfileSummary {
  /** Milliseconds of samples within the window, idle included. */
  readonly windowMs: number;
  /** Milliseconds not idle: what the process's JS thread spent (native work on other threads is not sampled). */
  readonly busyMs: number;
  /** By self time: where the CPU is burnt. */
  readonly topSelf: readonly FunctionCost[];
  /** By total time: which paths of our code cost most, callees included. */
  readonly topTotal: readonly FunctionCost[];
}

function shortUrl(url: string): string {
  const modules = url.lastIndexOf("node_modules/");
  if (modules !== -1) return url.slice(modules + "node_modules/".length);
  const project = url.indexOf("/work/");
  const stripped = url.replace(/^file:\/\//, "");
  return project === -1 ? stripped : stripped.replace(/^.*?\/(core|gateway|storage-node|bench|bin|placement|test)\//, "$1/");
}

function label(node: ProfileNode): string {
  const frame = node.callFrame;
  if (frame.url === "") return frame.functionName || "(anonymous)";
  return `${frame.functionName || "(anonymous)"} ${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
}

/** Self and total time per function for samples taken within [fromUs, toUs]. */
export function summarizeProfile(file: string, fromUs: number, toUs: number, topCount: number): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let time = profile.startTime;
  let windowUs = 0;
  let idleUs = 0;
  profile.samples.forEach((sample, index) => {
    const delta = profile.timeDeltas[index] ?? 0;
    time += delta;
    if (time < fromUs || time > toUs) return;
    const node = byId.get(sample);
    if (node === undefined) return;
    windowUs += delta;
    const name = label(node);
    if (name === "(idle)") idleUs += delta;
    self.set(name, (self.get(name) ?? 0) + delta);
    const seen = new Set<string>();
    for (let at: number | undefined = sample; at !== undefined; at = parent.get(at)) {
      const ancestor = byId.get(at);
      if (ancestor === undefined) break;
      const ancestorName = label(ancestor);
      if (seen.has(ancestorName) || ancestorName === "(root)" || ancestorName === "(idle)") continue;
      seen.add(ancestorName);
      total.set(ancestorName, (total.get(ancestorName) ?? 0) + delta);
    }
  });
  const cost = (where: string): FunctionCost => ({ where, selfMs: (self.get(where) ?? 0) / 1000, totalMs: (total.get(where) ?? 0) / 1000 });
  const ranked = (by: Map<string, number>): FunctionCost[] =>
    [...by.entries()].filter(([name]) => name !== "(idle)").sort((a, b) => b[1] - a[1]).slice(0, topCount).map(([where]) => cost(where));
  return { windowMs: windowUs / 1000, busyMs: (windowUs - idleUs) / 1000, topSelf: ranked(self), topTotal: ranked(total) };
}
