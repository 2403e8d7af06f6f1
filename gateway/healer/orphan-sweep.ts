/**
 * Shards no record names (a gateway that died after writing a shard and before its record,
 * or a delete that could not reach a disk) are found by comparing a disk's shard files
 * (listShards) with the shards its records name, as a full scan saw them. A shard is removed
 * only when all of these hold: the scan listed the whole disk from the start without an
 * error, no record the scan saw names it, it is older than the grace period (a write in
 * flight has its record within moments), and the healer did not itself just vouch for it.
 */
import type { ObjectRecord, ShardId } from "../../core/storage-api.js";
import type { Cluster } from "../objects/cluster.js";
import { withTimeout } from "../objects/versions.js";
import type { DiskRef } from "./gather.js";
import { RECORD_READ_TIMEOUT_MS, SCAN_PAGE_RECORDS } from "./limits.js";
import { locationKey } from "./target-placement.js";

/**
 * Shard names remembered per disk during one scan. About 100 bytes each, so at most about
 * 200 MB per disk; a disk with more shards is not swept (reported), never swept wrongly.
 */
export const SWEEP_REFERENCES_PER_DISK_MAX = 2_000_000;

export function shardName(shard: ShardId): string {
  return `${shard.objectId}/${shard.versionId}.${shard.partNumber}.${shard.shardIndex}`;
}

/** The shard files `record` names on `disk` (none for inline objects and delete markers). */
export function namedShards(record: ObjectRecord, disk: DiskRef): string[] {
  if (record.deleteMarker || record.inline !== undefined) return [];
  const here = record.placement.filter((location) => locationKey(location) === locationKey(disk));
  const sets = record.parts.length === 0 ? [{ versionId: record.versionId, partNumber: 0 }] : record.parts.map((part) => ({ versionId: part.partVersionId, partNumber: part.partNumber }));
  return here.flatMap((location) => sets.map((set) => shardName({ objectId: record.objectId, versionId: set.versionId, partNumber: set.partNumber, shardIndex: location.shardIndex })));
}

/**
 * The shard names records name, per disk, as a scan sees them: a record seen on any disk
 * vouches for its shards on every disk of its placement (a disk whose own copy of the record
 * was lost still keeps the shard; the healer rewrites the record there).
 */
export class ShardReferences {
  readonly #byDisk = new Map<string, Set<string>>();
  readonly #overflow = new Set<string>();

  add(record: ObjectRecord): void {
    const disks = new Map(record.placement.map((location) => [locationKey(location), location]));
    for (const disk of disks.values()) this.#addOn(disk, record);
  }

  #addOn(disk: DiskRef, record: ObjectRecord): void {
    const key = locationKey(disk);
    if (this.#overflow.has(key)) return;
    const names = this.#byDisk.get(key) ?? new Set<string>();
    for (const name of namedShards(record, disk)) names.add(name);
    if (names.size > SWEEP_REFERENCES_PER_DISK_MAX) {
      this.#overflow.add(key);
      this.#byDisk.delete(key);
      return;
    }
    this.#byDisk.set(key, names);
  }

  overflowed(disk: DiskRef): boolean {
    return this.#overflow.has(locationKey(disk));
  }

  has(disk: DiskRef, name: string): boolean {
    return this.#byDisk.get(locationKey(disk))?.has(name) === true;
  }
}

export interface SweepOptions {
  readonly cluster: Cluster;
  readonly references: ShardReferences;
  /** Shards committed after this (epoch ms) are left alone. */
  readonly olderThan: number;
  /** Shards the healer itself vouched for during the scan (a returning disk's reused shard). */
  readonly isProtected: (disk: DiskRef, name: string) => boolean;
  readonly signal: AbortSignal;
}

/** Removes the disk's unreferenced old shards; returns how many. */
export async function sweepDisk(disk: DiskRef, options: SweepOptions): Promise<number> {
  const node = options.cluster.node(disk.nodeId);
  if (node === undefined || options.references.overflowed(disk)) return 0;
  let removed = 0;
  let cursor: string | undefined;
  do {
    if (options.signal.aborted) return removed;
    const page = await withTimeout(node.listShards(disk.diskId, { limit: SCAN_PAGE_RECORDS, ...(cursor === undefined ? {} : { cursor }) }), RECORD_READ_TIMEOUT_MS, `shards of ${locationKey(disk)}`);
    for (const listed of page.shards) {
      const name = shardName(listed.shard);
      if (listed.committedAt >= options.olderThan || options.references.has(disk, name) || options.isProtected(disk, name)) continue;
      if (await node.deleteShard(disk.diskId, listed.shard)) removed += 1;
    }
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return removed;
}
