/**
 * Reading version records from an object's disks and choosing the version to serve:
 * the newest one that is a delete marker, or whose shards sit on at least k disks whose
 * nodes answered (DESIGN.md: "picks the newest version readable from at least k shards").
 */
import { TesseraError } from "../../core/errors.js";
import type { ObjectRecord, ShardLocation } from "../../core/storage-api.js";
import type { Cluster } from "./cluster.js";

/**
 * How long the gateway waits for one node's records. Records are small LMDB reads; a node
 * that needs longer is treated as down for this request rather than stalling the client.
 */
export const RECORD_READ_TIMEOUT_MS = 5_000;

export interface RecordRead {
  readonly location: ShardLocation;
  /** Undefined when the node did not answer (down, timeout, disk failed). */
  readonly records?: readonly ObjectRecord[];
  readonly error?: unknown;
}

export interface ResolvedVersion {
  readonly record: ObjectRecord;
  /** The disks that answered with this version's record (and that record), by shard index. */
  readonly holders: ReadonlyMap<number, { readonly location: ShardLocation; readonly record: ObjectRecord }>;
  /** Shard indexes whose node answered: the readable ones. */
  readonly answered: ReadonlySet<string>;
}

export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function readRecords(cluster: Cluster, bucket: string, key: string, locations: readonly ShardLocation[]): Promise<RecordRead[]> {
  return Promise.all(
    locations.map(async (location): Promise<RecordRead> => {
      const node = cluster.node(location.nodeId);
      if (node === undefined) return { location, error: new Error(`unknown node ${location.nodeId}`) };
      try {
        const records = await withTimeout(node.getRecords(location.diskId, bucket, key), RECORD_READ_TIMEOUT_MS, `node ${location.nodeId}`);
        return { location, records };
      } catch (error) {
        return { location, error };
      }
    }),
  );
}

const locationKey = (location: Pick<ShardLocation, "nodeId" | "diskId">): string => `${location.nodeId}/${location.diskId}`;

/**
 * The version to serve, or undefined when no disk holds any version of the key. A newer
 * version that cannot be read now is skipped only if it cannot have been acknowledged (its
 * records plus the disks that did not answer stay below the write quorum: a failed PUT);
 * otherwise serving an older version would be serving stale data, so it is ERR_READ_QUORUM.
 */
export function resolveNewest(reads: readonly RecordRead[], writeQuorum: number): ResolvedVersion | undefined {
  const answered = new Set(reads.filter((read) => read.records !== undefined).map((read) => locationKey(read.location)));
  const unanswered = reads.length - answered.size;
  const versions = new Map<string, { record: ObjectRecord; holders: Map<number, { location: ShardLocation; record: ObjectRecord }> }>();
  for (const read of reads) {
    for (const record of read.records ?? []) {
      const entry = versions.get(record.versionId) ?? { record, holders: new Map() };
      if (record.revision > entry.record.revision) entry.record = record;
      entry.holders.set(read.location.shardIndex, { location: read.location, record });
      versions.set(record.versionId, entry);
    }
  }
  const newestFirst = [...versions.values()].sort((a, b) => (a.record.versionId < b.record.versionId ? 1 : -1));
  for (const { record, holders } of newestFirst) {
    if (record.deleteMarker || readableShards(record, answered, holders) >= record.ec.k) return { record, holders, answered };
    if (holders.size + unanswered >= writeQuorum) throw unreadable(record, unanswered);
  }
  if (newestFirst.length === 0 && unanswered >= writeQuorum) {
    throw new TesseraError("ERR_READ_QUORUM", `${unanswered} of ${reads.length} disks did not answer: the key may exist on them`);
  }
  return undefined;
}

function unreadable(record: ObjectRecord, unanswered: number): TesseraError {
  return new TesseraError("ERR_READ_QUORUM", `${record.bucket}/${record.key} version ${record.versionId}: fewer than k = ${record.ec.k} shards reachable (${unanswered} disks did not answer)`);
}

function readableShards(record: ObjectRecord, answered: ReadonlySet<string>, holders: ReadonlyMap<number, unknown>): number {
  if (record.inline !== undefined) return holders.size;
  if (record.parts.length > 0 || record.placement.length > 0) return record.placement.filter((location) => answered.has(locationKey(location))).length;
  return 0;
}
