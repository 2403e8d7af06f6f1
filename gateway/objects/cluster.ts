/**
 * What the gateway knows of the cluster: the map, its placer, and a StorageNode per node.
 * Everything else in gateway/objects asks this for "which disks hold object X" and "the
 * node with id N", so a map change is one swap here.
 */
import { assert } from "../../core/assert.js";
import type { ShardLocation, StorageNode } from "../../core/storage-api.js";
import type { ClusterMap } from "../../placement/cluster-map.js";
import { objectId } from "../../placement/object-id.js";
import { placerFor } from "../../placement/rendezvous.js";

export interface ObjectPlacement {
  readonly objectId: Buffer;
  readonly objectIdHex: string;
  /** Shard i lives on locations[i]. */
  readonly locations: readonly ShardLocation[];
}

export class Cluster {
  #map: ClusterMap;
  readonly #nodes: Map<string, StorageNode>;

  constructor(map: ClusterMap, nodes: ReadonlyMap<string, StorageNode>) {
    this.#map = map;
    this.#nodes = new Map(nodes);
    for (const node of map.nodes) assert(this.#nodes.has(node.id), `a StorageNode is given for map node ${node.id}`);
  }

  get map(): ClusterMap {
    return this.#map;
  }

  get nodeIds(): string[] {
    return this.#map.nodes.map((node) => node.id);
  }

  node(nodeId: string): StorageNode | undefined {
    return this.#nodes.get(nodeId);
  }

  /**
   * Every node with a client: the map's, and nodes a newer map dropped. Records may still
   * name a dropped node until the healer has moved its shards off it (decommissioning), so
   * its client stays.
   */
  knownNodeIds(): string[] {
    return [...this.#nodes.keys()];
  }

  /**
   * Swaps in a newer map (a reload: SIGHUP or the admin API). `nodes` must give a
   * StorageNode for every node of the new map that has none yet; known nodes keep theirs.
   * Placement follows the new map at once; records keep naming where shards really are.
   */
  setMap(map: ClusterMap, nodes: ReadonlyMap<string, StorageNode> = new Map()): void {
    for (const [id, node] of nodes) if (!this.#nodes.has(id)) this.#nodes.set(id, node);
    for (const node of map.nodes) assert(this.#nodes.has(node.id), `a StorageNode is given for map node ${node.id}`);
    this.#map = map;
  }

  /** Every (node, disk) of the map, for listings and bucket operations. */
  allDisks(): ShardLocation[] {
    return this.#map.nodes.flatMap((node) => node.disks.map((disk) => ({ shardIndex: -1, nodeId: node.id, diskId: disk.id })));
  }

  /** Where the current map puts the shards of bucket/key. */
  place(bucket: string, key: string): ObjectPlacement {
    const id = objectId(bucket, key);
    const disks = placerFor(this.#map).place(id);
    assert(disks.length === this.#map.ec.k + this.#map.ec.m, "placement names k + m disks");
    return {
      objectId: id,
      objectIdHex: id.toString("hex"),
      locations: disks.map((disk, shardIndex) => ({ shardIndex, nodeId: disk.nodeId, diskId: disk.diskId })),
    };
  }
}
