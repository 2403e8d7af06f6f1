/**
 * What a map change costs: which shards of an object must move, from which disk to which.
 * The object's placement under the old map stands in for its record, and the new placement
 * keeps every surviving disk's shard index (see rendezvous.ts), so a move is exactly a
 * shard whose disk left the object's set. The healer executes these; tests and the
 * operator's "what will this change move?" report summarize them.
 */
import { assert } from "../core/assert.js";
import type { ClusterDisk, ClusterMap } from "./cluster-map.js";
import { placementKeys, placerFor } from "./rendezvous.js";

export interface ShardMove {
  readonly shardIndex: number;
  readonly from: ClusterDisk;
  readonly to: ClusterDisk;
}

export interface MoveSummary {
  readonly objects: number;
  readonly shards: number;
  readonly shardsMoved: number;
  /** shardsMoved / shards. */
  readonly movedFraction: number;
  /** Objects with at least one moved shard. */
  readonly objectsAffected: number;
  /** Shards moved onto each disk, by disk key. */
  readonly movedTo: ReadonlyMap<string, number>;
  /** Shards moved off each disk, by disk key. */
  readonly movedFrom: ReadonlyMap<string, number>;
}

/** Shards of `objectId` that move when `oldMap` is replaced by `newMap`, by shard index. */
export function shardMoves(oldMap: ClusterMap, newMap: ClusterMap, objectId: Uint8Array): ShardMove[] {
  const before = placerFor(oldMap).place(objectId);
  const after = placerFor(newMap).place(objectId, { previous: placementKeys(before) });
  assert(after.length === before.length, "an object keeps its shard count across map changes");
  const moves: ShardMove[] = [];
  before.forEach((from, shardIndex) => {
    const to = after[shardIndex];
    assert(to !== undefined, "the new placement has every shard index");
    if (to.key !== from.key) moves.push({ shardIndex, from, to });
  });
  return moves;
}

function increment(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

/** Totals of `shardMoves` over many objects. */
export function summarizeMoves(oldMap: ClusterMap, newMap: ClusterMap, objectIds: Iterable<Uint8Array>): MoveSummary {
  let objects = 0;
  let shards = 0;
  let shardsMoved = 0;
  let objectsAffected = 0;
  const movedTo = new Map<string, number>();
  const movedFrom = new Map<string, number>();
  const width = oldMap.ec.k + oldMap.ec.m;
  for (const objectId of objectIds) {
    const moves = shardMoves(oldMap, newMap, objectId);
    objects += 1;
    shards += width;
    shardsMoved += moves.length;
    if (moves.length > 0) objectsAffected += 1;
    for (const move of moves) {
      increment(movedTo, move.to.key);
      increment(movedFrom, move.from.key);
    }
  }
  return {
    objects,
    shards,
    shardsMoved,
    movedFraction: shards === 0 ? 0 : shardsMoved / shards,
    objectsAffected,
    movedTo,
    movedFrom,
  };
}
