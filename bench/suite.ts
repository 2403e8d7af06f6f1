/**
 * Everything measured on one target: a warm-up, the matrix (PUT, GET, MIXED × sizes ×
 * concurrencies), then for Tessera the 1 GiB object, healthy GETs, then degraded GETs with one
 * and two storage nodes stopped, healthy GETs again once they are back, and the healer's
 * rebuild of an emptied node; the peak RSS of every process, and the gateway's per phase.
 */
import type { DataPool } from "./data.js";
import { CONCURRENCIES, DEGRADED_AFTER_CONDITION, DEGRADED_BASELINE_CONDITION, HUGE_OBJECT_BYTES, WARMUP_BYTES_MAX, WARMUP_OPERATIONS, type Budget } from "./limits.js";
import { peakRssBytes, resetPeakRss } from "./proc.js";
import { measureRebuild, type RebuildResult } from "./rebuild.js";
import { sizeName } from "./report.js";
import { disksOut, waitForNodesUp, type StartedTarget, type TesseraTarget } from "./targets.js";
import { getOne, ObjectCatalog, putOne, runCell, type CellResult, type CellSpec, type WorkloadContext } from "./workload.js";

/** Nodes stopped, in order, for the degraded reads: 1 then 2 (m = 2: still readable). */
const DEGRADED_NODES = ["n1", "n2"] as const;
/** Concurrency of the degraded reads: the GET target is stated at 4. */
const DEGRADED_CONCURRENCY = 4;

export interface SuiteOptions {
  readonly budget: Budget;
  readonly data: DataPool;
  readonly seed: number;
  readonly sizes: readonly number[];
  readonly log: (line: string) => void;
  /** Set for Tessera: enables the 1 GiB object and the degraded reads. */
  readonly tessera?: TesseraTarget;
}

export interface TargetMeasurements {
  readonly target: string;
  readonly cells: CellResult[];
  readonly peakRssBytes: Record<string, number>;
  /** Tessera only: the gateway's peak RSS in each phase of the run, in order (PeakTracker.endPhase). */
  readonly gatewayPeakRssBytesByPhase?: Record<string, number>;
  /** Tessera only: the healer restoring an emptied node. */
  readonly rebuild?: RebuildResult;
  readonly skipped: string[];
}

/**
 * Peak RSS per process name, kept across node restarts (a restarted node starts a new peak),
 * and the gateway's peak per phase of the run: endPhase reads it and resets it (VmHWM), so
 * each phase's figure is its own (the whole-run peak alone could not say which phase set it).
 */
class PeakTracker {
  readonly peaks: Record<string, number> = {};
  readonly gatewayByPhase: Record<string, number> = {};
  readonly #started: StartedTarget;
  readonly #log: (line: string) => void;

  constructor(started: StartedTarget, log: (line: string) => void) {
    this.#started = started;
    this.#log = log;
  }

