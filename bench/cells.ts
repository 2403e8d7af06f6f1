/**
 * A few cells of the matrix on a fresh Tessera cluster, for before/after comparisons of a
 * change without the whole run: `npx tsx bench/cells.ts "PUT 64MiB 4" "GET 4KiB 16" ...`
 * (operation, size in KiB/MiB, concurrency; `--env KEY=VALUE` reaches every process of the
 * cluster). Same runs and checks as `npm run bench`, after an unmeasured warm-up run of the
 * cell. Each line ends with the gateway's peak RSS during that cell (VmHWM, reset before it).
 */
import { parseArgs } from "node:util";
import { DataPool } from "./data.js";
import { FULL_BUDGET, KiB, MiB, SEED_DEFAULT, WARMUP_OPERATIONS } from "./limits.js";
import { peakRssBytes, resetPeakRss } from "./proc.js";
import { formatSpread } from "./stats.js";
import { envFromPairs, startTessera, tuneClientProcess } from "./targets.js";
import { ObjectCatalog, putOne, runCell, type Operation } from "./workload.js";

/** Length of the unmeasured run before each cell's timed runs (JIT warm-up). */
const CELL_WARMUP_MS = 2_000;

function parseCell(text: string): { operation: Operation; size: number; concurrency: number } {
  const match = /^(PUT|GET|MIXED) (\d+)(KiB|MiB) (\d+)$/i.exec(text.trim());
  if (match === null) throw new Error(`a cell is "PUT|GET|MIXED <n>KiB|MiB <concurrency>", got ${JSON.stringify(text)}`);
  const size = Number(match[2]) * ((match[3] as string).toLowerCase() === "kib" ? KiB : MiB);
  return { operation: (match[1] as string).toUpperCase() as Operation, size, concurrency: Number(match[4]) };
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { env: { type: "string", multiple: true, default: [] } } });
const cells = positionals.map(parseCell);
tuneClientProcess();
const tessera = await startTessera(envFromPairs(values.env));
try {
  const context = { target: tessera.target, data: new DataPool(SEED_DEFAULT), catalog: new ObjectCatalog(), runs: FULL_BUDGET.runs, runMs: FULL_BUDGET.runMs, seed: SEED_DEFAULT };
  for (const cell of cells) {
    for (let index = 0; index < WARMUP_OPERATIONS * 4; index++) await putOne(context, cell.size, "warm-up");
    // One short unmeasured run of the cell itself: its code paths are compiled before the timed
    // runs, as the full run's are by the cells before them (a first GET cell measured cold ran
    // about a quarter slower here than the same cell again).
    await runCell({ ...context, runs: 1, runMs: CELL_WARMUP_MS }, { ...cell, condition: "warm-up" });
    const gateway = tessera.cluster.gateway.pid;
    const reset = resetPeakRss(gateway);
    const result = await runCell(context, { ...cell, condition: "healthy" });
    const rss = `gateway peak RSS ${(peakRssBytes(gateway) / MiB).toFixed(0)} MiB${reset ? "" : " (since start: the kernel refused a reset)"}`;
    const cpu = Object.entries(result.cpuSecondsPerGB ?? {}).map(([role, value]) => `${role} ${value.median.toFixed(cell.size < MiB ? 0 : 2)}`).join(", ");
    console.log(`${cell.operation} ${cell.size / KiB} KiB ×${cell.concurrency}: ${result.error ?? `${formatSpread(result.megabytesPerSecond, 1)} MB/s, ${formatSpread(result.operationsPerSecond)} op/s, p99 ${result.latencyMs?.p99?.median.toFixed(0)} ms; CPU s/GB ${cpu}`}; ${rss}`);
  }
} finally {
  await tessera.stop();
}
