/**
 * Degraded GETs against healthy ones on one fresh cluster (issue 7: within 15%):
 * `npx tsx bench/degraded.ts [--size 64MiB] [--concurrency 4] [--signal TERM|STOP] [--rounds 1]`.
 * Measures GET healthy, with n1 stopped, with n1 and n2 stopped (as bench/suite.ts stops
 * them: SIGTERM, or SIGSTOP for a hung node), then healthy again once the gateway sees them up;
 * prints MB/s, CPU s/GB and each degraded condition's ratio to the mean of the healthy runs
 * around it (the judged one, as in the full run) and to the one before. `--rounds` repeats the whole
 * sequence (the machine is shared: one round is noisy); `--env KEY=VALUE` reaches every process.
 */
import { parseArgs } from "node:util";
import { DataPool } from "./data.js";
import { FULL_BUDGET, KiB, MiB, SEED_DEFAULT, WARMUP_OPERATIONS } from "./limits.js";
import { baselineMean, percentChange } from "./report.js";
import { formatSpread } from "./stats.js";
import { envFromPairs, startTessera, tuneClientProcess, waitForNodesUp } from "./targets.js";
import { ObjectCatalog, putOne, runCell, type CellResult } from "./workload.js";

const { values } = parseArgs({
  options: {
    size: { type: "string", default: "64MiB" },
    concurrency: { type: "string", default: "4" },
    signal: { type: "string", default: "TERM" },
    rounds: { type: "string", default: "1" },
    objects: { type: "string", default: "8" },
    /** KEY=VALUE for every process of the cluster (e.g. TESSERA_HEAL=off to rule the healer out). */
    env: { type: "string", multiple: true, default: [] },
  },
});
const sizeMatch = /^(\d+)(KiB|MiB)$/i.exec(values.size);
if (sizeMatch === null) throw new Error(`--size is <n>KiB or <n>MiB, got ${values.size}`);
const size = Number(sizeMatch[1]) * ((sizeMatch[2] as string).toLowerCase() === "kib" ? KiB : MiB);
const concurrency = Number(values.concurrency);
const signal = values.signal.toUpperCase();
if (signal !== "TERM" && signal !== "STOP") throw new Error(`--signal is TERM or STOP, got ${values.signal}`);

tuneClientProcess();
const tessera = await startTessera(envFromPairs(values.env));
const stopped: string[] = [];
try {
  const context = { target: tessera.target, data: new DataPool(SEED_DEFAULT), catalog: new ObjectCatalog(), runs: FULL_BUDGET.degradedRuns, runMs: FULL_BUDGET.runMs, seed: SEED_DEFAULT };
  for (let index = 0; index < Math.max(Number(values.objects), WARMUP_OPERATIONS); index++) await putOne(context, size, "degraded");
  const line = (condition: string, result: CellResult, baseline?: { before: CellResult; after: CellResult }): void => {
    const cpu = Object.entries(result.cpuSecondsPerGB ?? {}).map(([role, value]) => `${role} ${value.median.toFixed(2)}`).join(", ");
    const mbps = result.megabytesPerSecond?.median;
    const ratio =
      baseline === undefined
        ? ""
        : ` (${percentChange(mbps, baselineMean(baseline.before, baseline.after))} vs the mean of the healthy runs around it, ${percentChange(mbps, baseline.before.megabytesPerSecond?.median)} vs the one before)`;
    console.log(`GET ${values.size} ×${concurrency} ${condition}: ${result.error ?? `${formatSpread(result.megabytesPerSecond, 1)} MB/s${ratio}, p99 ${result.latencyMs?.p99?.median.toFixed(0)} ms; CPU s/GB ${cpu}`}`);
  };
  const measure = (condition: string): Promise<CellResult> => runCell(context, { operation: "GET", size, concurrency, condition });
  for (let round = 0; round < Number(values.rounds); round++) {
    const healthy = await measure("healthy");
    const down: { condition: string; result: CellResult }[] = [];
    for (const id of ["n1", "n2"]) {
      const node = tessera.cluster.node(id);
      if (signal === "TERM") await node.stop();
      else node.kill("SIGSTOP");
      stopped.push(id);
      down.push({ condition: `${stopped.length} down (${stopped.join(", ")}, SIG${signal})`, result: await measure(`degraded ${stopped.length}`) });
    }
    for (const id of stopped.splice(0)) {
      if (signal === "TERM") await tessera.cluster.node(id).restart();
      else tessera.cluster.node(id).kill("SIGCONT");
    }
    // Until the failure detector sees them up, reads still route around them (bench/suite.ts does the same).
    await waitForNodesUp(tessera);
    const again = await measure("healthy");
    line("healthy", healthy);
    for (const { condition, result } of down) line(condition, result, { before: healthy, after: again });
    line("healthy again (nodes seen up)", again);
  }
} finally {
  for (const id of stopped) if (signal === "STOP") tessera.cluster.node(id).kill("SIGCONT");
  await tessera.stop();
}
