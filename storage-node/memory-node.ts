/**
 * A StorageNode held in memory, for fast seeded tests of the gateway and healer. Same
 * semantics as the local node, by sharing its code: shard bodies go through the same checks
 * (shard-verify.ts), reads release only verified bytes, and records use the same record
 * store over a sorted array instead of LMDB. Test hooks: failDisk, corruptShard.
 */
import { TesseraError, requireArgument } from "../core/errors.js";
import type {
  BucketRecord,
  HexId,
  LeaseFence,
  LeaseGrant,
  LeaseRequest,
  ListRecordsOptions,
  ListRecordsPage,
  NodeHealth,
  ObjectRecord,
  PlacementPage,
  PlacementQuery,
  PutRecordReply,
  ShardId,
  ShardListPage,
  ShardListQuery,
  StorageNode,
  StripeRange,
} from "../core/storage-api.js";
import { LeaseTable } from "./lease-table.js";
import { MemoryOrderedStore } from "./ordered-store.js";
import { normalizeBucket, validateBucketName, validateNameId } from "./record-rules.js";
import { RecordStore } from "./record-store.js";
import { SHARD_READ_BYTES, shardNotFound } from "./shard-files.js";
import { listParams, pageOf } from "./shard-list.js";
import { readVerifiedShard, receiveShard, validateDeclaredBytes, validateShardId, type ShardSource } from "./shard-verify.js";

/** Nominal capacity of a memory disk when none is configured: large enough never to bind. */
const MEMORY_CAPACITY_BYTES_DEFAULT = 2 ** 40;

export interface MemoryNodeOptions {
  readonly nodeId: string;
  readonly diskIds: readonly string[];
  /** Shard bytes each disk holds before refusing writes with ERR_INSUFFICIENT_STORAGE. */
  readonly capacityBytes?: number;
}

class MemoryDisk {
  readonly shards = new Map<string, Buffer>();
  /** When each shard was committed (listShards reports it). */
  readonly committedAt = new Map<string, number>();
  readonly records = new RecordStore(new MemoryOrderedStore());
  readonly leases = new LeaseTable();
  failedReason: string | undefined;
  fullReason: string | undefined;
  usedBytes = 0;
  reservedBytes = 0;

  constructor(
    readonly id: string,
    readonly capacityBytes: number,
  ) {}

  requireUsable(): void {
    if (this.failedReason !== undefined) throw new TesseraError("ERR_DISK_FAILED", `disk ${this.id} is failed: ${this.failedReason}`, { diskId: this.id });
  }

  reserve(bytes: number): () => void {
    const freeBytes = this.capacityBytes - this.usedBytes - this.reservedBytes;
    if (bytes > freeBytes) {
      this.fullReason = `a ${bytes}-byte shard did not fit in ${freeBytes} free bytes`;
      throw new TesseraError("ERR_INSUFFICIENT_STORAGE", `disk ${this.id} has no room for ${bytes} bytes (${freeBytes} free); nothing was committed`, { diskId: this.id, freeBytes });
    }
    this.reservedBytes += bytes;
    return () => {
      this.reservedBytes -= bytes;
    };
  }
}

function shardKey(shard: ShardId): string {
  return `${shard.objectId}/${shard.versionId}.${shard.partNumber}.${shard.shardIndex}`;
}

/** Serves a stored buffer in pieces, as a file would be read. */
function bufferSource(bytes: Buffer): ShardSource {
  return {
    size: async () => bytes.length,
    async *read(start, end) {
      for (let at = start; at < end; at += SHARD_READ_BYTES) yield bytes.subarray(at, Math.min(end, at + SHARD_READ_BYTES));
    },
  };
}

export class MemoryNode implements StorageNode {
  readonly nodeId: string;
  readonly #disks: ReadonlyMap<string, MemoryDisk>;

  constructor(options: MemoryNodeOptions) {
    validateNameId(options.nodeId, "nodeId");
    requireArgument(Array.isArray(options.diskIds) && options.diskIds.length >= 1, "diskIds", "must list at least one disk");
    options.diskIds.forEach((id, at) => validateNameId(id, `diskIds[${at}]`));
    requireArgument(new Set(options.diskIds).size === options.diskIds.length, "diskIds", "must be distinct");
    const capacity = options.capacityBytes ?? MEMORY_CAPACITY_BYTES_DEFAULT;
    requireArgument(Number.isSafeInteger(capacity) && capacity > 0, "capacityBytes", `must be a positive integer, got ${capacity}`);
    this.nodeId = options.nodeId;
    this.#disks = new Map(options.diskIds.map((id) => [id, new MemoryDisk(id, capacity)]));
  }

