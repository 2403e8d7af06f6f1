/**
 * An independent check of redundancy for tests: for one key, read every disk of the cluster
 * directly (not through the healer), take the newest version, and count the shards that are
 * really there: the disk answers, holds the version's newest record, and the shard (every
 * part's, or the inline one) reads back whole and passes every checksum.
 */
import type { ShardIdentity } from "../../core/shard-format.js";
import { ShardParser } from "../../core/shard-stream.js";
import type { ObjectRecord, ShardLocation, StorageNode } from "../../core/storage-api.js";
import { encodeParamsOf } from "../../gateway/objects/get-object.js";

export interface DiskHandle {
  readonly nodeId: string;
  readonly diskId: string;
  readonly node: StorageNode;
}

export interface Redundancy {
  readonly versionId?: string;
  readonly deleteMarker: boolean;
  /** Shards whose disk answers, holds the newest record, and whose bytes verify. */
  readonly healthy: number;
  readonly width: number;
  /** Disks holding some record of the key (any version). */
  readonly recordDisks: number;
  /** Records of versions older than the newest still present. */
  readonly olderVersions: number;
  readonly problems: readonly string[];
}

const key = (location: Pick<ShardLocation, "nodeId" | "diskId">): string => `${location.nodeId}/${location.diskId}`;

async function verifyWhole(source: AsyncIterable<Buffer> | Iterable<Buffer>, identity: ShardIdentity): Promise<void> {
  const parser = ShardParser.forFile(identity);
  for await (const piece of source) parser.push(piece);
  parser.end();
}

async function shardOk(disk: DiskHandle, record: ObjectRecord, held: ObjectRecord, shardIndex: number): Promise<string | undefined> {
  const sets = record.parts.length === 0 ? [{ partNumber: 0, versionId: record.versionId, size: record.size, blockBytes: record.ec.blockBytes }] : record.parts.map((part) => ({ partNumber: part.partNumber, versionId: part.partVersionId, size: part.size, blockBytes: part.blockBytes }));
  for (const set of sets) {
    const params = encodeParamsOf(record, set.partNumber, set.versionId, set.size, set.blockBytes);
    const identity = { objectId: params.objectId, versionId: params.versionId, partNumber: set.partNumber, shardIndex };
    try {
      if (held.inline !== undefined) await verifyWhole([held.inline], identity);
      else await verifyWhole(disk.node.readShard(disk.diskId, { objectId: record.objectId, versionId: set.versionId, partNumber: set.partNumber, shardIndex }), identity);
    } catch (error) {
      return `shard ${shardIndex} part ${set.partNumber} at ${key(disk)}: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
  return undefined;
}

/** The redundancy of `bucket/key` as the disks really hold it. `up` says which disks to count. */
export async function inspectKey(disks: readonly DiskHandle[], bucket: string, objectKey: string, up: (disk: DiskHandle) => boolean): Promise<Redundancy> {
  const held = new Map<string, ObjectRecord[]>();
  await Promise.all(
    disks.filter(up).map(async (disk) => {
      const records = await disk.node.getRecords(disk.diskId, bucket, objectKey).catch(() => undefined);
      if (records !== undefined && records.length > 0) held.set(key(disk), records);
    }),
  );
  const all = [...held.values()].flat();
  if (all.length === 0) return { deleteMarker: false, healthy: 0, width: 0, recordDisks: 0, olderVersions: 0, problems: [] };
  const newestId = all.reduce((newest, record) => (record.versionId > newest ? record.versionId : newest), "");
  const best = all.filter((record) => record.versionId === newestId).reduce((a, b) => (b.revision > a.revision ? b : a));
  const problems: string[] = [];
  let healthy = 0;
  for (const location of best.placement) {
    const disk = disks.find((each) => key(each) === key(location));
    const record = held.get(key(location))?.find((each) => each.versionId === newestId);
    if (disk === undefined || !up(disk)) problems.push(`shard ${location.shardIndex}: ${key(location)} is down or unknown`);
    else if (record === undefined) problems.push(`shard ${location.shardIndex}: no record on ${key(location)}`);
    else if (record.revision !== best.revision) problems.push(`shard ${location.shardIndex}: ${key(location)} holds revision ${record.revision} of ${best.revision}`);
    else if (best.deleteMarker) healthy += 1;
    else {
      const problem = await shardOk(disk, best, record, location.shardIndex);
      if (problem === undefined) healthy += 1;
      else problems.push(problem);
    }
  }
  const olderVersions = all.filter((record) => record.versionId !== newestId).length;
  return { versionId: newestId, deleteMarker: best.deleteMarker, healthy, width: best.ec.k + best.ec.m, recordDisks: held.size, olderVersions, problems };
}
