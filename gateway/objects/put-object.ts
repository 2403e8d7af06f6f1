/**
 * PUT of one object version (DESIGN.md, "Data path" and "Commit"): encode and stream the
 * shards to their disks, let the caller check digests, then commit by writing the version
 * record to each shard's disk. The PUT succeeds only when the write quorum of records is
 * stored; otherwise what was written is removed and the error says why.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { CHECKSUM_ALGORITHM_DEFAULT, writeChecksum } from "../../core/checksum.js";
import { ErasureCodec } from "../../core/codec.js";
import { readableChunks } from "../../core/readable-chunks.js";
import { assert } from "../../core/assert.js";
import { TesseraError, isTesseraError } from "../../core/errors.js";
import { chooseBlockBytes, encodeShardHeader, frameOffset, shardLayout } from "../../core/shard-format.js";
import type { LeaseFence, ObjectRecord, ShardId, ShardLocation } from "../../core/storage-api.js";
import { encodeObject, lengthError, type EncodeParams, type ShardSink } from "../erasure/encode.js";
import type { Cluster, ObjectPlacement } from "./cluster.js";
import { OffloadedMd5 } from "./md5-offload.js";
import { INLINE_OBJECT_BYTES_MAX } from "./small-objects.js";

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
  /**
   * Store the object as 1 + m copies (small-objects.ts; ObjectStore.put decides) and,
   * when they cannot all be stored, erasure-coded under this fresh version id instead (newer
   * than `versionId`, so any copy left behind by the failed attempt is an older version).
   */
  readonly copies?: { readonly fallbackVersionId: () => string };
}

export interface PutObjectResult {
  readonly record: ObjectRecord;
  /** Older versions of the key remain on some disk (superseded: garbage to collect). */
  readonly olderVersions: boolean;
  /** Shard indexes that could not be written: the object is queued for repair. */
  readonly missingShards: readonly number[];
}

/**
 * Stores `record` on the disks that hold its committed shards (with this disk's inline shard
 * when the object is inline), or throws; the default is commitRecords at the write quorum.
 * Conditional writes pass a fenced commit (gateway/objects/conditional-commit.ts).
 */
export type RecordCommit = (locations: readonly ShardLocation[], record: ObjectRecord, inline?: ReadonlyMap<number, Buffer>) => Promise<CommitReport>;

/** What the disks said while storing a record. */
export interface CommitReport {
  /** Some disk that stored the record also holds an older version of the key: collect it. */
  readonly olderVersions: boolean;
  /** Shard indexes whose record could not be stored (the quorum was met without them): repair them. */
  readonly missingShards: readonly number[];
}

/** Records a k + m erasure-coded version needs stored before it is acknowledged: k + 1. */
export function writeQuorum(k: number, m: number): number {
  return Math.min(k + m, k + 1);
}

/**
 * Records a copies version (k = 1) needs: every one of its 1 + m. With fewer (say 2 of 3),
 * the m disks holding it could be down while the others answer with an older version, which
 * a reader would then serve as the newest; with all of them, any m down leave one copy to
 * show it. A copies write that cannot reach them all is written erasure-coded instead
 * (putCopies).
 */
export function copiesQuorum(m: number): number {
  return 1 + m;
}

/** The write quorum a record's version was stored under (ObjectRecord.ec.writeQuorum). */
export function recordQuorum(ec: ObjectRecord["ec"]): number {
  return ec.writeQuorum ?? writeQuorum(ec.k, ec.m);
}

export function defaultCommit(cluster: Cluster): RecordCommit {
  return (locations, record, inline) => commitRecords(cluster, locations, record, recordQuorum(record.ec), inline === undefined ? {} : { inline });
}

export interface EncodeShardsInput {
  readonly body: AsyncIterable<Buffer>;
  readonly length: number;
  /** The version id of a plain object, or the part's own id for a multipart part. */
  readonly versionId: string;
  /** 0 for a plain object, 1..10000 for a part. */
  readonly partNumber: number;
  /** Keep the shards in memory for the records (small plain objects) instead of shard files. */
  readonly inline: boolean;
  readonly observe?: (piece: Buffer) => void;
}

export interface EncodedShards {
  /** MD5 of the body: the ETag of a plain object or of a part. */
  readonly digest: Buffer;
  readonly blockBytes: number;
  /** Where shards were committed (at least the write quorum of them). */
  readonly committed: readonly ShardLocation[];
  readonly missingShards: readonly number[];
  readonly inline?: ReadonlyMap<number, Buffer>;
}

