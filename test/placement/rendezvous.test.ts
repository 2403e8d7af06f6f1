import { describe, expect, it } from "vitest";
import { isTesseraError } from "../../core/errors.js";
import type { ClusterMap } from "../../placement/cluster-map.js";
import { listDisks } from "../../placement/cluster-map.js";
import { objectId } from "../../placement/object-id.js";
import type { Placement } from "../../placement/rendezvous.js";
import { createPlacer, diskRaceTime, placeObject, placementKeys } from "../../placement/rendezvous.js";
import { Prng, seedFromEnv } from "../prng.js";
import { clusterMap, countBy, increment, mapOf, mean, objectIds, rawNodes } from "./maps.js";
import type { RawNode } from "./maps.js";

const SEED = seedFromEnv(0x5eed_0001);

/** Shards per disk key over many objects. */
function diskShares(map: ClusterMap, ids: readonly Buffer[], filter: (shard: number) => boolean = () => true): Map<string, number> {
  const placer = createPlacer(map);
  const counts = new Map<string, number>(listDisks(map).map((disk) => [disk.key, 0]));
  for (const id of ids) placer.place(id).forEach((disk, shard) => filter(shard) && increment(counts, disk.key));
  return counts;
}

function sortedCounts(placement: Placement, field: "nodeId" | "zone"): number[] {
  return [...countBy(placement, field).values()].sort((a, b) => a - b);
}

/** The plain greedy the placer's fast paths must agree with: every disk, every step. */
function referenceKeys(map: ClusterMap, id: Buffer): string[] {
  const disks = [...listDisks(map)].sort((a, b) => (a.key < b.key ? -1 : 1)).map((disk) => ({ disk, time: diskRaceTime(id, disk) }));
  const nodeUsed = new Map<string, number>();
  const zoneUsed = new Map<string, number>();
  const chosen: string[] = [];
  while (chosen.length < map.ec.k + map.ec.m) {
    const free = disks.filter((entry) => !chosen.includes(entry.disk.key));
    const rank = (entry: (typeof disks)[number]): [number, number, number] => [
      nodeUsed.get(entry.disk.nodeId) ?? 0,
      zoneUsed.get(entry.disk.zone) ?? 0,
      entry.time,
    ];
    free.sort((a, b) => {
      const [ra, rb] = [rank(a), rank(b)];
      return ra[0] - rb[0] || ra[1] - rb[1] || ra[2] - rb[2];
    });
    const best = free[0];
    if (best === undefined) throw new Error("reference ran out of disks");
    chosen.push(best.disk.key);
    increment(nodeUsed, best.disk.nodeId);
    increment(zoneUsed, best.disk.zone);
  }
  return chosen.sort();
}

/** A random valid map: node count, disks, weights and zones all vary. */
function randomMap(prng: Prng, nodeRange: [number, number]): ClusterMap {
  const zones = prng.int(1, 4);
  const nodeCount = prng.int(nodeRange[0], nodeRange[1]);
  const nodes = rawNodes({
    nodes: nodeCount,
    // At least two disks in all: the smallest valid map is 1 + 1.
    disksPerNode: prng.int(nodeCount === 1 ? 2 : 1, 6),
    zoneOf: () => `zone-${prng.int(0, zones - 1)}`,
    weightOf: () => (prng.int(0, 3) === 0 ? prng.int(1, 8) / 2 : 1),
  });
  const k = prng.int(2, 8);
  const m = prng.int(1, 4);
  const disks = nodes.reduce((sum, node) => sum + node.disks.length, 0);
  return mapOf(nodes, { k: Math.min(k, Math.max(1, disks - m)), m: Math.min(m, disks - 1) });
}

/** Zones "allow" balance unless the smaller zone is already out of nodes. */
function zonesBalancedWhereTheyCan(map: ClusterMap, placement: Placement): boolean {
  const nodesInZone = new Map<string, number>();
  for (const node of map.nodes) increment(nodesInZone, node.zone);
  const counts = countBy(placement, "zone");
  for (const [zone, nodes] of nodesInZone) {
    const count = counts.get(zone) ?? 0;
    const saturated = count >= nodes;
    for (const other of counts.values()) if (other > count + 1 && !saturated) return false;
  }
  return true;
}

