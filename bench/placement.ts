/**
 * Placement speed: placements per second on one core for a 100-node x 10-disk cluster,
 * 4+2, the object ids uniform like real ones. Run: `npx tsx bench/placement.ts`.
 * Also measured: a map with mixed disk weights (one logarithm per node instead of none)
 * and re-placing against a previous placement (what the healer does per object).
 */
import { parseClusterMap } from "../placement/cluster-map.js";
import type { ClusterMap } from "../placement/cluster-map.js";
import type { PlaceOptions, Placer } from "../placement/rendezvous.js";
import { createPlacer, placementKeys } from "../placement/rendezvous.js";
import { Prng } from "../test/prng.js";

/** Cluster shape named in the README's placement figure. */
const BENCH_NODES = 100;
const BENCH_DISKS_PER_NODE = 10;
/** Distinct object ids per run: more than fit in L1/L2, so ids are not all cached. */
const BENCH_OBJECTS = 200_000;
/** Runs per case; the median is reported (shared machines are noisy). */
const BENCH_RUNS = 5;

function benchMap(weightOf: (node: number, disk: number) => number): ClusterMap {
  const nodes = Array.from({ length: BENCH_NODES }, (_unused, node) => ({
    id: `node-${node}`,
    url: `http://10.0.${Math.floor(node / 250)}.${(node % 250) + 1}:9100`,
    disks: Array.from({ length: BENCH_DISKS_PER_NODE }, (_unusedDisk, disk) => ({ id: `disk-${disk}`, weight: weightOf(node, disk) })),
  }));
  return parseClusterMap({ epoch: 1, ec: { k: 4, m: 2 }, nodes }, "bench");
}

function placementsPerSecond(placer: Placer, ids: readonly Buffer[], options: readonly (PlaceOptions | undefined)[]): number {
  const started = process.hrtime.bigint();
  for (let index = 0; index < ids.length; index++) placer.place(ids[index] as Buffer, options[index]);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return ids.length / seconds;
}

function median(run: () => number): number {
  run(); // Warm-up: let the JIT settle before measuring.
  const results = Array.from({ length: BENCH_RUNS }, run).sort((a, b) => a - b);
  return results[Math.floor(BENCH_RUNS / 2)] ?? 0;
}

const prng = new Prng(1);
const ids = Array.from({ length: BENCH_OBJECTS }, () => prng.bytes(16));
const fresh = new Array<PlaceOptions | undefined>(BENCH_OBJECTS).fill(undefined);
const equal = createPlacer(benchMap(() => 1));
const mixed = createPlacer(benchMap((node, disk) => 1 + ((node + disk) % 4)));
const previous = ids.map((id): PlaceOptions => ({ previous: placementKeys(equal.place(id)) }));

const cases: [string, () => number][] = [
  ["equal weights", () => placementsPerSecond(equal, ids, fresh)],
  ["mixed weights (1-4)", () => placementsPerSecond(mixed, ids, fresh)],
  ["equal weights, with previous placement", () => placementsPerSecond(equal, ids, previous)],
];
console.log(`| ${BENCH_NODES} nodes x ${BENCH_DISKS_PER_NODE} disks, 4+2 | placements/s (median of ${BENCH_RUNS}, one core) |`);
console.log("|---|---|");
for (const [name, run] of cases) console.log(`| ${name} | ${Math.round(median(run)).toLocaleString("en-US")} |`);