/** Streams the body through the erasure encoder onto the placement's disks (or into memory). */
export async function encodeShards(cluster: Cluster, placement: ObjectPlacement, input: EncodeShardsInput): Promise<EncodedShards> {
  const { k, m } = cluster.map.ec;
  const params = encodeParams(cluster, placement, input.length, input.versionId, input.partNumber, k);
  assert(!input.inline || input.partNumber === 0, "parts are never inline: a completed object's record lists them");
  if (input.inline) {
    const { digest, inline } = await encodeInline(params, input.body, input.observe);
    return { digest, blockBytes: params.blockBytes, committed: placement.locations, missingShards: [], inline };
  }
  const sink = shardSink(cluster, placement, input.versionId, input.partNumber);
  // MD5 in a worker thread: the event loop's dearest step otherwise (md5-offload.ts).
  const md5 = new OffloadedMd5();
  let encoded: Awaited<ReturnType<typeof encodeObject>>;
  try {
    encoded = await encodeObject(input.body, params, sink, {
      writeQuorum: writeQuorum(k, m),
      observe: (piece) => {
        input.observe?.(piece);
        return md5.update(piece);
      },
    });
  } catch (error) {
    md5.drop();
    throw error;
  }
  const committed = placement.locations.filter((location) => encoded.shardErrors[location.shardIndex] === undefined);
  const missingShards = placement.locations.filter((location) => !committed.includes(location)).map((location) => location.shardIndex);
  return { digest: await md5.digest(), blockBytes: params.blockBytes, committed, missingShards };
}

/** How `length` bytes of the placement's object are encoded under the map's m and a code of `k` data chunks. */
function encodeParams(cluster: Cluster, placement: ObjectPlacement, length: number, versionId: string, partNumber: number, k: number): EncodeParams {
  const { m, blockSize } = cluster.map.ec;
  return {
    checksumAlgorithm: CHECKSUM_ALGORITHM_DEFAULT,
    k,
    m,
    blockBytes: chooseBlockBytes(length, k, blockSize),
    partNumber,
    objectLength: length,
    objectId: placement.objectId,
    versionId: Buffer.from(versionId, "hex"),
  };
}

/**
 * A small object's shards, built in memory in one pass: the body gathered whole (it is at
 * most INLINE_OBJECT_BYTES_MAX), hashed here (a worker round trip costs more than MD5 of a
 * few KiB), encoded, and laid out as the shard format's header and frames, byte for byte
 * what encodeObject writes (test/gateway/put-inline.test.ts). None of encodeObject's
 * streaming machinery (shard channels, writers, the stripe budget) has anything to do here.
 * A body longer or shorter than declared is refused with encodeObject's error.
 */
export async function encodeInline(params: EncodeParams, body: AsyncIterable<Buffer>, observe?: (piece: Buffer) => void): Promise<{ digest: Buffer; inline: Map<number, Buffer>; data: Buffer }> {
  assert(params.objectLength <= INLINE_OBJECT_BYTES_MAX, "only small objects are encoded whole in memory");
  // Zeroed past the body: the last stripe's padding (inlineShards encodes it in place).
  const data = Buffer.alloc(paddedBytes(params));
  const md5 = createHash("md5");
  let received = 0;
  for await (const piece of body instanceof Readable ? readableChunks(body) : body) {
    if (received + piece.length > params.objectLength) throw lengthError(params.objectLength, "more than");
    observe?.(piece);
    md5.update(piece);
    piece.copy(data, received);
    received += piece.length;
  }
  if (received < params.objectLength) throw lengthError(params.objectLength, `only ${received} of`);
  return { digest: md5.digest(), inline: await inlineShards(params, data), data: data.subarray(0, params.objectLength) };
}

/** The object's whole stripes: its bytes and the zeros that pad its last stripe. */
function paddedBytes(params: EncodeParams): number {
  return shardLayout({ ...params, shardIndex: 0 }).stripeCount * params.blockBytes;
}

/**
 * The k + m inline shards (header and frames) of a small object's body: `body` is its bytes,
 * and may go on with zeros up to its last stripe's end (encodeInline's buffer), else it is
 * copied into such a buffer first.
 */