describe("placement is a deterministic function of the map's content", () => {
  const map = clusterMap({ nodes: 12, disksPerNode: 4 });
  const ids = objectIds(SEED, 2000);

  it("gives the same placement for the same input, from any placer", () => {
    const first = createPlacer(map);
    const second = createPlacer(clusterMap({ nodes: 12, disksPerNode: 4 }));
    for (const id of ids) {
      const keys = placementKeys(first.place(id));
      expect(placementKeys(second.place(id)), `seed ${SEED}`).toEqual(keys);
      expect(placementKeys(placeObject(map, id)), `seed ${SEED}`).toEqual(keys);
    }
  });

  it("does not depend on the order of nodes and disks in the file", () => {
    const prng = new Prng(SEED);
    const shuffle = <T>(items: T[]): T[] => {
      for (let index = items.length - 1; index > 0; index--) {
        const other = prng.int(0, index);
        [items[index], items[other]] = [items[other] as T, items[index] as T];
      }
      return items;
    };
    const raw = rawNodes({ nodes: 12, disksPerNode: 4 });
    const shuffled = mapOf(shuffle(raw.map((node): RawNode => ({ ...node, disks: shuffle([...node.disks]) }))));
    const placer = createPlacer(map);
    const shuffledPlacer = createPlacer(shuffled);
    for (const id of ids) expect(placementKeys(shuffledPlacer.place(id)), `seed ${SEED}`).toEqual(placementKeys(placer.place(id)));
  });

  it("places real object ids", () => {
    const placement = placeObject(map, objectId("photos", "2024/cat.jpg"));
    expect(placement).toHaveLength(6);
    expect(new Set(placement.map((disk) => disk.nodeId)).size).toBe(6);
  });
});

