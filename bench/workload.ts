/**
 * One cell of the matrix (operation × object size × concurrency) against one target: a few
 * closed-loop runs, each with `concurrency` workers issuing operations back to back until the
 * run's time is up (every worker does at least one), every GET checked byte for byte. Per run:
 * bytes, operations, latency percentiles and the CPU seconds each process spent.
 */
import { Prng } from "../test/prng.js";
import type { DataPool } from "./data.js";
import { GB, GET_KEYS_MAX, LATENCY_PERCENTILES, MB } from "./limits.js";
import { cpuDelta, cpuSnapshot, type ProcessRef } from "./proc.js";
import type { BenchS3Client } from "./s3-client.js";
import { percentile, spread, type Spread } from "./stats.js";

export type Operation = "PUT" | "GET" | "MIXED";

/** A system under test: where requests go and which processes do the work. */
export interface Target {
  /** "tessera", "s3rver", or "endpoint" for --endpoint. */
  readonly name: string;
  readonly client: BenchS3Client;
  readonly bucket: string;
  /** The server's running processes now (gateway and nodes, or s3rver); none for --endpoint. */
  processes(): readonly ProcessRef[];
}

export interface CellSpec {
  readonly operation: Operation;
  readonly size: number;
  readonly concurrency: number;
  /** Distinguishes degraded and 1 GiB runs from the matrix in reports ("healthy" otherwise). */
  readonly condition: string;
}

export interface RunResult {
  readonly bytes: number;
  readonly operations: number;
  readonly seconds: number;
  readonly latencyMs: Readonly<Record<string, number>>;
  /** CPU seconds per process name (the target's processes and "client"). */
  readonly cpuSeconds: Readonly<Record<string, number>>;
}

export interface CellResult extends CellSpec {
  readonly target: string;
  readonly runs: readonly RunResult[];
  readonly megabytesPerSecond?: Spread;
  readonly operationsPerSecond?: Spread;
  readonly latencyMs?: Readonly<Record<string, Spread>>;
  /** CPU seconds per GB moved: "gateway", "nodes" (all storage nodes), "server" (s3rver), "client". */
  readonly cpuSecondsPerGB?: Readonly<Record<string, Spread>>;
  readonly error?: string;
}

/** Objects written so far, by size: what GETs read. Shared by every cell of one target. */
export class ObjectCatalog {
  readonly #bySize = new Map<number, { key: string; index: number }[]>();
  #nextIndex = 0;

  /** A fresh key and data index for a new object of `size`. */
  allocate(size: number, label: string): { key: string; index: number } {
    const index = this.#nextIndex++;
    return { key: `${label}/${size}/obj-${index}`, index };
  }

  /** Records a stored object (kept to the last GET_KEYS_MAX per size). */
  stored(size: number, object: { key: string; index: number }): void {
    const list = this.#bySize.get(size) ?? [];
    list.push(object);
    if (list.length > GET_KEYS_MAX) list.shift();
    this.#bySize.set(size, list);
  }

  readable(size: number): readonly { key: string; index: number }[] {
    return this.#bySize.get(size) ?? [];
  }
}

export interface WorkloadContext {
  readonly target: Target;
  readonly data: DataPool;
  readonly catalog: ObjectCatalog;
  readonly runs: number;
  readonly runMs: number;
  readonly seed: number;
}

export async function putOne(context: WorkloadContext, size: number, label: string): Promise<void> {
  const object = context.catalog.allocate(size, label);
  const body = size <= 1024 * 1024 ? context.data.whole(object.index, size) : context.data.pieces(object.index, size);
  await context.target.client.putObject(context.target.bucket, object.key, body, size);
  context.catalog.stored(size, object);
}

export async function getOne(context: WorkloadContext, object: { key: string; index: number }, size: number): Promise<void> {
  const verifier = context.data.verifier(object.index, size);
  await context.target.client.getObject(context.target.bucket, object.key, (piece) => verifier.feed(piece));
  verifier.end();
}

async function oneRun(context: WorkloadContext, spec: CellSpec, runIndex: number): Promise<RunResult> {
  const prng = new Prng(context.seed + runIndex * 7919 + spec.concurrency * 104729 + spec.size);
  const readable = context.catalog.readable(spec.size);
  if (spec.operation !== "PUT" && readable.length === 0) throw new Error(`no ${spec.size}-byte objects to GET: run PUT first`);
  const latencies: number[] = [];
  let bytes = 0;
  let getCursor = prng.int(0, 1_000_000);
  const label = `${spec.condition}-${spec.operation.toLowerCase()}-c${spec.concurrency}-r${runIndex}`;
  const processes: ProcessRef[] = [...context.target.processes(), { name: "client", pid: process.pid }];
  const cpuBefore = cpuSnapshot(processes);
  const started = performance.now();
  const deadline = started + context.runMs;
  const worker = async (): Promise<void> => {
    for (let done = 0; done === 0 || performance.now() < deadline; done++) {
      const put = spec.operation === "PUT" || (spec.operation === "MIXED" && prng.next() < 0.5);
      const began = performance.now();
      if (put) await putOne(context, spec.size, label);
      else await getOne(context, readable[getCursor++ % readable.length] as { key: string; index: number }, spec.size);
      latencies.push(performance.now() - began);
      bytes += spec.size;
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  const cpuSeconds = Object.fromEntries(cpuDelta(cpuBefore, cpuSnapshot(processes)));
  const latencyMs = Object.fromEntries(LATENCY_PERCENTILES.map((p) => [`p${p}`, percentile(latencies, p)]));
  return { bytes, operations: latencies.length, seconds, latencyMs, cpuSeconds };
}

/** Runs the cell `context.runs` times; a failure is recorded in the result, not thrown. */
export async function runCell(context: WorkloadContext, spec: CellSpec): Promise<CellResult> {
  const runs: RunResult[] = [];
  try {
    for (let run = 0; run < context.runs; run++) runs.push(await oneRun(context, spec, run));
  } catch (error) {
    return { ...spec, target: context.target.name, runs, error: error instanceof Error ? error.message : String(error) };
  }
  return summarize(context.target.name, spec, runs);
}

export function summarize(target: string, spec: CellSpec, runs: readonly RunResult[]): CellResult {
  const perGB = (run: RunResult, names: (name: string) => boolean): number =>
    Object.entries(run.cpuSeconds).filter(([name]) => names(name)).reduce((sum, [, seconds]) => sum + seconds, 0) / (run.bytes / GB);
  const roles: Record<string, (name: string) => boolean> = {
    gateway: (name) => name === "gateway",
    nodes: (name) => /^n\d+$/.test(name),
    server: (name) => name === "s3rver",
    client: (name) => name === "client",
  };
  const present = Object.entries(roles).filter(([, names]) => Object.keys(runs[0]?.cpuSeconds ?? {}).some(names));
  return {
    ...spec,
    target,
    runs,
    megabytesPerSecond: spread(runs.map((run) => run.bytes / MB / run.seconds)),
    operationsPerSecond: spread(runs.map((run) => run.operations / run.seconds)),
    latencyMs: Object.fromEntries(LATENCY_PERCENTILES.map((p) => [`p${p}`, spread(runs.map((run) => run.latencyMs[`p${p}`] as number))])),
    cpuSecondsPerGB: Object.fromEntries(present.map(([role, names]) => [role, spread(runs.map((run) => perGB(run, names)))])),
  };
}