export async function inlineShards(params: EncodeParams, body: Buffer): Promise<Map<number, Buffer>> {
  assert(params.objectLength <= INLINE_OBJECT_BYTES_MAX && body.length >= params.objectLength, "a small object's whole body");
  const layout = shardLayout({ ...params, shardIndex: 0 });
  const padded = paddedBytes(params);
  const data = body.length === padded ? body : Buffer.alloc(padded);
  if (data !== body) body.copy(data, 0, 0, params.objectLength);
  const codec = new ErasureCodec({ k: params.k, m: params.m });
  const shards = Array.from({ length: params.k + params.m }, (_, shardIndex) => {
    const shard = Buffer.allocUnsafe(layout.fileBytes);
    encodeShardHeader({ ...params, shardIndex }).copy(shard, 0);
    return shard;
  });
  for (let stripe = 0; stripe < layout.stripeCount; stripe++) {
    const stripeBytes = data.subarray(stripe * params.blockBytes, (stripe + 1) * params.blockBytes);
    const parity = params.m === 0 ? Buffer.alloc(0) : await codec.encodeStripe(stripeBytes);
    const at = frameOffset(layout, stripe);
    shards.forEach((shard, shardIndex) => {
      const chunk = shardIndex < params.k ? stripeBytes : parity;
      const from = (shardIndex < params.k ? shardIndex : shardIndex - params.k) * layout.chunkBytes;
      chunk.copy(shard, at, from, from + layout.chunkBytes);
      writeChecksum(params.checksumAlgorithm, shard.subarray(at, at + layout.chunkBytes), shard, at + layout.chunkBytes);
    });
  }
  return new Map(shards.map((shard, shardIndex) => [shardIndex, shard]));
}

/** Removes the shards of a write that will not be committed (nothing to do for inline ones). */
export async function discardShards(cluster: Cluster, placement: ObjectPlacement, encoded: EncodedShards, versionId: string, partNumber: number): Promise<void> {
  if (encoded.inline === undefined) await deleteShards(cluster, encoded.committed, placement.objectIdHex, versionId, partNumber);
}

export async function putObject(cluster: Cluster, placement: ObjectPlacement, input: PutObjectInput, commit: RecordCommit = defaultCommit(cluster)): Promise<PutObjectResult> {
  if (input.copies !== undefined) return putCopies(cluster, placement, input, input.copies.fallbackVersionId, commit);
  const { k, m } = cluster.map.ec;
  const encoded = await encodeShards(cluster, placement, { ...input, partNumber: 0, inline: input.length <= INLINE_OBJECT_BYTES_MAX });
  try {
    const lateMetadata = (await input.finalize?.(encoded.digest)) ?? {};
    const record = objectRecord(input, placement, encoded.digest, lateMetadata, { k, m, blockBytes: encoded.blockBytes, checksumAlgorithm: CHECKSUM_ALGORITHM_DEFAULT });
    const report = await commit(encoded.committed, record, encoded.inline);
    // Disjoint: a shard that was not written is not among the disks whose record was written.
    return { record, missingShards: [...encoded.missingShards, ...report.missingShards].sort((a, b) => a - b), olderVersions: report.olderVersions };
  } catch (error) {
    await discardShards(cluster, placement, encoded, input.versionId, 0);
    throw error;
  }
}

/**
 * A small object as 1 + m copies in the records of the placement's first 1 + m disks, all of
 * which must store it (copiesQuorum). When they do not (a node down or failing), the same
 * bytes are stored k + m erasure-coded under a fresh, newer version id: the copies written are
 * removed by commitRecords, and any left behind is an older version, never served as newest.
 * (Conditional writes, the fenced ones, are never copies: ObjectStore.put.)
 */
async function putCopies(cluster: Cluster, placement: ObjectPlacement, input: PutObjectInput, fallbackVersionId: () => string, commit: RecordCommit): Promise<PutObjectResult> {
  const { k, m } = cluster.map.ec;
  assert(input.length <= INLINE_OBJECT_BYTES_MAX, "only small objects are stored as copies: in their records");
  const asCopies = encodeParams(cluster, placement, input.length, input.versionId, 0, 1);
  const { digest, inline, data } = await encodeInline(asCopies, input.body, input.observe);
  const lateMetadata = (await input.finalize?.(digest)) ?? {};
  const copies = placement.locations.slice(0, 1 + m);
  const record = objectRecord(input, placement, digest, lateMetadata, { k: 1, m, blockBytes: asCopies.blockBytes, checksumAlgorithm: CHECKSUM_ALGORITHM_DEFAULT, writeQuorum: copiesQuorum(m) }, copies);
  try {
    const report = await commit(copies, record, inline);
    return { record, missingShards: report.missingShards, olderVersions: report.olderVersions };
  } catch (error) {
    if (!isTesseraError(error, "ERR_WRITE_QUORUM")) throw error;
  }
  const versionId = fallbackVersionId();
  const coded = encodeParams(cluster, placement, input.length, versionId, 0, k);
  const shards = await inlineShards(coded, data);
  const fallback = objectRecord({ ...input, versionId }, placement, digest, lateMetadata, { k, m, blockBytes: coded.blockBytes, checksumAlgorithm: CHECKSUM_ALGORITHM_DEFAULT });
  const report = await commit(placement.locations, fallback, shards);
  return { record: fallback, missingShards: report.missingShards, olderVersions: report.olderVersions };
}