  read(): void {
    for (const { name, pid } of this.#started.target.processes()) this.peaks[name] = Math.max(this.peaks[name] ?? 0, peakRssBytes(pid));
  }

  /** Ends a phase of the run: records the gateway's peak since the last phase ended, and resets it. */
  endPhase(phase: string): void {
    this.read();
    const gateway = this.#started.target.processes().find((process) => process.name === "gateway");
    if (gateway === undefined) return;
    this.gatewayByPhase[phase] = peakRssBytes(gateway.pid);
    if (!resetPeakRss(gateway.pid)) this.#log(`the kernel refused to reset the gateway's peak RSS: the phases after "${phase}" show the peak since the start`);
  }
}

async function cell(context: WorkloadContext, spec: CellSpec, log: (line: string) => void): Promise<CellResult> {
  const result = await runCell(context, spec);
  const figure = result.error ?? `${result.megabytesPerSecond?.median.toFixed(1)} MB/s, ${result.operationsPerSecond?.median.toFixed(0)} op/s`;
  log(`${context.target.name} ${spec.condition} ${spec.operation} ${sizeName(spec.size)} ×${spec.concurrency}: ${figure}`);
  return result;
}

async function matrix(context: WorkloadContext, options: SuiteOptions, skipped: string[], peaks: PeakTracker): Promise<CellResult[]> {
  const cells: CellResult[] = [];
  for (const size of options.sizes) {
    const warmups = Math.max(1, Math.min(WARMUP_OPERATIONS, Math.floor(WARMUP_BYTES_MAX / size)));
    for (let index = 0; index < warmups; index++) await putOne(context, size, "warm-up");
    for (const object of context.catalog.readable(size)) await getOne(context, object, size);
    for (const operation of ["PUT", "GET", "MIXED"] as const) {
      for (const concurrency of CONCURRENCIES) {
        if (size * concurrency > options.budget.roundBytesMax) {
          skipped.push(`${operation} ${sizeName(size)} ×${concurrency} (one round is ${sizeName(size * concurrency)}; --quick skips it)`);
          continue;
        }
        cells.push(await cell(context, { operation, size, concurrency, condition: "healthy" }, options.log));
      }
    }
    peaks.endPhase(`${sizeName(size)} cells`);
  }
  return cells;
}

/** The 1 GiB object, PUT then GET, one at a time (its gateway peak: the phase "1 GiB object"). */
async function hugeObject(context: WorkloadContext, log: (line: string) => void): Promise<CellResult[]> {
  // One operation per run: runMs 0 ends each run after its first object.
  const once = { ...context, runMs: 0 };
  return [
    await cell(once, { operation: "PUT", size: HUGE_OBJECT_BYTES, concurrency: 1, condition: "1 GiB object" }, log),
    await cell(once, { operation: "GET", size: HUGE_OBJECT_BYTES, concurrency: 1, condition: "1 GiB object" }, log),
  ];
}

async function degraded(matrixContext: WorkloadContext, options: SuiteOptions, tessera: TesseraTarget, peaks: PeakTracker): Promise<CellResult[]> {
  const context: WorkloadContext = { ...matrixContext, runs: options.budget.degradedRuns };
  const cells: CellResult[] = [];
  for (const size of options.budget.degradedSizes) cells.push(await cell(context, { operation: "GET", size, concurrency: DEGRADED_CONCURRENCY, condition: DEGRADED_BASELINE_CONDITION }, options.log));
  const stopped: string[] = [];
  for (const id of DEGRADED_NODES) {
    peaks.read();
    await tessera.cluster.node(id).stop();
    stopped.push(id);
    const condition = `degraded: ${stopped.length} node${stopped.length > 1 ? "s" : ""} stopped (${stopped.join(", ")})`;
    for (const size of options.budget.degradedSizes) cells.push(await cell(context, { operation: "GET", size, concurrency: DEGRADED_CONCURRENCY, condition }, options.log));
  }
  // Had the healer declared a stopped node down, its rebuild would have overlapped the cells
  // (limits.ts, BENCH_DOWN_AFTER_MS): the run says so rather than let it pass unseen.
  const out = await disksOut(tessera);
  if (out.length > 0) options.log(`the healer declared ${out.join(", ")} down during the degraded GETs: its rebuild overlapped them and the healthy GETs after`);
  for (const id of stopped) await tessera.cluster.node(id).restart();
  // The baseline's other side (limits.ts, DEGRADED_AFTER_CONDITION), once the gateway routes to
  // the restarted nodes again. If it never does, the run goes on and reports the degraded
  // cells against the healthy ones before them alone.
  try {
    await waitForNodesUp(tessera);
  } catch (error) {
    options.log(`healthy GETs after the degraded ones not measured: ${error instanceof Error ? error.message : String(error)}`);
    return cells;
  }
  for (const size of options.budget.degradedSizes) cells.push(await cell(context, { operation: "GET", size, concurrency: DEGRADED_CONCURRENCY, condition: DEGRADED_AFTER_CONDITION }, options.log));
  return cells;
}

export async function measureTarget(started: StartedTarget, options: SuiteOptions): Promise<TargetMeasurements> {
  const context: WorkloadContext = { target: started.target, data: options.data, catalog: new ObjectCatalog(), runs: options.budget.runs, runMs: options.budget.runMs, seed: options.seed };
  const skipped: string[] = [];
  const peaks = new PeakTracker(started, options.log);
  const cells = await matrix(context, options, skipped, peaks);
  if (options.tessera !== undefined) {
    if (options.budget.hugeObject) {
      cells.push(...(await hugeObject(context, options.log)));
      peaks.endPhase("1 GiB object");
    } else {
      skipped.push("the 1 GiB object (--quick)");
    }
    cells.push(...(await degraded(context, options, options.tessera, peaks)));
    peaks.endPhase("degraded GETs");
  }
  let rebuild: RebuildResult | undefined;
  if (options.tessera !== undefined) {
    options.log("rebuild: emptying a node's disk and timing the healer");
    rebuild = await measureRebuild(options.tessera, context, options.budget.rebuildObjects, options.budget.rebuildWindowMs);
    options.log(`rebuild: ${rebuild.status}: ${rebuild.megabytesPerSecond?.toFixed(1) ?? "–"} MB/s; ${rebuild.note}`);
    // The rebuild's peaks count too: the healer runs in the gateway, and n3 was restarted.
    // (measureRebuild reset the gateway's peak before its scan: this phase is the rebuild's.)
    peaks.endPhase("rebuild");
  }
  return {
    target: started.target.name,
    cells,
    peakRssBytes: peaks.peaks,
    ...(options.tessera === undefined ? {} : { gatewayPeakRssBytesByPhase: peaks.gatewayByPhase }),
    ...(rebuild === undefined ? {} : { rebuild }),
    skipped,
  };
}
