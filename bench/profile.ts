/**
 * CPU profiles of one workload cell across every Tessera process: the cluster runs with the
 * inspector's sampler (bench/profile-hook.js, what `node --cpu-prof` does), a warm-up fills the JIT, one timed run of the cell follows, and each
 * process's samples within that run are summed per function (self and total time).
 *
 *   npx tsx bench/profile.ts --operation PUT --size 67108864 --concurrency 4 [--seconds 8]
 *     [--stop n1,n2 [--signal TERM|STOP] [--settle-ms 0]]
 *
 * `--stop` stops those nodes after the warm-up (SIGTERM, or SIGSTOP for a hung node) and waits
 * `--settle-ms` before the profiled run (e.g. 7000 for the failure detector to call them suspect),
 * to compare a degraded run's profile with a healthy one.
 *
 * Profiles land in bench/results/profiles/<cell>/ (open them in Chrome DevTools or speedscope).
 */
import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { summarizeProfile, type FunctionCost } from "./cpu-profile.js";
import { DataPool } from "./data.js";
import { SEED_DEFAULT } from "./limits.js";
import { startTessera, tuneClientProcess } from "./targets.js";
import { ObjectCatalog, putOne, runCell, type Operation } from "./workload.js";

/** Rows of each ranking printed per process. */
const TOP_FUNCTIONS = 18;
/** Warm-up before the profiled run: the JIT settles and GETs have objects to read. */
const WARMUP_OPERATIONS = 24;

function nowMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

function table(rows: readonly FunctionCost[], busyMs: number): string {
  return rows.map((row) => `  ${row.selfMs.toFixed(0).padStart(7)} ${row.totalMs.toFixed(0).padStart(7)} ${((100 * row.totalMs) / busyMs).toFixed(1).padStart(5)}%  ${row.where}`).join("\n");
}

const { values } = parseArgs({
  options: {
    operation: { type: "string", default: "PUT" },
    size: { type: "string", default: String(64 * 1024 * 1024) },
    concurrency: { type: "string", default: "4" },
    seconds: { type: "string", default: "8" },
    stop: { type: "string", default: "" },
    signal: { type: "string", default: "TERM" },
    "settle-ms": { type: "string", default: "0" },
  },
});
const operation = (values.operation ?? "PUT").toUpperCase() as Operation;
const size = Number(values.size);
const concurrency = Number(values.concurrency);
const stopIds = (values.stop ?? "").split(",").filter((id) => id !== "");
const signal = (values.signal ?? "TERM").toUpperCase();
if (signal !== "TERM" && signal !== "STOP") throw new Error(`--signal is TERM or STOP, got ${values.signal}`);
const cell = `${operation.toLowerCase()}-${size}-c${concurrency}${stopIds.length === 0 ? "" : `-${stopIds.join("+")}-${signal.toLowerCase()}`}`;
const directory = fileURLToPath(new URL(`./results/profiles/${cell}/`, import.meta.url));
await rm(directory, { recursive: true, force: true });
await mkdir(directory, { recursive: true });

const hook = fileURLToPath(new URL("./profile-hook.js", import.meta.url));
tuneClientProcess();
const tessera = await startTessera({ NODE_OPTIONS: `--import ${hook}`, BENCH_CPU_PROFILE_DIR: directory });
const names = new Map(tessera.target.processes().map((each) => [each.pid, each.name]));
const context = { target: tessera.target, data: new DataPool(SEED_DEFAULT), catalog: new ObjectCatalog(), runs: 1, runMs: Number(values.seconds) * 1000, seed: SEED_DEFAULT };
let from = 0;
let to = 0;
try {
  for (let index = 0; index < WARMUP_OPERATIONS; index++) await putOne(context, size, "warm-up");
  for (const id of stopIds) {
    const node = tessera.cluster.node(id);
    if (signal === "TERM") await node.stop();
    else node.kill("SIGSTOP");
  }
  await new Promise((resolve) => setTimeout(resolve, Number(values["settle-ms"])));
  from = nowMicros();
  const result = await runCell(context, { operation, size, concurrency, condition: "profile" });
  to = nowMicros();
  if (result.error !== undefined) throw new Error(result.error);
  console.log(`${cell}: ${result.megabytesPerSecond?.median.toFixed(1)} MB/s, ${result.operationsPerSecond?.median.toFixed(0)} op/s, CPU s/GB ${JSON.stringify(result.cpuSecondsPerGB)}`);
} finally {
  if (signal === "STOP") for (const id of stopIds) tessera.cluster.node(id).kill("SIGCONT");
  // The profile first (SIGUSR2, bench/profile-hook.js): a gateway that does not exit in time is killed.
  for (const each of [tessera.cluster.gateway, ...tessera.cluster.nodes].filter((process) => process.running)) each.kill("SIGUSR2");
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  // SIGTERM, not SIGKILL: a process writes its profile as it exits.
  await Promise.all([tessera.cluster.gateway, ...tessera.cluster.nodes].filter((each) => each.running).map((each) => each.stop()));
  await tessera.stop();
}
for (const file of (await readdir(directory)).filter((name) => name.endsWith(".cpuprofile"))) {
  const pid = Number(/(\d+)\.cpuprofile$/.exec(file)?.[1]);
  const name = names.get(pid) ?? `pid ${pid}`;
  if (names.has(pid) && name !== "gateway" && name !== "n3") continue; // The nodes are alike: one shows them all.
  const summary = summarizeProfile(join(directory, file), from, to, TOP_FUNCTIONS);
  console.log(`\n${name} (${file}): JS thread busy ${summary.busyMs.toFixed(0)} of ${summary.windowMs.toFixed(0)} ms`);
  console.log(`  self ms / total ms / % of busy, by self time\n${table(summary.topSelf, summary.busyMs)}`);
  console.log(`  by total time\n${table(summary.topTotal, summary.busyMs)}`);
}
