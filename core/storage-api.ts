/**
 * The one narrow interface between the gateway (and healer) and stored shards and records,
 * after MinIO's StorageAPI. A `StorageNode` is one storage node with one or more disks.
 * Adapters: storage-node/local-node.ts (files on local disks; what the node process serves),
 * storage-node/memory-node.ts (tests), core/http-node-client.ts (a remote node over the
 * internal HTTP API) and test/faulty-node.ts (fails call N with error E). One contract
 * suite (test/storage-contract.ts) runs against every adapter.
 *
 * Errors are TesseraErrors with these codes: ERR_NOT_FOUND, ERR_INVALID_ARGUMENT,
 * ERR_DISK_FAILED, ERR_INSUFFICIENT_STORAGE, ERR_SHARD_* (from core/shard-format.ts),
 * ERR_VERSION_CONFLICT (a fenced record write whose lease was taken over),
 * ERR_UNAUTHORIZED and ERR_NODE_UNAVAILABLE (HTTP client only).
 */
import type { ChecksumAlgorithm } from "./checksum.js";

/** 32 lowercase hex characters (128 bits). Ids in paths are validated against this. */
export type HexId = string;
export const HEX_ID_PATTERN = /^[0-9a-f]{32}$/;
/** Node and disk ids: short, path-safe names (the cluster map validates the same). */
export const NAME_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/i;

/** Which shard: one shard index of one object version (or of one multipart part). */
export interface ShardId {
  readonly objectId: HexId;
  /** Version id of the object, or the upload-part id of a multipart part. */
  readonly versionId: HexId;
  /** 0 for a plain object; 1..10000 for a multipart part. */
  readonly partNumber: number;
  readonly shardIndex: number;
}

/** A run of stripes of a shard, for range reads. */
export interface StripeRange {
  readonly firstStripe: number;
  readonly stripeCount: number;
}

export interface ReadShardOptions {
  /** Aborting ends the read (the gateway gave up on this shard and uses parity instead). */
  readonly signal?: AbortSignal;
}

export interface ShardLocation {
  readonly shardIndex: number;
  readonly nodeId: string;
  readonly diskId: string;
}

export interface PartRecord {
  readonly partNumber: number;
  /** The shards of this part carry this id as their versionId. */
  readonly partVersionId: HexId;
  readonly size: number;
  readonly etag: string;
  readonly blockBytes: number;
}

/**
 * One version of one object (or a delete marker), as stored on each disk that holds one of
 * its shards. Identity: (bucket, key, versionId). `revision` rises whenever the record is
 * rewritten for the same version (the healer moved a shard): a put never replaces a
 * record with a higher revision, so a stale writer cannot undo a repair.
 */
export interface ObjectRecord {
  readonly bucket: string;
  readonly key: string;
  /** HLC-ordered: compares as strings in time order (see gateway/hlc.ts). */
  readonly versionId: HexId;
  readonly revision: number;
  readonly objectId: HexId;
  readonly deleteMarker: boolean;
  readonly size: number;
  readonly etag: string;
  /** Milliseconds since the epoch. */
  readonly lastModified: number;
  readonly contentType?: string;
  /** x-amz-meta-* without the prefix, keys lowercased. */
  readonly userMetadata: Readonly<Record<string, string>>;
  /** Content-Encoding, Content-Disposition, Cache-Control, Expires, x-amz-checksum-*. */
  readonly systemMetadata: Readonly<Record<string, string>>;
  readonly ec: {
    readonly k: number;
    readonly m: number;
    readonly blockBytes: number;
    readonly checksumAlgorithm: ChecksumAlgorithm;
    /**
     * How many of the version's k + m disks stored its record before it was acknowledged, at
     * least; absent means the erasure-coded default, k + 1 (gateway/objects/put-object.ts,
     * writeQuorum). A reader judges from it whether a version seen on fewer disks may have been
     * acknowledged. Small objects stored as copies (k = 1) are acknowledged only on all 1 + m.
     */
    readonly writeQuorum?: number;
  };
  /** Where each shard index really is; length k + m, inline objects included (empty for delete markers). */
  readonly placement: readonly ShardLocation[];
  /** Multipart parts in order; empty for a plain object. */
  readonly parts: readonly PartRecord[];
  /**
   * Small objects: this disk's whole shard file (header and frames) lives in the record
   * instead of a shard file, so a small PUT is one write per node (base64 over HTTP).
   */
  readonly inline?: Buffer;
}

export type PutRecordResult = "stored" | "unchanged" | "superseded";

/**
 * A record write's answer: what happened to the record, and how many older versions of the
 * same key the disk holds besides it. The gateway collects superseded versions only where
 * some disk reported one, so a PUT of a new key costs no garbage-collection round trip.
 */
export interface PutRecordReply {
  readonly result: PutRecordResult;
  readonly olderVersions: number;
}

export interface ListRecordsOptions {
  readonly bucket: string;
  readonly prefix?: string;
  /** Return keys strictly after this one. */
  readonly startAfter?: string;
  /** At most this many keys; the node clamps to its own maximum. */
  readonly limit: number;
}

export interface ListRecordsPage {
  /** The newest version held on that disk of each key, in key order. */
  readonly records: readonly ObjectRecord[];
  /** Set when more keys follow: pass as startAfter. */
  readonly nextStartAfter?: string;
}