describe("placement constraints", () => {
  it("agrees with the plain reference greedy on random maps", () => {
    const prng = new Prng(SEED);
    for (let trial = 0; trial < 40; trial++) {
      const map = randomMap(prng, trial % 2 === 0 ? [1, 8] : [6, 40]);
      const placer = createPlacer(map);
      for (const id of objectIds(SEED + trial, 100)) {
        expect(placementKeys(placer.place(id)).sort(), `seed ${SEED}, trial ${trial}`).toEqual(referenceKeys(map, id));
      }
    }
  });

  it("never puts two shards on one node while nodes >= k + m, and balances zones where they allow", () => {
    const prng = new Prng(SEED);
    for (let trial = 0; trial < 40; trial++) {
      const map = randomMap(prng, [6, 40]);
      const width = map.ec.k + map.ec.m;
      const placer = createPlacer(map);
      for (const id of objectIds(SEED + trial, 500)) {
        const placement = placer.place(id);
        expect(new Set(placementKeys(placement)).size, `seed ${SEED}, trial ${trial}`).toBe(width);
        if (map.nodes.length >= width) expect(sortedCounts(placement, "nodeId").at(-1), `seed ${SEED}, trial ${trial}`).toBe(1);
        expect(zonesBalancedWhereTheyCan(map, placement), `seed ${SEED}, trial ${trial}`).toBe(true);
      }
    }
  });

  it("puts exactly 2 of 6 shards in each of 3 zones", () => {
    const map = clusterMap({ nodes: 12, disksPerNode: 4, zoneOf: (node) => `zone-${node % 3}` });
    const placer = createPlacer(map);
    const unbalanced = objectIds(SEED).filter((id) => sortedCounts(placer.place(id), "zone").join() !== "2,2,2");
    expect(unbalanced.length, `seed ${SEED}`).toBe(0);
  });

  it("spreads 6 shards over 4 zones as 2, 2, 1, 1, every zone equally often", () => {
    const map = clusterMap({ nodes: 12, disksPerNode: 2, zoneOf: (node) => `zone-${node % 4}` });
    const placer = createPlacer(map);
    const perZone = new Map<string, number>();
    let unbalanced = 0;
    for (const id of objectIds(SEED)) {
      const placement = placer.place(id);
      if (sortedCounts(placement, "zone").join() !== "1,1,2,2") unbalanced += 1;
      for (const [zone, count] of countBy(placement, "zone")) increment(perZone, zone, count);
    }
    expect(unbalanced, `seed ${SEED}`).toBe(0);
    const average = mean([...perZone.values()]);
    for (const count of perZone.values()) expect(Math.abs(count / average - 1), `seed ${SEED}`).toBeLessThan(0.05);
  });

  it("keeps one shard per node over balance when a zone has too few nodes", () => {
    // zone-0 has one node: 6 shards over 3 zones cannot be 2/2/2 without doubling up on it.
    const map = clusterMap({ nodes: 9, disksPerNode: 3, zoneOf: (node) => (node === 0 ? "zone-0" : `zone-${1 + (node % 2)}`) });
    const placer = createPlacer(map);
    for (const id of objectIds(SEED, 10_000)) {
      const placement = placer.place(id);
      expect(sortedCounts(placement, "nodeId").at(-1), `seed ${SEED}`).toBe(1);
      expect(sortedCounts(placement, "zone"), `seed ${SEED}`).toEqual([1, 2, 3]);
    }
  });

  it.each([
    [4, 4, [1, 1, 2, 2]],
    [3, 2, [2, 2, 2]],
    [2, 5, [3, 3]],
    [5, 2, [1, 1, 1, 1, 2]],
  ])("spreads evenly over %i nodes of %i disks when nodes < k + m", (nodes, disksPerNode, expected) => {
    const map = clusterMap({ nodes, disksPerNode });
    const placer = createPlacer(map);
    const perNode = new Map<string, number>();
    for (const id of objectIds(SEED, 20_000)) {
      const placement = placer.place(id);
      expect(new Set(placementKeys(placement)).size, `seed ${SEED}`).toBe(6);
      expect(sortedCounts(placement, "nodeId"), `seed ${SEED}`).toEqual(expected);
      for (const [node, count] of countBy(placement, "nodeId")) increment(perNode, node, count);
    }
    const average = mean([...perNode.values()]);
    for (const count of perNode.values()) expect(Math.abs(count / average - 1), `seed ${SEED}`).toBeLessThan(0.05);
  });

  it("gives a node with few disks all it can and the rest to the others", () => {
    const map = mapOf([
      { id: "small", url: "http://small", disks: [{ id: "d0" }] },
      { id: "big-1", url: "http://big-1", disks: [{ id: "d0" }, { id: "d1" }, { id: "d2" }, { id: "d3" }] },
      { id: "big-2", url: "http://big-2", disks: [{ id: "d0" }, { id: "d1" }, { id: "d2" }, { id: "d3" }] },
    ]);
    const placer = createPlacer(map);
    for (const id of objectIds(SEED, 5000)) {
      const counts = countBy(placer.place(id), "nodeId");
      expect(counts.get("small"), `seed ${SEED}`).toBe(1);
      expect([counts.get("big-1"), counts.get("big-2")].sort(), `seed ${SEED}`).toEqual([2, 3]);
    }
  });
});

