/**
 * The results of one bench run: the JSON document (everything measured, every run) and its
 * markdown rendering (what stdout shows and bench/results/*.md keeps).
 */
import type { Ceilings } from "./ceilings.js";
import { DEGRADED_AFTER_CONDITION, DEGRADED_BASELINE_CONDITION, KiB, MiB, GiB } from "./limits.js";
import { bound, describeModel, type ModelInputs } from "./model.js";
import type { RebuildResult } from "./rebuild.js";
import { formatSpread, type Spread } from "./stats.js";
import type { CellResult } from "./workload.js";

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly node: string;
  readonly filesystem: string;
  /** 1-minute load averages at the start and the end: anything above the bench's own load skews every figure. */
  readonly loadAverage: { readonly start: number; readonly end: number };
}

export interface BenchResults {
  readonly startedAt: string;
  readonly durationSeconds: number;
  readonly machine: Machine;
  readonly options: { readonly quick: boolean; readonly seed: number; readonly runs: number; readonly runMs: number; readonly endpoint?: string };
  readonly ceilings: Ceilings;
  readonly model: readonly string[];
  readonly cells: readonly CellResult[];
  /** Peak resident bytes (VmHWM) per process over the whole run, by target then process. */
  readonly peakRssBytes: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** Tessera's gateway: its peak RSS in each phase of the run, in order ("4 KiB cells", ..., "1 GiB object", "degraded GETs", "rebuild"). */
  readonly gatewayPeakRssBytesByPhase?: Readonly<Record<string, number>>;
  readonly rebuild: RebuildResult;
  readonly skipped: readonly string[];
}

