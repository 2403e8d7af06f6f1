import { describe, expect, it } from "vitest";
import type { ClusterMap } from "../../placement/cluster-map.js";
import { summarizeMoves, shardMoves } from "../../placement/moves.js";
import { createPlacer, placementKeys } from "../../placement/rendezvous.js";
import { seedFromEnv } from "../prng.js";
import { clusterMap, mapOf, objectIds, rawNodes } from "./maps.js";
import type { ClusterShape } from "./maps.js";

const SEED = seedFromEnv(0x5eed_0002);
/** Allowed excess over the ideal moved fraction (the brief: at most 1.1x). */
const MOVE_EXCESS_MAX = 1.1;

interface Stability {
  /** Shards whose disk or index changed, over all shards. */
  movedFraction: number;
  /** Moves that landed anywhere but `newcomer` (must be 0). */
  strayMoves: number;
  /** Shards that stayed on their disk but changed index (must be 0). */
  renumbered: number;
  /** Objects whose rebased set differs from a fresh placement's set (must be 0). */
  setMismatches: number;
}

/**
 * Places every object under `before`, then under `after` with the old placement as its
 * record, and checks each shard index: same disk, or moved onto a disk `isNewcomer` accepts.
 */
function measure(before: ClusterMap, after: ClusterMap, ids: readonly Buffer[], isNewcomer: (key: string) => boolean): Stability {
  const oldPlacer = createPlacer(before);
  const newPlacer = createPlacer(after);
  let moved = 0;
  let strayMoves = 0;
  let renumbered = 0;
  let setMismatches = 0;
  for (const id of ids) {
    const old = placementKeys(oldPlacer.place(id));
    const rebased = placementKeys(newPlacer.place(id, { previous: old }));
    const fresh = placementKeys(newPlacer.place(id));
    if ([...rebased].sort().join() !== [...fresh].sort().join()) setMismatches += 1;
    old.forEach((key, shard) => {
      if (rebased[shard] === key) return;
      moved += 1;
      if (!isNewcomer(rebased[shard] ?? "")) strayMoves += 1;
      if (rebased.includes(key)) renumbered += 1;
    });
  }
  return { movedFraction: moved / (ids.length * (before.ec.k + before.ec.m)), strayMoves, renumbered, setMismatches };
}

function grown(shape: ClusterShape): ClusterMap {
  return mapOf(rawNodes({ ...shape, nodes: shape.nodes + 1 }), { epoch: 2 });
}

