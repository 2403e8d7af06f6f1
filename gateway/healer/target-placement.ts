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
import { keepPreviousIndexes, placerFor, type Placer } from "../../placement/rendezvous.js";

export function locationKey(location: Pick<ShardLocation, "nodeId" | "diskId">): string {
  return `${location.nodeId}/${location.diskId}`;
}

/**
 * The map without the `out` disks (a node left with no disk is dropped), or the map itself
 * when nothing is out. Undefined when what remains is not a valid map.
 */
export function effectiveMap(map: ClusterMap, out: ReadonlySet<string>): ClusterMap | undefined {
  if (out.size === 0) return map;
  const cached = effectiveMaps.get(map);
  if (cached !== undefined && sameSet(cached.out, out)) return cached.effective;
  const nodes = map.nodes
    .map((node) => ({ id: node.id, url: node.url, zone: node.zone, disks: node.disks.filter((disk) => !out.has(`${node.id}/${disk.id}`)).map((disk) => ({ id: disk.id, weight: disk.weight })) }))
    .filter((node) => node.disks.length > 0);
  if (nodes.length === 0) return undefined;
  let effective: ClusterMap;
  try {
    effective = parseClusterMap({ epoch: map.epoch, ec: map.ec, zones: map.zones, nodes }, `map epoch ${map.epoch} without ${out.size} out disks`);
  } catch (error) {
    if (isTesseraError(error, "ERR_INVALID_CLUSTER_MAP")) return undefined;
    throw error;
  }
  const frozenOut = new Set(out);
  effectiveMaps.set(map, { out: frozenOut, effective });
  derivedFrom.set(effective, { map, out: frozenOut });
  return effective;
}

/** The last effective map made of each map (the healer asks for it on every object). */
const effectiveMaps = new WeakMap<ClusterMap, { readonly out: ReadonlySet<string>; readonly effective: ClusterMap }>();
/** Each effective map's map and out disks: narrowTarget places copies by the full map's placement. */
const derivedFrom = new WeakMap<ClusterMap, { readonly map: ClusterMap; readonly out: ReadonlySet<string> }>();

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((item) => b.has(item));
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
    const objectId = Buffer.from(record.objectId, "hex");
    if (current.length < placer.map.ec.k + placer.map.ec.m) return narrowTarget(placer, objectId, current);
    const disks = placer.place(objectId, { previous: current.map(locationKey) });
    return disks.map((disk, shardIndex) => ({ shardIndex, nodeId: disk.nodeId, diskId: disk.diskId }));
  } catch (error) {
    if (error instanceof TesseraError && error.code === "ERR_INVALID_CLUSTER_MAP") return undefined;
    throw error;
  }
}

export function placerOf(map: ClusterMap | undefined): Placer | undefined {
  return map === undefined ? undefined : placerFor(map);
}

/**
 * An object narrower than the map's code (a small object's 1 + m copies: put-object.ts) lives
 * on the first disks of the key's placement under the full map, where writers put it and
 * readers look: the first of them that are not out, so that copies moved off an out disk stay
 * among the disks a GET asks (a placement of the effective map could put them on disks
 * outside the key's placement, where no reader looks). With fewer such disks than copies, the
 * effective map's placement. Disks of `current` among the wanted ones keep their index; the
 * others' indexes go to the newcomers in placement order.
 */
function narrowTarget(placer: Placer, objectId: Uint8Array, current: readonly ShardLocation[]): ShardLocation[] {
  const origin = derivedFrom.get(placer.map) ?? { map: placer.map, out: new Set<string>() };
  const live = placerFor(origin.map)
    .place(objectId)
    .filter((disk) => !origin.out.has(locationKey(disk)));
  const wanted = (live.length >= current.length ? live : placer.place(objectId)).slice(0, current.length).map((disk) => ({ nodeId: disk.nodeId, diskId: disk.diskId }));
  const byKey = new Map(wanted.map((disk) => [locationKey(disk), disk]));
  const keys = keepPreviousIndexes([...byKey.keys()], current.map(locationKey));
  return keys.map((key, shardIndex) => ({ shardIndex, ...(byKey.get(key) as { nodeId: string; diskId: string }) }));
}
