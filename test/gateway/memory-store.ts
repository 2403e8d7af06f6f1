/**
 * An ObjectStore over six memory nodes (4+2), each wrapped in a FaultyNode (call log, chosen
 * faults), with a failure-detector view the test sets and the repair queue's entries
 * recorded: the object layer alone, fast and in process.
 */
import type { NodeHealthView } from "../../gateway/objects/object-store.js";
import { ObjectStore } from "../../gateway/objects/object-store.js";
import { Cluster } from "../../gateway/objects/cluster.js";
import { parseClusterMap } from "../../placement/cluster-map.js";
import { MemoryNode } from "../../storage-node/memory-node.js";
import { FaultyNode } from "../faulty-node.js";

/** A view the test sets: node ids held suspect or down. */
export class Suspects implements NodeHealthView {
  readonly nodes = new Set<string>();
  unusable(nodeId: string): boolean {
    return this.nodes.has(nodeId);
  }
}

export interface MemoryStore {
  readonly store: ObjectStore;
  readonly nodes: FaultyNode[];
  readonly memory: MemoryNode[];
  readonly suspects: Suspects;
  /** "bucket/key: reason" of every repair the store queued. */
  readonly repairs: string[];
}

export function memoryStore(options: { readonly name: string; readonly blockBytes?: number; readonly smallCopiesBytes?: number }): MemoryStore {
  const map = parseClusterMap(
    { epoch: 1, ec: { k: 4, m: 2, blockSize: options.blockBytes ?? 64 * 1024 }, nodes: Array.from({ length: 6 }, (_, index) => ({ id: `n${index + 1}`, url: `http://127.0.0.1:${1 + index}`, disks: [{ id: "d0" }] })) },
    `${options.name} map`,
  );
  const memory = map.nodes.map((node) => new MemoryNode({ nodeId: node.id, diskIds: ["d0"] }));
  const nodes = memory.map((node) => new FaultyNode(node));
  const cluster = new Cluster(map, new Map(nodes.map((node) => [node.nodeId, node])));
  const suspects = new Suspects();
  const repairs: string[] = [];
  const store = new ObjectStore({
    cluster,
    repairs: { enqueue: (bucket, key, reason) => repairs.push(`${bucket}/${key}: ${reason}`) },
    health: suspects,
    ...(options.smallCopiesBytes === undefined ? {} : { smallCopiesBytes: options.smallCopiesBytes }),
  });
  return { store, nodes, memory, suspects, repairs };
}

export async function* bodyOf(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}

/** The store's nodes holding the shards of bucket/key, by the map's shard index. */
export function byShard(f: Pick<MemoryStore, "store" | "nodes">, bucket: string, key: string): FaultyNode[] {
  const placement = f.store.cluster.place(bucket, key);
  return [...placement.locations].sort((a, b) => a.shardIndex - b.shardIndex).map((location) => f.nodes.find((node) => node.nodeId === location.nodeId) as FaultyNode);
}
