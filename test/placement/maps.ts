/**
 * Map builders and counters shared by the placement tests. Maps are built as raw data
 * and go through parseClusterMap, so every test map is also a valid map.
 */
import type { ClusterMap } from "../../placement/cluster-map.js";
import { parseClusterMap } from "../../placement/cluster-map.js";
import type { Placement } from "../../placement/rendezvous.js";
import { Prng } from "../prng.js";

/** Objects per statistical test: enough that a 5% tolerance is many standard deviations. */
export const OBJECTS = 100_000;

export interface RawNode {
  id: string;
  url: string;
  zone?: string;
  disks: { id: string; weight?: number }[];
}

export interface ClusterShape {
  nodes: number;
  disksPerNode: number;
  /** Zone of node n; none means the default zone. */
  zoneOf?: (node: number) => string;
  /** Weight of disk d of node n; none means 1. */
  weightOf?: (node: number, disk: number) => number;
  /** First node number, so a grown map's new node gets a fresh id and URL. */
  firstNode?: number;
  k?: number;
  m?: number;
}

export function rawNode(node: number, shape: ClusterShape): RawNode {
  const raw: RawNode = {
    id: `node-${String(node).padStart(3, "0")}`,
    url: `http://10.0.${Math.floor(node / 250)}.${(node % 250) + 1}:9100`,
    disks: Array.from({ length: shape.disksPerNode }, (_unused, disk) => {
      const weight = shape.weightOf?.(node, disk);
      return weight === undefined ? { id: `disk-${disk}` } : { id: `disk-${disk}`, weight };
    }),
  };
  const zone = shape.zoneOf?.(node);
  if (zone !== undefined) raw.zone = zone;
  return raw;
}

export function rawNodes(shape: ClusterShape): RawNode[] {
  const first = shape.firstNode ?? 0;
  return Array.from({ length: shape.nodes }, (_unused, index) => rawNode(first + index, shape));
}

export function mapOf(nodes: RawNode[], options: { epoch?: number; k?: number; m?: number } = {}): ClusterMap {
  const ec = { k: options.k ?? 4, m: options.m ?? 2 };
  return parseClusterMap({ epoch: options.epoch ?? 1, ec, nodes }, "test");
}

export function clusterMap(shape: ClusterShape): ClusterMap {
  const options: { k?: number; m?: number } = {};
  if (shape.k !== undefined) options.k = shape.k;
  if (shape.m !== undefined) options.m = shape.m;
  return mapOf(rawNodes(shape), options);
}

export function objectIds(seed: number, count: number = OBJECTS): Buffer[] {
  const prng = new Prng(seed);
  return Array.from({ length: count }, () => prng.bytes(16));
}

export function increment<K>(counts: Map<K, number>, key: K, by = 1): void {
  counts.set(key, (counts.get(key) ?? 0) + by);
}

/** How many shards of one placement each node (or zone) holds. */
export function countBy(placement: Placement, field: "nodeId" | "zone"): Map<string, number> {
  const counts = new Map<string, number>();
  for (const disk of placement) increment(counts, disk[field]);
  return counts;
}

export function mean(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}
