/**
 * Where the healer puts an object's shards: the placement of the cluster map without the
 * disks that are out (down nodes, failed disks), keeping every surviving shard's index
 * (placement/rendezvous.ts `previous`). So a lost disk's shards go to the disks that would
 * hold them had it never existed, spread over the whole cluster (declustered), and only
 * shards whose disk changed ever move. When the out disks return, the same rule moves the
 * shards back, where reads of the full map expect them.
 */
import { TesseraError, isTesseraError } from "../../core/errors.js";
import type { ObjectRecord, ShardLocation } from "../../core/storage-api.js";
import { parseClusterMap, type ClusterMap } from "../../placement/cluster-map.js";
import { placerFor, type Placer } from "../../placement/rendezvous.js";

export function locationKey(location: Pick<ShardLocation, "nodeId" | "diskId">): string {
  return `${location.nodeId}/${location.diskId}`;
}

/**
 * The map without the `out` disks (a node left with no disk is dropped), or the map itself
 * when nothing is out. Undefined when what remains is not a valid map.
 */
export function effectiveMap(map: ClusterMap, out: ReadonlySet<string>): ClusterMap | undefined {
  if (out.size === 0) return map;
  const nodes = map.nodes
    .map((node) => ({ id: node.id, url: node.url, zone: node.zone, disks: node.disks.filter((disk) => !out.has(`${node.id}/${disk.id}`)).map((disk) => ({ id: disk.id, weight: disk.weight })) }))
    .filter((node) => node.disks.length > 0);
  if (nodes.length === 0) return undefined;
  try {
    return parseClusterMap({ epoch: map.epoch, ec: map.ec, zones: map.zones, nodes }, `map epoch ${map.epoch} without ${out.size} out disks`);
  } catch (error) {
    if (isTesseraError(error, "ERR_INVALID_CLUSTER_MAP")) return undefined;
    throw error;
  }
}

/** The record's placement ordered by shard index, or undefined if it is not a full set of k + m. */
export function placementByIndex(record: ObjectRecord): ShardLocation[] | undefined {
  const width = record.ec.k + record.ec.m;
  const sorted = [...record.placement].sort((a, b) => a.shardIndex - b.shardIndex);
  if (sorted.length !== width || sorted.some((location, index) => location.shardIndex !== index)) return undefined;
  return sorted;
}

/**
 * Where the healer wants each shard of `record`: the placer of the effective map, keeping the
 * indexes of disks that stay. Undefined when the effective map has too few disks for the
 * object (the shards then stay where they are until disks return or are added).
 */
export function targetPlacement(placer: Placer | undefined, record: ObjectRecord): ShardLocation[] | undefined {
  const current = placementByIndex(record);
  if (placer === undefined || current === undefined) return undefined;
  try {
    const disks = placer.place(Buffer.from(record.objectId, "hex"), { previous: current.map(locationKey) });
    return disks.map((disk, shardIndex) => ({ shardIndex, nodeId: disk.nodeId, diskId: disk.diskId }));
  } catch (error) {
    if (error instanceof TesseraError && error.code === "ERR_INVALID_CLUSTER_MAP") return undefined;
    throw error;
  }
}

export function placerOf(map: ClusterMap | undefined): Placer | undefined {
  return map === undefined ? undefined : placerFor(map);
}
