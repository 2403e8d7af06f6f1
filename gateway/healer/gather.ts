/**
 * Every record of one key the healer can find: read from the disks the full map and the
 * healer's target place the key on, from any disk a scan saw it on, and then, round after
 * round, from every disk a found record names (a record always says where its shards
 * really are, whatever the map says now). Disks the detector knows to be unreadable are not
 * asked (no timeout is waited for); they count as unanswered.
 */
import type { ObjectRecord, ShardLocation } from "../../core/storage-api.js";
import type { Cluster } from "../objects/cluster.js";
import { withTimeout } from "../objects/versions.js";
import { RECORD_FOLLOW_ROUNDS_MAX, RECORD_READ_TIMEOUT_MS } from "./limits.js";
import { locationKey } from "./target-placement.js";

export type DiskRef = Pick<ShardLocation, "nodeId" | "diskId">;

export interface DiskRecords {
  readonly disk: DiskRef;
  /** Every version of the key on that disk, newest first; undefined when it did not answer. */
  readonly records?: readonly ObjectRecord[];
  readonly error?: string;
}

export interface GatherOptions {
  readonly cluster: Cluster;
  /** Whether a disk can be asked now (the detector's view). */
  readonly readable: (disk: DiskRef) => boolean;
  readonly timeoutMs?: number;
}

export async function gatherRecords(bucket: string, key: string, seeds: readonly DiskRef[], options: GatherOptions): Promise<Map<string, DiskRecords>> {
  const found = new Map<string, DiskRecords>();
  let pending = unique(seeds);
  for (let round = 0; round <= RECORD_FOLLOW_ROUNDS_MAX && pending.length > 0; round++) {
    const reads = await Promise.all(pending.map((disk) => readDisk(bucket, key, disk, options)));
    for (const read of reads) found.set(locationKey(read.disk), read);
    const named = reads.flatMap((read) => (read.records ?? []).flatMap((record) => record.placement));
    pending = unique(named).filter((disk) => !found.has(locationKey(disk)));
  }
  return found;
}

function unique(disks: readonly DiskRef[]): DiskRef[] {
  const byKey = new Map<string, DiskRef>();
  for (const disk of disks) byKey.set(locationKey(disk), { nodeId: disk.nodeId, diskId: disk.diskId });
  return [...byKey.values()];
}

async function readDisk(bucket: string, key: string, disk: DiskRef, options: GatherOptions): Promise<DiskRecords> {
  const node = options.cluster.node(disk.nodeId);
  if (node === undefined) return { disk, error: `no client for node ${disk.nodeId}` };
  if (!options.readable(disk)) return { disk, error: `${locationKey(disk)} is not readable now` };
  try {
    const records = await withTimeout(node.getRecords(disk.diskId, bucket, key), options.timeoutMs ?? RECORD_READ_TIMEOUT_MS, `records of ${locationKey(disk)}`);
    return { disk, records };
  } catch (error) {
    return { disk, error: error instanceof Error ? error.message : String(error) };
  }
}
