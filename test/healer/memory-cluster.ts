/**
 * An in-process cluster for healer tests: memory nodes that can be switched off, the object
 * store of a gateway, and a healer with short timeouts. Fast and seeded; the real-process
 * suite (test/durability) proves the same with SIGKILL.
 */
import pino from "pino";
import type { StorageNode } from "../../core/storage-api.js";
import { Cluster } from "../../gateway/objects/cluster.js";
import { ObjectStore } from "../../gateway/objects/object-store.js";
import { NodeRepairQueue } from "../../gateway/objects/repair-queue.js";
import { Healer } from "../../gateway/healer/healer.js";
import { HEALER_SETTINGS_DEFAULT, type HealerSettings } from "../../gateway/healer/settings.js";
import { parseClusterMap, type ClusterMap } from "../../placement/cluster-map.js";
import { MemoryNode } from "../../storage-node/memory-node.js";
import { switchable } from "../gateway/in-process-cluster.js";
import type { DiskHandle } from "./inspect.js";

/** Healer timings for tests: detection within a few hundred milliseconds. */
export const FAST_HEALER: HealerSettings = {
  ...HEALER_SETTINGS_DEFAULT,
  probeIntervalMs: 20,
  probeTimeoutMs: 20,
  suspectAfterMs: 60,
  downAfterMs: 150,
  repairListPollIntervalMs: 100,
  partialVersionGraceMs: 0,
  retryAfterMs: 300,
  checkpointIntervalMs: 100,
  scanIntervalMs: 24 * 3600_000,
  scrubPeriodMs: 7 * 24 * 3600_000,
};

export type SwitchableNode = StorageNode & { down: boolean };

export interface MemoryCluster {
  readonly cluster: Cluster;
  readonly store: ObjectStore;
  readonly repairs: NodeRepairQueue;
  /** The current healer (restartHealer replaces it). */
  readonly healer: Healer;
  readonly nodes: Map<string, SwitchableNode>;
  readonly memory: Map<string, MemoryNode>;
  disks(): DiskHandle[];
  /** Stops the healer and starts a fresh one over the same nodes (a gateway restart). */
  restartHealer(settings?: Partial<HealerSettings>): Promise<Healer>;
  /** A new map (add or drop nodes): memory nodes are created for new ids. */
  reload(raw: RawMap): Promise<void>;
  stop(): Promise<void>;
}

export interface RawMap {
  readonly epoch: number;
  readonly ec: { k: number; m: number; blockSize: number };
  readonly nodes: ReadonlyArray<{ id: string; disks: readonly string[] }>;
}

export function rawMap(nodeCount: number, options: { k?: number; m?: number; blockSize?: number; disks?: number; epoch?: number } = {}): RawMap {
  const disks = Array.from({ length: options.disks ?? 1 }, (_, index) => `d${index}`);
  return {
    epoch: options.epoch ?? 1,
    ec: { k: options.k ?? 4, m: options.m ?? 2, blockSize: options.blockSize ?? 64 * 1024 },
    nodes: Array.from({ length: nodeCount }, (_, index) => ({ id: `n${index + 1}`, disks })),
  };
}

function parse(raw: RawMap): ClusterMap {
  return parseClusterMap(
    { epoch: raw.epoch, ec: raw.ec, nodes: raw.nodes.map((node, index) => ({ id: node.id, url: `http://127.0.0.1:${21001 + index}`, disks: node.disks.map((id) => ({ id })) })) },
    "healer test map",
  );
}

export async function startMemoryCluster(raw: RawMap, settings: Partial<HealerSettings> = {}): Promise<MemoryCluster> {
  const memory = new Map<string, MemoryNode>();
  const nodes = new Map<string, SwitchableNode>();
  const diskIds = new Map<string, readonly string[]>();
  const connect = (id: string, disks: readonly string[]): SwitchableNode => {
    const existing = nodes.get(id);
    if (existing !== undefined) return existing;
    diskIds.set(id, disks);
    const node = new MemoryNode({ nodeId: id, diskIds: [...disks] });
    memory.set(id, node);
    const wrapped = switchable(node);
    nodes.set(id, wrapped);
    return wrapped;
  };
  for (const node of raw.nodes) connect(node.id, node.disks);
  const map = parse(raw);
  const cluster = new Cluster(map, nodes);
  const repairs = new NodeRepairQueue(cluster);
  const store = new ObjectStore({ cluster, repairs });
  const logger = pino({ level: process.env.HEALER_TEST_LOG ?? "silent" });
  const newHealer = (overrides: Partial<HealerSettings>): Healer =>
    new Healer({ cluster, settings: { ...FAST_HEALER, ...overrides }, logger, connect: (node) => connect(node.id, diskIds.get(node.id) ?? ["d0"]) });
  let healer = newHealer(settings);
  await healer.start();
  return {
    cluster,
    store,
    repairs,
    get healer() {
      return healer;
    },
    restartHealer: async (overrides = settings) => {
      await healer.stop();
      healer = newHealer(overrides);
      await healer.start();
      return healer;
    },
    nodes,
    memory,
    disks: () => [...nodes.values()].flatMap((node) => (diskIds.get(node.nodeId) ?? []).map((diskId) => ({ nodeId: node.nodeId, diskId, node: node as StorageNode }))),
    reload: async (next) => {
      for (const node of next.nodes) connect(node.id, node.disks);
      await healer.reloadMap(parse(next));
    },
    stop: async () => {
      await healer.stop();
      await store.settle();
      await repairs.settle();
    },
  };
}

export async function waitFor(what: string, predicate: () => boolean | Promise<boolean>, timeoutMs = 20_000, pollMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
