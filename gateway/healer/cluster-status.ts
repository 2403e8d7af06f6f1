/**
 * `GET /_tessera/admin/cluster` and `tessera cluster status`: the map the gateway serves,
 * and for every node (the map's and retired ones still draining) its state as the failure
 * detector sees it, and each disk's weight, state, usage and counts.
 */
import type { NodeState } from "./detector.js";
import type { Healer } from "./healer.js";

export interface ClusterDiskStatus {
  readonly id: string;
  /** Undefined for a disk the map no longer lists (retired). */
  readonly weight?: number;
  readonly state: string;
  readonly reason?: string;
  /** Out of the placement the healer targets: its shards are rebuilt elsewhere. */
  readonly out: boolean;
  readonly freeBytes: number;
  readonly usedBytes: number;
  readonly shardCount: number;
  readonly recordCount: number;
  readonly since: number;
}

export interface ClusterNodeStatus {
  readonly id: string;
  readonly url?: string;
  readonly zone?: string;
  /** In the map; retired (dropped by a newer map, its shards still moving off it); or drained (safe to stop). */
  readonly role: "member" | "retired" | "drained";
  readonly state: NodeState;
  readonly since: number;
  readonly lastOkAt?: number;
  readonly failingSince?: number;
  readonly lastError?: string;
  readonly probeMs?: number;
  readonly disks: readonly ClusterDiskStatus[];
}

export interface ClusterStatus {
  readonly epoch: number;
  readonly ec: { readonly k: number; readonly m: number; readonly blockSize: number };
  readonly mapFile?: string;
  readonly zones: readonly string[];
  readonly nodes: readonly ClusterNodeStatus[];
  readonly totals: { readonly nodes: number; readonly nodesUp: number; readonly disks: number; readonly disksOut: number; readonly usedBytes: number; readonly freeBytes: number };
}

export function clusterStatus(healer: Healer, mapFile?: string): ClusterStatus {
  const map = healer.cluster.map;
  const out = healer.detector.outDisks();
  const probed = new Map(healer.detector.status().map((node) => [node.nodeId, node]));
  const nodes = healer.cluster.knownNodeIds().map((id): ClusterNodeStatus => {
    const config = map.nodes.find((node) => node.id === id);
    const seen = probed.get(id);
    const diskIds = [...new Set([...(config?.disks.map((disk) => disk.id) ?? []), ...(seen?.disks.map((disk) => disk.diskId) ?? [])])];
    const disks = diskIds.map((diskId): ClusterDiskStatus => {
      const health = seen?.disks.find((disk) => disk.diskId === diskId);
      const weight = config?.disks.find((disk) => disk.id === diskId)?.weight;
      return {
        id: diskId,
        ...(weight === undefined ? {} : { weight }),
        state: health?.state ?? "unknown",
        ...(health?.reason === undefined ? {} : { reason: health.reason }),
        out: out.has(`${id}/${diskId}`),
        freeBytes: health?.freeBytes ?? 0,
        usedBytes: health?.usedBytes ?? 0,
        shardCount: health?.shardCount ?? 0,
        recordCount: health?.recordCount ?? 0,
        since: health?.since ?? healer.startedAt,
      };
    });
    return {
      id,
      ...(config === undefined ? {} : { url: config.url, zone: config.zone }),
      role: config !== undefined ? "member" : healer.drained.has(id) ? "drained" : "retired",
      state: seen?.state ?? "ok",
      since: seen?.since ?? healer.startedAt,
      ...(seen?.lastOkAt === undefined ? {} : { lastOkAt: seen.lastOkAt }),
      ...(seen?.failingSince === undefined ? {} : { failingSince: seen.failingSince }),
      ...(seen?.lastError === undefined ? {} : { lastError: seen.lastError }),
      ...(seen?.probeMs === undefined ? {} : { probeMs: seen.probeMs }),
      disks,
    };
  });
  const disks = nodes.flatMap((node) => node.disks);
  return {
    epoch: map.epoch,
    ec: map.ec,
    ...(mapFile === undefined ? {} : { mapFile }),
    zones: map.zones,
    nodes,
    totals: {
      nodes: nodes.length,
      nodesUp: nodes.filter((node) => node.state === "ok").length,
      disks: disks.length,
      disksOut: disks.filter((disk) => disk.out).length,
      usedBytes: disks.reduce((sum, disk) => sum + disk.usedBytes, 0),
      freeBytes: disks.reduce((sum, disk) => sum + disk.freeBytes, 0),
    },
  };
}