export interface PlacementQuery {
  readonly nodeId: string;
  readonly diskId: string;
  /** Continue after this opaque cursor. */
  readonly cursor?: string;
  readonly limit: number;
}

export interface PlacementPage {
  readonly records: readonly ObjectRecord[];
  readonly nextCursor?: string;
}

/** One committed shard file of a disk, as `listShards` reports it. */
export interface ShardListing {
  readonly shard: ShardId;
  readonly bytes: number;
  /** When the file was last written (committed), in milliseconds since the epoch. */
  readonly committedAt: number;
}

export interface ShardListQuery {
  /** Continue after this opaque cursor. */
  readonly cursor?: string;
  /** At most this many shards; the node clamps to its own maximum. */
  readonly limit: number;
}

export interface ShardListPage {
  readonly shards: readonly ShardListing[];
  readonly nextCursor?: string;
}

export interface BucketRecord {
  readonly name: string;
  /** Milliseconds since the epoch. */
  readonly created: number;
}

/**
 * A lease on one key of one disk: the per-key lock a conditional write (If-None-Match,
 * If-Match) holds on a quorum of the key's disks (docs/conditional-writes.md). `holder` is
 * unique per acquisition, so a grant can never be mistaken for another one.
 */
export interface LeaseRequest {
  readonly bucket: string;
  readonly key: string;
  readonly holder: HexId;
  /** The lease lapses after this long (the node refuses more than its own maximum). */
  readonly ttlMs: number;
}

/** Granted with a fencing token, or refused while another holder's lease runs. */
export type LeaseGrant = { readonly granted: true; readonly token: number } | { readonly granted: false; readonly retryAfterMs: number };

/** What a fenced record write proves: the grant it was made under. */
export interface LeaseFence {
  readonly holder: HexId;
  readonly token: number;
}

export type DiskState = "ok" | "failed" | "full";

export interface DiskHealth {
  readonly diskId: string;
  readonly state: DiskState;
  readonly reason?: string;
  readonly freeBytes: number;
  readonly usedBytes: number;
  readonly shardCount: number;
  readonly recordCount: number;
}

export interface NodeHealth {
  readonly nodeId: string;
  readonly disks: readonly DiskHealth[];
}

export interface StorageNode {
  readonly nodeId: string;
  /**
   * A transport's hint (HttpNodeClient): true while the node recently refused a connection,
   * so nothing listens on its port (stopped or restarting). Reads ask such a node last.
   */
  refusing?(): boolean;

  /**
   * Stores one shard from a stream of shard-file bytes (header then frames, exactly
   * `declaredBytes`). Verified as it arrives; committed atomically (temporary file, fsync,
   * rename, directory fsync) before the promise resolves. Nothing partial is ever visible.
   */
  writeShard(diskId: string, shard: ShardId, body: AsyncIterable<Buffer>, declaredBytes: number): Promise<void>;
  /**
   * Streams a whole shard file, or, with `range`, only those frames (no header). Every chunk
   * is verified before it is sent; a corrupt one ends the stream with ERR_SHARD_CHECKSUM.
   */
  readShard(diskId: string, shard: ShardId, range?: StripeRange, options?: ReadShardOptions): AsyncIterable<Buffer>;
  /** Idempotent: true if something was deleted. */
  deleteShard(diskId: string, shard: ShardId): Promise<boolean>;
  /**
   * Every committed shard file of the disk, in a stable order, a page at a time: the healer's
   * sweep for shards no record names (a gateway that died between a shard and its record).
   */
  listShards(diskId: string, query: ShardListQuery): Promise<ShardListPage>;

  /**
   * With `fence`, the write is accepted only while that grant is still the disk's current
   * lease on (record.bucket, record.key) (a later grant to anyone refuses it with
   * ERR_VERSION_CONFLICT, details.kind "fenced"), and no new lease is granted on the key
   * until the write is done.
   */
  putRecord(diskId: string, record: ObjectRecord, fence?: LeaseFence): Promise<PutRecordReply>;
  /** Every version of one key held on that disk, newest first. */
  getRecords(diskId: string, bucket: string, key: string): Promise<ObjectRecord[]>;
  deleteRecord(diskId: string, bucket: string, key: string, versionId: HexId): Promise<boolean>;
  listRecords(diskId: string, options: ListRecordsOptions): Promise<ListRecordsPage>;
  /** Every record held on `diskId` that places a shard on the queried node/disk. */
  listRecordsByPlacement(diskId: string, query: PlacementQuery): Promise<PlacementPage>;

  /** Grants the lease if no other holder's lease on the key runs; never waits. */
  acquireLease(diskId: string, request: LeaseRequest): Promise<LeaseGrant>;
  /** Ends the lease if `fence` is still its grant; true if it did. */
  releaseLease(diskId: string, bucket: string, key: string, fence: LeaseFence): Promise<boolean>;

  /** Bucket records live on every disk of the node; reads take the first healthy one. */
  putBucket(bucket: BucketRecord): Promise<void>;
  getBucket(name: string): Promise<BucketRecord | undefined>;
  deleteBucket(name: string): Promise<boolean>;
  listBuckets(): Promise<BucketRecord[]>;

  health(): Promise<NodeHealth>;
}
