/**
 * `npm run bench`: Tessera's throughput, latency, CPU and memory against this machine's
 * ceilings and the s3rver baseline, in one run (issue 7). See bench/README.md.
 *
 *   npm run bench [-- --quick] [-- --endpoint http://127.0.0.1:9000 --access-key K --secret-key S]
 *
 * Prints a markdown table; writes bench/results/<time>.{json,md,svg} (and with --reference,
 * bench/results/reference/ too, the committed reference run).
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, release, tmpdir, totalmem } from "node:os";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { measureCeilings } from "./ceilings.js";
import { renderChart } from "./chart.js";
import { DataPool } from "./data.js";
import { CONCURRENCIES, FULL_BUDGET, GiB, OBJECT_SIZES, QUICK_BUDGET, SEED_DEFAULT, type Budget } from "./limits.js";
import { describeModel, modelInputs } from "./model.js";
import type { RebuildResult } from "./rebuild.js";
import { renderMarkdown, type BenchResults, type Machine } from "./report.js";
import { endpointTarget, startBaseline, startTessera, tuneClientProcess, type StartedTarget, type TesseraTarget } from "./targets.js";
import { measureTarget, type TargetMeasurements } from "./suite.js";

const RESULTS_DIRECTORY = fileURLToPath(new URL("./results/", import.meta.url));

const USAGE = `usage: npm run bench -- [--quick] [--reference] [--no-baseline] [--seed N]
                            [--endpoint URL --access-key KEY --secret-key SECRET [--region R]]`;

function machine(directory: string, loadAtStart: number): Machine {
  let filesystem = "unknown file system";
  try {
    filesystem = execFileSync("df", ["-T", directory], { encoding: "utf8" }).trim().split("\n")[1]?.split(/\s+/).slice(0, 2).join(" ") ?? filesystem;
  } catch {
    // df is informational only.
  }
  const loadAverage = { start: loadAtStart, end: loadavg()[0] ?? 0 };
  return { cpu: cpus()[0]?.model ?? "unknown CPU", cores: cpus().length, memoryGiB: Math.round(totalmem() / GiB), kernel: `Linux ${release()}`, node: process.versions.node, filesystem, loadAverage };
}

function parseOptions(): { quick: boolean; reference: boolean; baseline: boolean; seed: number; endpoint?: { url: string; accessKeyId: string; secretAccessKey: string; region: string } } {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      reference: { type: "boolean", default: false },
      "no-baseline": { type: "boolean", default: false },
      seed: { type: "string", default: String(SEED_DEFAULT) },
      endpoint: { type: "string" },
      "access-key": { type: "string" },
      "secret-key": { type: "string" },
      region: { type: "string", default: "us-east-1" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help === true) {
    console.log(USAGE);
    process.exit(0);
  }
  const seed = Number(values.seed);
  if (!Number.isSafeInteger(seed)) throw new Error(`--seed must be an integer, got ${values.seed}\n${USAGE}`);
  const options = { quick: values.quick === true, reference: values.reference === true, baseline: values["no-baseline"] !== true, seed };
  if (values.endpoint === undefined) return options;
  if (values["access-key"] === undefined || values["secret-key"] === undefined) throw new Error(`--endpoint needs --access-key and --secret-key\n${USAGE}`);
  return { ...options, endpoint: { url: values.endpoint, accessKeyId: values["access-key"], secretAccessKey: values["secret-key"], region: values.region ?? "us-east-1" } };
}

async function withTarget<T>(start: () => Promise<StartedTarget>, use: (started: StartedTarget) => Promise<T>): Promise<T> {
  const started = await start();
  try {
    return await use(started);
  } finally {
    await started.stop();
  }
}

async function main(): Promise<void> {
  tuneClientProcess();
  const options = parseOptions();
  const budget: Budget = options.quick ? QUICK_BUDGET : FULL_BUDGET;
  const began = Date.now();
  const loadAtStart = loadavg()[0] ?? 0;
  const startedAt = new Date(began).toISOString();
  const scratch = await mkdtemp(join(tmpdir(), "tessera-bench-"));
  const data = new DataPool(options.seed);
  const log = (line: string): void => console.error(`[bench ${((Date.now() - began) / 1000).toFixed(0)} s] ${line}`);
  try {
    log("ceilings");
    const ceilings = await measureCeilings(budget, data, scratch);
    const measured: TargetMeasurements[] = [];
    let rebuild: RebuildResult = { status: "pending", note: "not measured against --endpoint" };
    if (options.endpoint === undefined) {
      log("Tessera: starting a 4+2 cluster of 6 node processes and a gateway");
      const tessera = await withTarget(startTessera, (started) => measureTarget(started, { budget, data, seed: options.seed, sizes: OBJECT_SIZES, log, tessera: started as TesseraTarget }));
      measured.push(tessera);
      rebuild = tessera.rebuild ?? rebuild;
    } else {
      const endpoint = options.endpoint;
      measured.push(await withTarget(() => endpointTarget(endpoint), (started) => measureTarget(started, { budget, data, seed: options.seed, sizes: OBJECT_SIZES, log })));
    }
    if (options.baseline) {
      log("s3rver: starting the baseline");
      measured.push(await withTarget(startBaseline, (started) => measureTarget(started, { budget, data, seed: options.seed, sizes: budget.baselineSizes, log })));
    }
    const results: BenchResults = {
      startedAt,
      durationSeconds: Math.round((Date.now() - began) / 1000),
      machine: machine(scratch, loadAtStart),
      options: { quick: options.quick, seed: options.seed, runs: budget.runs, runMs: budget.runMs, ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint.url }) },
      ceilings,
      model: [],
      cells: measured.flatMap((each) => each.cells),
      peakRssBytes: Object.fromEntries(measured.map((each) => [each.target, each.peakRssBytes])),
      ...(measured[0]?.gatewayPeakRssBytesByPhase === undefined ? {} : { gatewayPeakRssBytesByPhase: measured[0].gatewayPeakRssBytesByPhase }),
      rebuild,
      skipped: measured.flatMap((each) => each.skipped.map((line) => `${each.target}: ${line}`)),
    };
    await writeResults(results, options.reference);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function writeResults(partial: BenchResults, reference: boolean): Promise<void> {
  const inputs = modelInputs(partial.ceilings);
  const results: BenchResults = { ...partial, model: describeModel(inputs) };
  const markdown = renderMarkdown(results, inputs, OBJECT_SIZES, CONCURRENCIES);
  const chart = renderChart(results, inputs, OBJECT_SIZES);
  const stamp = results.startedAt.replace(/[:.]/g, "-");
  const directories = [RESULTS_DIRECTORY, ...(reference ? [join(RESULTS_DIRECTORY, "reference")] : [])];
  for (const directory of directories) {
    await mkdir(directory, { recursive: true });
    const base = directory === RESULTS_DIRECTORY ? `bench-${stamp}` : "bench";
    await writeFile(join(directory, `${base}.json`), `${JSON.stringify(results, null, 2)}\n`);
    await writeFile(join(directory, `${base}.md`), markdown);
    await writeFile(join(directory, `${base}.svg`), chart);
  }
  console.log(markdown);
  console.error(`results: ${directories.map((directory) => join(directory, "bench*")).join(", ")}`);
}

await main();
