/**
 * PUT of one object version (DESIGN.md, "Data path" and "Commit"): encode and stream the
 * shards to their disks, let the caller check digests, then commit by writing the version
 * record to each shard's disk. The PUT succeeds only when the write quorum of records is
 * stored; otherwise what was written is removed and the error says why.
 */
import { createHash } from "node:crypto";
import { CHECKSUM_ALGORITHM_DEFAULT } from "../../core/checksum.js";
import { TesseraError } from "../../core/errors.js";
import { chooseBlockBytes } from "../../core/shard-format.js";
import type { ObjectRecord, ShardId, ShardLocation } from "../../core/storage-api.js";
import { encodeObject, type EncodeParams, type ShardSink } from "../erasure/encode.js";
import type { Cluster, ObjectPlacement } from "./cluster.js";

/**
 * Objects up to this size are stored inside their records (each record carries its own
 * disk's shard), so a small PUT is one LMDB write per node instead of a shard file plus a
 * record: 4+2 at 64 KiB puts about 16 KiB in each record.
 */
export const INLINE_OBJECT_BYTES_MAX = 64 * 1024;

export interface PutObjectInput {
  readonly bucket: string;
  readonly key: string;
  readonly body: AsyncIterable<Buffer>;
  readonly length: number;
  readonly versionId: string;
  readonly contentType?: string;
  readonly userMetadata: Readonly<Record<string, string>>;
  readonly systemMetadata: Readonly<Record<string, string>>;
  /** Sees each body piece (x-amz-checksum-* calculators). */
  readonly observe?: (piece: Buffer) => void;
  /**
   * Runs after the body is fully read and shards are written, before commit: throws to
   * refuse (BadDigest), or returns system metadata known only now (a trailing checksum).
   */
  readonly finalize?: (md5: Buffer) => Promise<Readonly<Record<string, string>>>;
  readonly now?: number;
}

export interface PutObjectResult {
  readonly record: ObjectRecord;
  /** Shard indexes that could not be written: the object is queued for repair. */
  readonly missingShards: readonly number[];
}

export function writeQuorum(k: number, m: number): number {
  return Math.min(k + m, k + 1);
}

export async function putObject(cluster: Cluster, placement: ObjectPlacement, input: PutObjectInput): Promise<PutObjectResult> {
  const { k, m, blockSize } = cluster.map.ec;
  const params: EncodeParams = {
    checksumAlgorithm: CHECKSUM_ALGORITHM_DEFAULT,
    k,
    m,
    blockBytes: chooseBlockBytes(input.length, k, blockSize),
    partNumber: 0,
    objectLength: input.length,
    objectId: placement.objectId,
    versionId: Buffer.from(input.versionId, "hex"),
  };
  const inline = input.length <= INLINE_OBJECT_BYTES_MAX ? new Map<number, Buffer>() : undefined;
  const sink = inline === undefined ? shardSink(cluster, placement, input.versionId) : memorySink(inline);
  const md5 = createHash("md5");
  const quorum = writeQuorum(k, m);
  const encoded = await encodeObject(input.body, params, sink, {
    writeQuorum: quorum,
    observe: (piece) => {
      md5.update(piece);
      input.observe?.(piece);
    },
  });
  const digest = md5.digest();
  const committedShards = placement.locations.filter((location) => encoded.shardErrors[location.shardIndex] === undefined);
  let lateMetadata: Readonly<Record<string, string>> = {};
  try {
    lateMetadata = (await input.finalize?.(digest)) ?? {};
  } catch (error) {
    if (inline === undefined) await deleteShards(cluster, committedShards, placement.objectIdHex, input.versionId);
    throw error;
  }
  const record: ObjectRecord = {
    bucket: input.bucket,
    key: input.key,
    versionId: input.versionId,
    revision: 1,
    objectId: placement.objectIdHex,
    deleteMarker: false,
    size: input.length,
    etag: digest.toString("hex"),
    lastModified: input.now ?? Date.now(),
    ...(input.contentType === undefined ? {} : { contentType: input.contentType }),
    userMetadata: input.userMetadata,
    systemMetadata: { ...input.systemMetadata, ...lateMetadata },
    ec: { k, m, blockBytes: params.blockBytes, checksumAlgorithm: params.checksumAlgorithm },
    placement: placement.locations,
    parts: [],
  };
  await commitRecords(cluster, committedShards, record, quorum, inline);
  const missingShards = placement.locations.filter((location) => !committedShards.includes(location)).map((location) => location.shardIndex);
  return { record, missingShards };
}

function shardSink(cluster: Cluster, placement: ObjectPlacement, versionId: string): ShardSink {
  return async (shardIndex, body, declaredBytes) => {
    const location = placement.locations[shardIndex];
    const node = location === undefined ? undefined : cluster.node(location.nodeId);
    if (location === undefined || node === undefined) throw new TesseraError("ERR_NODE_UNAVAILABLE", `no node for shard ${shardIndex}`);
    const shard: ShardId = { objectId: placement.objectIdHex, versionId, partNumber: 0, shardIndex };
    await node.writeShard(location.diskId, shard, body, declaredBytes);
  };
}

function memorySink(into: Map<number, Buffer>): ShardSink {
  return async (shardIndex, body) => {
    const parts: Buffer[] = [];
    for await (const part of body) parts.push(part);
    into.set(shardIndex, Buffer.concat(parts));
  };
}

/**
 * Writes the record to every disk that holds a shard; with fewer than `quorum` stored, the
 * records and shards written are removed (best effort: leftovers are older-than-newest
 * garbage the collector removes) and the PUT fails.
 */
export async function commitRecords(
  cluster: Cluster,
  locations: readonly ShardLocation[],
  record: ObjectRecord,
  quorum: number,
  inline?: ReadonlyMap<number, Buffer>,
): Promise<void> {
  const results = await Promise.allSettled(
    locations.map(async (location) => {
      const node = cluster.node(location.nodeId);
      if (node === undefined) throw new TesseraError("ERR_NODE_UNAVAILABLE", `no node ${location.nodeId}`);
      const shard = inline?.get(location.shardIndex);
      await node.putRecord(location.diskId, shard === undefined ? record : { ...record, inline: shard });
    }),
  );
  const stored = locations.filter((_, index) => results[index]?.status === "fulfilled");
  if (stored.length >= quorum) return;
  await Promise.allSettled(stored.map((location) => cluster.node(location.nodeId)?.deleteRecord(location.diskId, record.bucket, record.key, record.versionId)));
  if (inline === undefined && !record.deleteMarker) await deleteShards(cluster, locations, record.objectId, record.versionId);
  const reasons = results.flatMap((result) => (result.status === "rejected" ? [String(result.reason instanceof Error ? result.reason.message : result.reason)] : []));
  throw new TesseraError("ERR_WRITE_QUORUM", `${stored.length} records stored, ${quorum} needed (${reasons.join("; ")})`, { stored: stored.length, quorum });
}

export async function deleteShards(cluster: Cluster, locations: readonly ShardLocation[], objectIdHex: string, versionId: string, partNumber = 0): Promise<void> {
  await Promise.allSettled(
    locations.map((location) =>
      cluster.node(location.nodeId)?.deleteShard(location.diskId, { objectId: objectIdHex, versionId, partNumber, shardIndex: location.shardIndex }),
    ),
  );
}