describe("map changes move only the shards that must move (100k objects)", () => {
  const ids = objectIds(SEED);
  const twelve: ClusterShape = { nodes: 12, disksPerNode: 4 };

  it("adding a 13th node moves about 1/13 of shards, all onto it, and nothing else changes", () => {
    const result = measure(clusterMap(twelve), grown(twelve), ids, (key) => key.startsWith("node-012/"));
    expect(result.movedFraction, `seed ${SEED}`).toBeLessThanOrEqual((1 / 13) * MOVE_EXCESS_MAX);
    expect(result.movedFraction, `seed ${SEED}`).toBeGreaterThan((1 / 13) * 0.9);
    expect(result, `seed ${SEED}`).toMatchObject({ strayMoves: 0, renumbered: 0, setMismatches: 0 });
  });

  it("removing a node moves only that node's shards", () => {
    const raw = rawNodes(twelve);
    const before = mapOf(raw);
    const after = mapOf(raw.filter((node) => node.id !== "node-005"), { epoch: 2 });
    const summary = summarizeMoves(before, after, ids);
    expect([...summary.movedFrom.keys()].every((key) => key.startsWith("node-005/")), `seed ${SEED}`).toBe(true);
    // node-005 held one shard of every object it was chosen for: about 6/12 of them.
    const held = summary.movedFrom.size === 0 ? 0 : [...summary.movedFrom.values()].reduce((sum, count) => sum + count, 0);
    const placer = createPlacer(before);
    const expected = ids.filter((id) => placer.place(id).some((disk) => disk.nodeId === "node-005")).length;
    expect(held, `seed ${SEED}`).toBe(expected);
    expect(summary.shardsMoved, `seed ${SEED}`).toBe(expected);
    expect(measure(before, after, ids, () => true), `seed ${SEED}`).toMatchObject({ renumbered: 0, setMismatches: 0 });
  });

  it("adding a disk to one node moves shards only onto that disk", () => {
    const raw = rawNodes(twelve);
    const grownRaw = rawNodes(twelve);
    grownRaw[3]?.disks.push({ id: "disk-new" });
    const result = measure(mapOf(raw), mapOf(grownRaw, { epoch: 2 }), ids, (key) => key === "node-003/disk-new");
    // The node's weight rises from 4 to 5 of 49: the new disk takes about its 1/49 share.
    expect(result.movedFraction, `seed ${SEED}`).toBeLessThanOrEqual((1 / 49) * MOVE_EXCESS_MAX);
    expect(result, `seed ${SEED}`).toMatchObject({ strayMoves: 0, renumbered: 0, setMismatches: 0 });
  });

  it("raising one disk's weight moves shards only onto that disk", () => {
    const weighted = mapOf(rawNodes({ ...twelve, weightOf: (node, disk) => (node === 7 && disk === 2 ? 3 : 1) }), { epoch: 2 });
    const result = measure(clusterMap(twelve), weighted, ids, (key) => key === "node-007/disk-2");
    expect(result, `seed ${SEED}`).toMatchObject({ strayMoves: 0, renumbered: 0, setMismatches: 0 });
  });

  it("adding a node to a 3-zone map moves shards only onto it, keeping 2 shards per zone", () => {
    const zoned: ClusterShape = { nodes: 12, disksPerNode: 4, zoneOf: (node) => `zone-${node % 3}` };
    const result = measure(clusterMap(zoned), grown(zoned), ids, (key) => key.startsWith("node-012/"));
    // node-012 joins zone-0, whose 2 shards per object now spread over 5 nodes: the newcomer's
    // ideal share is 2/5 of a shard per object, (2 / 5) / 6 = 1/15 of all shards.
    expect(result.movedFraction, `seed ${SEED}`).toBeLessThanOrEqual((1 / 15) * MOVE_EXCESS_MAX);
    expect(result, `seed ${SEED}`).toMatchObject({ strayMoves: 0, renumbered: 0, setMismatches: 0 });
  });
});

describe("shardMoves and summarizeMoves", () => {
  const before = clusterMap({ nodes: 12, disksPerNode: 4 });
  const after = grown({ nodes: 12, disksPerNode: 4 });

  it("lists each moving shard index with its source and target disk", () => {
    const ids = objectIds(SEED, 2000);
    const moving = ids.find((id) => shardMoves(before, after, id).length > 0);
    if (moving === undefined) throw new Error(`seed ${SEED}: no object moved`);
    const moves = shardMoves(before, after, moving);
    expect(moves).toHaveLength(1);
    const [move] = moves;
    const old = createPlacer(before).place(moving);
    expect(move?.from).toEqual(old[move?.shardIndex ?? -1]);
    expect(move?.to.nodeId).toBe("node-012");
  });

  it("moves nothing between a map and itself or an equal map of a later epoch", () => {
    const ids = objectIds(SEED, 2000);
    const same = mapOf(rawNodes({ nodes: 12, disksPerNode: 4 }), { epoch: 5 });
    expect(summarizeMoves(before, before, ids).shardsMoved).toBe(0);
    expect(summarizeMoves(before, same, ids)).toMatchObject({ objects: 2000, shards: 12000, shardsMoved: 0, objectsAffected: 0 });
  });

  it("totals moves by target and source disk", () => {
    const ids = objectIds(SEED, 5000);
    const summary = summarizeMoves(before, after, ids);
    const onto = [...summary.movedTo.values()].reduce((sum, count) => sum + count, 0);
    const off = [...summary.movedFrom.values()].reduce((sum, count) => sum + count, 0);
    expect(onto).toBe(summary.shardsMoved);
    expect(off).toBe(summary.shardsMoved);
    expect(summary.objectsAffected).toBe(summary.shardsMoved);
    expect(summary.movedFraction).toBeCloseTo(summary.shardsMoved / summary.shards, 12);
  });
});