export function sizeName(bytes: number): string {
  if (bytes >= GiB && bytes % GiB === 0) return `${bytes / GiB} GiB`;
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB} MiB`;
  return `${bytes / KiB} KiB`;
}

const mib = (bytes: number | undefined): string => (bytes === undefined ? "–" : `${(bytes / MiB).toFixed(0)} MiB`);

function find(cells: readonly CellResult[], target: string, condition: string, operation: string, size: number, concurrency: number): CellResult | undefined {
  return cells.find((cell) => cell.target === target && cell.condition === condition && cell.operation === operation && cell.size === size && cell.concurrency === concurrency);
}

function figure(cell: CellResult | undefined, small: boolean): string {
  if (cell === undefined) return "–";
  if (cell.error !== undefined) return `failed: ${cell.error.slice(0, 80)}`;
  return small ? `${formatSpread(cell.operationsPerSecond)} op/s` : `${formatSpread(cell.megabytesPerSecond)} MB/s`;
}

function ceilingRows(ceilings: Ceilings): string[] {
  const row = (name: string, value: Spread, unit: string, digits = 0): string => `| ${name} | ${formatSpread(value, digits)} ${unit} |`;
  const how = ceilings.diskWriteDirect ? " (O_DIRECT)" : " (page cache)";
  return [
    "| ceiling | median (min–max) |",
    "|---|---|",
    row("Reed-Solomon 4+2 encode, 1 MiB stripes, one thread", ceilings.encodeMBps, "MB/s"),
    row("MD5, one core", ceilings.md5MBps, "MB/s"),
    row("loopback HTTP PUT, undici → node:http sink, one connection", ceilings.loopbackPutMBps, "MB/s"),
    row("loopback HTTP GET, node:http → undici, one connection", ceilings.loopbackGetMBps, "MB/s"),
    row("loopback HTTP, CPU per GB of one hop (both ends)", ceilings.loopbackCpuSecondsPerGB, "CPU s/GB", 2),
    row("small requests (4 KiB PUT, 16 in flight)", ceilings.smallRequestsPerSecond, "req/s"),
    row(`sequential disk write${how}, 1 MiB writes, one fsync at the end`, ceilings.diskWriteMBps, "MB/s"),
    row(`sequential disk write${how}, fsync after every MiB`, ceilings.diskWriteFsyncPerMiBMBps, "MB/s"),
    row(`sequential disk write${how}, CPU per GB (one fsync at the end)`, ceilings.diskWriteCpuSecondsPerGB, "CPU s/GB", 2),
  ];
}

function matrixRows(results: BenchResults, inputs: ModelInputs, sizes: readonly number[], concurrencies: readonly number[]): string[] {
  const rows = [
    "| op | size | conc | Tessera | p50 / p99 ms | ceiling (binds) | % of ceiling | s3rver | Tessera ÷ s3rver | CPU s/GB gateway / nodes |",
    "|---|---|---:|---|---|---|---:|---|---:|---|",
  ];
  for (const operation of ["PUT", "GET", "MIXED"] as const) {
    for (const size of sizes) {
      for (const concurrency of concurrencies) {
        const cell = find(results.cells, "tessera", "healthy", operation, size, concurrency) ?? find(results.cells, "endpoint", "healthy", operation, size, concurrency);
        const baseline = find(results.cells, "s3rver", "healthy", operation, size, concurrency);
        if (cell === undefined && baseline === undefined) continue;
        const small = size < MiB;
        const limit = bound(inputs, operation, size);
        const limitText = small ? `${Math.round(limit.megabytesPerSecond / (size / 1e6))} op/s (${limit.by})` : `${Math.round(limit.megabytesPerSecond)} MB/s (${limit.by})`;
        const median = cell?.megabytesPerSecond?.median;
        const percent = median === undefined ? "–" : `${((100 * median) / limit.megabytesPerSecond).toFixed(0)}%`;
        const ratio = median !== undefined && baseline?.megabytesPerSecond !== undefined ? `${(median / baseline.megabytesPerSecond.median).toFixed(2)}×` : "–";
        const latency = cell?.latencyMs === undefined ? "–" : `${(cell.latencyMs.p50?.median ?? 0).toFixed(1)} / ${(cell.latencyMs.p99?.median ?? 0).toFixed(1)}`;
        const cpu = cell?.cpuSecondsPerGB === undefined ? "–" : `${(cell.cpuSecondsPerGB.gateway?.median ?? 0).toFixed(small ? 0 : 2)} / ${(cell.cpuSecondsPerGB.nodes?.median ?? 0).toFixed(small ? 0 : 2)}`;
        rows.push(`| ${operation} | ${sizeName(size)} | ${concurrency} | ${figure(cell, small)} | ${latency} | ${limitText} | ${percent} | ${figure(baseline, small)} | ${ratio} | ${cpu} |`);
      }
    }
  }
  return rows;
}

function degradedRows(results: BenchResults): string[] {
  const degraded = results.cells.filter((cell) => cell.condition.startsWith("degraded"));
  if (degraded.length === 0) return ["(not measured)"];
  const rows = [
    `Each degraded GET against the mean of the same GET measured healthy just before the nodes were stopped and once they were back (the judged ratio: a baseline on both sides cancels the machine's drift), and against the matrix's healthy GET of earlier in the run. Each figure in this table: median (min–max) over ${degraded[0]?.runs.length ?? 0} runs.`,
    "",
    "| condition | size | conc | GET | healthy just before | healthy once back | vs their mean | healthy in the matrix | vs that |",
    "|---|---|---:|---|---|---|---:|---|---:|",
  ];
  for (const cell of degraded) {
    const at = (condition: string): CellResult | undefined => find(results.cells, cell.target, condition, "GET", cell.size, cell.concurrency);
    const [before, after, matrix] = [at(DEGRADED_BASELINE_CONDITION), at(DEGRADED_AFTER_CONDITION), at("healthy")];
    rows.push(`| ${cell.condition} | ${sizeName(cell.size)} | ${cell.concurrency} | ${figure(cell, false)} | ${figure(before, false)} | ${figure(after, false)} | ${percentChange(cell.megabytesPerSecond?.median, baselineMean(before, after))} | ${figure(matrix, false)} | ${change(cell, matrix)} |`);
  }
  return rows;
}

/** The mean of the median MB/s of the healthy cells around the degraded ones; either alone if the other is missing or failed. */
export function baselineMean(before: CellResult | undefined, after: CellResult | undefined): number | undefined {
  const medians = [before, after].flatMap((cell) => (cell?.megabytesPerSecond === undefined ? [] : [cell.megabytesPerSecond.median]));
  return medians.length === 0 ? undefined : medians.reduce((sum, value) => sum + value, 0) / medians.length;
}

/** The median throughput of `cell` against `reference`'s, as a signed percentage. */
function change(cell: CellResult, reference: CellResult | undefined): string {
  return percentChange(cell.megabytesPerSecond?.median, reference?.megabytesPerSecond?.median);
}

/** `value` against `reference` as a signed whole percentage, "–" when either is missing. */
export function percentChange(value: number | undefined, reference: number | undefined): string {
  if (value === undefined || reference === undefined) return "–";
  return `${((100 * value) / reference - 100).toFixed(0)}%`;
}

function memoryRows(results: BenchResults): string[] {
  const rows = ["| target | process | peak RSS |", "|---|---|---:|"];
  for (const [target, processes] of Object.entries(results.peakRssBytes)) {
    for (const [name, bytes] of Object.entries(processes)) rows.push(`| ${target} | ${name} | ${mib(bytes)} |`);
  }
  const phases = Object.entries(results.gatewayPeakRssBytesByPhase ?? {});
  if (phases.length > 0) {
    rows.push("", "Tessera's gateway by phase of the run (its peak is reset as each phase ends):", "", "| phase | gateway peak RSS |", "|---|---:|");
    for (const [phase, bytes] of phases) rows.push(`| ${phase} | ${mib(bytes)} |`);
  }
  return rows;
}

function hugeRows(results: BenchResults): string[] {
  const huge = results.cells.filter((cell) => cell.condition === "1 GiB object");
  if (huge.length === 0) return ["(skipped in --quick)"];
  const rows = ["| op | Tessera | CPU s/GB gateway / nodes |", "|---|---|---|"];
  for (const cell of huge) rows.push(`| ${cell.operation} 1 GiB | ${figure(cell, false)} | ${(cell.cpuSecondsPerGB?.gateway?.median ?? 0).toFixed(2)} / ${(cell.cpuSecondsPerGB?.nodes?.median ?? 0).toFixed(2)} |`);
  rows.push("", `Gateway peak RSS during the 1 GiB PUT and GET: ${mib(results.gatewayPeakRssBytesByPhase?.["1 GiB object"])}.`);
  return rows;
}

export function renderMarkdown(results: BenchResults, inputs: ModelInputs, sizes: readonly number[], concurrencies: readonly number[]): string {
  const m = results.machine;
  return [
    `# Tessera bench — ${results.startedAt}${results.options.quick ? " (--quick)" : ""}`,
    "",
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.kernel}, Node ${m.node}, ${m.filesystem}. Client, gateway, 6 nodes (4+2) and s3rver all on this machine, loopback only.`,
    `Load average (1 min) at start ${m.loadAverage.start.toFixed(1)}, at end ${m.loadAverage.end.toFixed(1)}: other work on the machine lowers every throughput figure; CPU seconds per GB are skewed less.`,
    `Each figure: median (min–max) over ${results.options.runs} runs of ${results.options.runMs / 1000} s; seed ${results.options.seed}; every GET verified byte for byte. MB = 10^6 bytes.`,
    "",
    "## Ceilings (measured in this run)",
    "",
    ...ceilingRows(results.ceilings),
    "",
    "Model bounds (bench/model.ts):",
    "",
    ...describeModel(inputs).map((line) => `- ${line}`),
    "",
    "## Throughput: Tessera vs its ceiling vs s3rver",
    "",
    ...matrixRows(results, inputs, sizes, concurrencies),
    "",
    "## Degraded GET (nodes stopped)",
    "",
    ...degradedRows(results),
    "",
    "## 1 GiB object",
    "",
    ...hugeRows(results),
    "",
    "## Peak RSS of every process (whole run)",
    "",
    ...memoryRows(results),
    "",
    "## Rebuild",
    "",
    results.rebuild.megabytesPerSecond === undefined
      ? `${results.rebuild.status}: ${results.rebuild.note}`
      : `${results.rebuild.megabytesPerSecond.toFixed(1)} MB/s of shards restored (${results.rebuild.note}); CPU s/GB gateway ${results.rebuild.cpuSecondsPerGB?.gateway?.toFixed(1)}, nodes ${results.rebuild.cpuSecondsPerGB?.nodes?.toFixed(1)}. One run, with the healer's default throttle.${results.rebuild.gatewayPeakRssBytes === undefined ? "" : ` Gateway peak RSS during the rebuild: ${mib(results.rebuild.gatewayPeakRssBytes)}.`}`,
    ...(results.skipped.length === 0 ? [] : ["", "## Skipped", "", ...results.skipped.map((line) => `- ${line}`)]),
    "",
  ].join("\n");
}