function objectRecord(input: PutObjectInput, placement: ObjectPlacement, digest: Buffer, lateMetadata: Readonly<Record<string, string>>, ec: ObjectRecord["ec"], locations = placement.locations): ObjectRecord {
  return {
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
    ec,
    placement: locations,
    parts: [],
  };
}

function shardSink(cluster: Cluster, placement: ObjectPlacement, versionId: string, partNumber: number): ShardSink {
  return async (shardIndex, body, declaredBytes) => {
    const location = placement.locations[shardIndex];
    const node = location === undefined ? undefined : cluster.node(location.nodeId);
    if (location === undefined || node === undefined) throw new TesseraError("ERR_NODE_UNAVAILABLE", `no node for shard ${shardIndex}`);
    const shard: ShardId = { objectId: placement.objectIdHex, versionId, partNumber, shardIndex };
    await node.writeShard(location.diskId, shard, body, declaredBytes);
  };
}

export interface CommitOptions {
  /** Per shard index: that disk's whole shard, stored inside its record (small objects). */
  readonly inline?: ReadonlyMap<number, Buffer>;
  /** A fenced commit: each disk's lease grant by "node/disk"; a disk without one is not written. */
  readonly fences?: ReadonlyMap<string, LeaseFence>;
}

export function diskKey(location: Pick<ShardLocation, "nodeId" | "diskId">): string {
  return `${location.nodeId}/${location.diskId}`;
}

/**
 * Writes the record to every disk that holds a shard; with fewer than `quorum` stored, the
 * records written are removed (best effort: leftovers are older-than-newest garbage the
 * collector removes) and the commit fails. Shards are the caller's to remove.
 */
export async function commitRecords(cluster: Cluster, locations: readonly ShardLocation[], record: ObjectRecord, quorum: number, options: CommitOptions = {}): Promise<CommitReport> {
  const results = await Promise.allSettled(
    locations.map(async (location) => {
      const node = cluster.node(location.nodeId);
      if (node === undefined) throw new TesseraError("ERR_NODE_UNAVAILABLE", `no node ${location.nodeId}`);
      const shard = options.inline?.get(location.shardIndex);
      const stored = shard === undefined ? record : { ...record, inline: shard };
      if (options.fences === undefined) return node.putRecord(location.diskId, stored);
      const fence = options.fences.get(diskKey(location));
      if (fence === undefined) throw new TesseraError("ERR_VERSION_CONFLICT", `no lease held on ${diskKey(location)}`, { kind: "fenced" });
      return node.putRecord(location.diskId, stored, fence);
    }),
  );
  const stored = locations.filter((_, index) => results[index]?.status === "fulfilled");
  if (stored.length >= quorum) {
    return {
      olderVersions: results.some((result) => result.status === "fulfilled" && result.value.olderVersions > 0),
      missingShards: locations.filter((_, index) => results[index]?.status !== "fulfilled").map((location) => location.shardIndex),
    };
  }
  await Promise.allSettled(stored.map((location) => cluster.node(location.nodeId)?.deleteRecord(location.diskId, record.bucket, record.key, record.versionId)));
  const reasons = results.flatMap((result) => (result.status === "rejected" ? [String(result.reason instanceof Error ? result.reason.message : result.reason)] : []));
  const fenced = results.some((result) => result.status === "rejected" && isTesseraError(result.reason, "ERR_VERSION_CONFLICT"));
  throw new TesseraError("ERR_WRITE_QUORUM", `${stored.length} records stored, ${quorum} needed (${reasons.join("; ")})`, { stored: stored.length, quorum, fenced });
}

export async function deleteShards(cluster: Cluster, locations: readonly ShardLocation[], objectIdHex: string, versionId: string, partNumber = 0): Promise<void> {
  await Promise.allSettled(
    locations.map((location) =>
      cluster.node(location.nodeId)?.deleteShard(location.diskId, { objectId: objectIdHex, versionId, partNumber, shardIndex: location.shardIndex }),
    ),
  );
}