  #disk(diskId: string): MemoryDisk {
    validateNameId(diskId, "diskId");
    const found = this.#disks.get(diskId);
    if (found === undefined) throw new TesseraError("ERR_NOT_FOUND", `node ${this.nodeId} has no disk ${diskId} (its disks: ${[...this.#disks.keys()].join(", ")})`, { nodeId: this.nodeId, diskId });
    return found;
  }

  /** Test hook: the disk fails as a real one would (ERR_DISK_FAILED from now on, reported in health). */
  failDisk(diskId: string, reason = "failed by a test"): void {
    this.#disk(diskId).failedReason = reason;
  }

  /** Test hook: flips the bits of one stored byte (bitrot). Readers already streaming keep the old bytes. */
  corruptShard(diskId: string, shard: ShardId, offset: number): void {
    const disk = this.#disk(diskId);
    const stored = disk.shards.get(shardKey(shard));
    if (stored === undefined) throw shardNotFound(diskId, shard);
    requireArgument(Number.isInteger(offset) && offset >= 0 && offset < stored.length, "offset", `must be inside the shard's ${stored.length} bytes`);
    const copy = Buffer.from(stored);
    copy[offset] = (copy[offset] ?? 0) ^ 0xff;
    disk.shards.set(shardKey(shard), copy);
  }

  async writeShard(diskId: string, shard: ShardId, body: AsyncIterable<Buffer>, declaredBytes: number): Promise<void> {
    const disk = this.#disk(diskId);
    validateShardId(shard);
    validateDeclaredBytes(declaredBytes);
    disk.requireUsable();
    const release = disk.reserve(declaredBytes);
    try {
      const pieces: Buffer[] = [];
      await receiveShard(body, shard, declaredBytes, async (bytes) => void pieces.push(Buffer.from(bytes)));
      const key = shardKey(shard);
      disk.usedBytes += declaredBytes - (disk.shards.get(key)?.length ?? 0);
      disk.shards.set(key, Buffer.concat(pieces));
      disk.committedAt.set(key, Date.now());
      disk.fullReason = undefined;
    } finally {
      release();
    }
  }

  async *readShard(diskId: string, shard: ShardId, range?: StripeRange): AsyncGenerator<Buffer> {
    const disk = this.#disk(diskId);
    validateShardId(shard);
    disk.requireUsable();
    const stored = disk.shards.get(shardKey(shard));
    if (stored === undefined) throw shardNotFound(diskId, shard);
    yield* readVerifiedShard(bufferSource(stored), shard, range);
  }

  async deleteShard(diskId: string, shard: ShardId): Promise<boolean> {
    const disk = this.#disk(diskId);
    validateShardId(shard);
    disk.requireUsable();
    const stored = disk.shards.get(shardKey(shard));
    if (stored === undefined) return false;
    disk.shards.delete(shardKey(shard));
    disk.committedAt.delete(shardKey(shard));
    disk.usedBytes -= stored.length;
    disk.fullReason = undefined;
    return true;
  }

  async listShards(diskId: string, query: ShardListQuery): Promise<ShardListPage> {
    const disk = this.#disk(diskId);
    disk.requireUsable();
    const params = listParams(query);
    return pageOf([...disk.shards.keys()].sort(), params, async (name) => {
      const stored = disk.shards.get(name);
      return stored === undefined ? undefined : { bytes: stored.length, committedAt: disk.committedAt.get(name) ?? 0 };
    });
  }

  #records(diskId: string): RecordStore {
    const disk = this.#disk(diskId);
    disk.requireUsable();
    return disk.records;
  }

  async putRecord(diskId: string, record: ObjectRecord, fence?: LeaseFence): Promise<PutRecordReply> {
    const records = this.#records(diskId);
    if (fence === undefined) return records.putRecord(record);
    return this.#disk(diskId).leases.fenced(record.bucket, record.key, fence, () => records.putRecord(record));
  }

  async acquireLease(diskId: string, request: LeaseRequest): Promise<LeaseGrant> {
    const disk = this.#disk(diskId);
    disk.requireUsable();
    return disk.leases.acquire(request);
  }

  async releaseLease(diskId: string, bucket: string, key: string, fence: LeaseFence): Promise<boolean> {
    const disk = this.#disk(diskId);
    disk.requireUsable();
    return disk.leases.release(bucket, key, fence);
  }

  async getRecords(diskId: string, bucket: string, key: string): Promise<ObjectRecord[]> {
    return this.#records(diskId).getRecords(bucket, key);
  }

  async deleteRecord(diskId: string, bucket: string, key: string, versionId: HexId): Promise<boolean> {
    return this.#records(diskId).deleteRecord(bucket, key, versionId);
  }

  async listRecords(diskId: string, options: ListRecordsOptions): Promise<ListRecordsPage> {
    return this.#records(diskId).listRecords(options);
  }

  async listRecordsByPlacement(diskId: string, query: PlacementQuery): Promise<PlacementPage> {
    return this.#records(diskId).listByPlacement(query);
  }

  #healthy(): MemoryDisk[] {
    const healthy = [...this.#disks.values()].filter((disk) => disk.failedReason === undefined);
    if (healthy.length === 0) throw new TesseraError("ERR_DISK_FAILED", `node ${this.nodeId} has no healthy disk`, { nodeId: this.nodeId });
    return healthy;
  }

  async putBucket(bucket: BucketRecord): Promise<void> {
    const normalized = normalizeBucket(bucket);
    await Promise.all(this.#healthy().map((disk) => disk.records.putBucket(normalized)));
  }

  async getBucket(name: string): Promise<BucketRecord | undefined> {
    validateBucketName(name, "name");
    return this.#healthy()[0]?.records.getBucket(name);
  }

  async deleteBucket(name: string): Promise<boolean> {
    validateBucketName(name, "name");
    const deleted = await Promise.all(this.#healthy().map((disk) => disk.records.deleteBucket(name)));
    return deleted.some(Boolean);
  }

  async listBuckets(): Promise<BucketRecord[]> {
    return this.#healthy()[0]?.records.listBuckets() ?? [];
  }

  async health(): Promise<NodeHealth> {
    const disks = [...this.#disks.values()].map((disk) => {
      const state = disk.failedReason !== undefined ? "failed" : disk.fullReason !== undefined ? "full" : "ok";
      const reason = disk.failedReason ?? disk.fullReason;
      return {
        diskId: disk.id,
        state,
        ...(reason === undefined ? {} : { reason }),
        freeBytes: Math.max(0, disk.capacityBytes - disk.usedBytes - disk.reservedBytes),
        usedBytes: disk.usedBytes,
        shardCount: disk.shards.size,
        recordCount: disk.records.recordCount(),
      } as const;
    });
    return { nodeId: this.nodeId, disks };
  }
}