describe("balance and weights (100k objects)", () => {
  const ids = objectIds(SEED);

  it("gives every disk of 12 nodes x 4 equal disks a share within 5% of the mean", () => {
    const shares = [...diskShares(clusterMap({ nodes: 12, disksPerNode: 4 }), ids).values()];
    const average = mean(shares);
    for (const share of shares) expect(Math.abs(share / average - 1), `seed ${SEED}`).toBeLessThan(0.05);
  });

  it("spreads data shards (indexes < k) as evenly as all shards: numbering ignores the race", () => {
    const map = clusterMap({ nodes: 12, disksPerNode: 4, weightOf: (node, disk) => (node < 3 && disk === 0 ? 3 : 1) });
    const all = diskShares(map, ids);
    const data = diskShares(map, ids, (shard) => shard < map.ec.k);
    for (const [key, count] of all) {
      const ratio = (data.get(key) ?? 0) / count / (map.ec.k / (map.ec.k + map.ec.m));
      expect(Math.abs(ratio - 1), `seed ${SEED}, ${key}`).toBeLessThan(0.05);
    }
  });

  it("gives a weight-2 disk twice the shards of a weight-1 disk when node totals are equal", () => {
    // node-000 holds disks of weight 2, 1, 1; every other node four of weight 1.
    const raw = rawNodes({ nodes: 12, disksPerNode: 4 });
    const first = raw[0];
    if (first === undefined) throw new Error("no node");
    first.disks = [{ id: "disk-0", weight: 2 }, { id: "disk-1" }, { id: "disk-2" }];
    const shares = diskShares(mapOf(raw), ids);
    const heavy = shares.get("node-000/disk-0") ?? 0;
    const light = mean([...shares].filter(([key]) => key !== "node-000/disk-0").map(([, count]) => count));
    expect(Math.abs(heavy / light / 2 - 1), `seed ${SEED}`).toBeLessThan(0.05);
  });

  it("gives a weight-2 disk twice the shards of its weight-1 siblings", () => {
    const map = clusterMap({ nodes: 12, disksPerNode: 4, weightOf: (node, disk) => (node === 0 && disk === 0 ? 2 : 1) });
    const shares = diskShares(map, ids);
    const heavy = shares.get("node-000/disk-0") ?? 0;
    const siblings = mean([1, 2, 3].map((disk) => shares.get(`node-000/disk-${disk}`) ?? 0));
    expect(Math.abs(heavy / siblings / 2 - 1), `seed ${SEED}`).toBeLessThan(0.05);
  });

  it("gives weight-2 nodes twice the shards when each is a small fraction of an object", () => {
    // With 60 nodes and 6 shards no node is near "one shard of every object", where the
    // one-per-node rule caps a heavy node; see placement/README.md.
    const map = clusterMap({ nodes: 60, disksPerNode: 2, weightOf: (node) => (node % 2 === 0 ? 2 : 1) });
    const shares = diskShares(map, ids);
    const byWeight = (weight: number): number =>
      mean(listDisks(map).filter((disk) => disk.weight === weight).map((disk) => shares.get(disk.key) ?? 0));
    expect(Math.abs(byWeight(2) / byWeight(1) / 2 - 1), `seed ${SEED}`).toBeLessThan(0.05);
  });
});

describe("previous placements and bad arguments", () => {
  const map = clusterMap({ nodes: 12, disksPerNode: 4 });
  const placer = createPlacer(map);
  const [id] = objectIds(SEED, 1) as [Buffer];

  it("returns the same placement when the previous one is still current", () => {
    const fresh = placementKeys(placer.place(id));
    expect(placementKeys(placer.place(id, { previous: fresh }))).toEqual(fresh);
  });

  it("keeps surviving disks at their previous indexes, whatever the fresh numbering", () => {
    const fresh = placementKeys(placer.place(id));
    const rotated = [...fresh.slice(2), ...fresh.slice(0, 2)];
    expect(placementKeys(placer.place(id, { previous: rotated }))).toEqual(rotated);
  });

  it("fills indexes whose disks left the set, and ignores unknown and repeated keys", () => {
    const fresh = placementKeys(placer.place(id));
    const previous = ["gone/disk", fresh[1] ?? "", fresh[1] ?? "", fresh[3] ?? "", "x", fresh[5] ?? ""];
    const placement = placementKeys(placer.place(id, { previous }));
    expect(placement[1]).toBe(fresh[1]);
    expect(placement[3]).toBe(fresh[3]);
    expect(placement[5]).toBe(fresh[5]);
    expect([...placement].sort()).toEqual([...fresh].sort());
  });

  it("places an object of another width (its own k + m) by the previous placement's length", () => {
    const previous = placementKeys(placer.place(id)).slice(0, 3);
    const placement = placer.place(id, { previous });
    expect(placement).toHaveLength(3);
    expect(new Set(placement.map((disk) => disk.nodeId)).size).toBe(3);
  });

  it("refuses bad object ids and widths with a clear message", () => {
    expect(() => placer.place(Buffer.alloc(8))).toThrow("objectId: must be 16 bytes, got 8");
    expect(() => placer.place(id, { previous: [] })).toThrow("previous: must hold 1 to 30 disk keys");
    const small = clusterMap({ nodes: 2, disksPerNode: 3 });
    const tooWide = Array.from({ length: 8 }, (_unused, index) => `x/${index}`);
    let error: unknown;
    try {
      createPlacer(small).place(id, { previous: tooWide });
    } catch (caught) {
      error = caught;
    }
    expect(isTesseraError(error, "ERR_INVALID_CLUSTER_MAP")).toBe(true);
    expect((error as Error).message).toBe("cluster map epoch 1 has 6 disks, too few for an object of 8 shards");
  });
});
