/**
 * The storage node's own adapter of the StorageNode interface: shard files and an LMDB
 * record store on each of its local disks (disk.ts, shard-files.ts, record-store.ts). This
 * is what the node process serves over HTTP. A disk that fails is reported and skipped;
 * the node keeps serving its other disks.
 */
import path from "node:path";
import { pino, type Logger } from "pino";
import { TesseraError, requireArgument } from "../core/errors.js";
import { NODE_DISKS_MAX } from "../core/limits.js";
import type {
  BucketRecord,
  DiskHealth,
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
import { DIRECT_IO_MODES, type DirectIoMode } from "./direct-io.js";
import { Disk, type DiskFaultHook, type DiskOperation } from "./disk.js";
import { LeaseTable } from "./lease-table.js";
import { LmdbOrderedStore } from "./lmdb-store.js";
import { normalizeBucket, validateBucketName, validateNameId } from "./record-rules.js";
import { RecordStore } from "./record-store.js";
import { deleteShardFile, readShardFile, writeShardFile } from "./shard-files.js";
import { listLocalShards } from "./shard-list.js";
import { validateDeclaredBytes, validateShardId } from "./shard-verify.js";

export interface LocalDiskOptions {
  readonly id: string;
  /** The disk's directory; created if missing, refused if it holds another disk's marker. */
  readonly path: string;
}

export interface LocalNodeOptions {
  readonly nodeId: string;
  readonly disks: readonly LocalDiskOptions[];
  /** Configured shard capacity per disk (tests); without it, free space comes from statfs. */
  readonly capacityBytes?: number;
  readonly logger?: Logger;
  /** Tests only: fails chosen file-system operations as if the kernel had (see disk.ts). */
  readonly faultInjection?: DiskFaultHook;
  /** Tests only: the disks' monotonic clock in ms (the marker check's TTL, disk.ts). */
  readonly now?: () => number;
  /** Shard files with O_DIRECT where the file system takes it ("auto", the default) or never ("off"). */
  readonly directIo?: DirectIoMode;
}

interface LocalDisk {
  readonly disk: Disk;
  /** Undefined when the disk failed before its records could be opened. */
  readonly records: RecordStore | undefined;
}

function validateOptions(options: LocalNodeOptions): void {
  requireArgument(typeof options === "object" && options !== null, "options", "must be an object");
  validateNameId(options.nodeId, "nodeId");
  requireArgument(Array.isArray(options.disks) && options.disks.length >= 1 && options.disks.length <= NODE_DISKS_MAX, "disks", `must list 1..${NODE_DISKS_MAX} disks`);
  const ids = new Set<string>();
  const paths = new Set<string>();
  options.disks.forEach((disk, at) => {
    validateNameId(disk.id, `disks[${at}].id`);
    requireArgument(!ids.has(disk.id), `disks[${at}].id`, `${disk.id} is listed twice`);
    requireArgument(typeof disk.path === "string" && disk.path.length > 0, `disks[${at}].path`, "must be a non-empty path");
    const resolved = path.resolve(disk.path);
    requireArgument(!paths.has(resolved), `disks[${at}].path`, `${resolved} is used by another disk`);
    ids.add(disk.id);
    paths.add(resolved);
  });
  const capacity = options.capacityBytes;
  requireArgument(capacity === undefined || (Number.isSafeInteger(capacity) && capacity > 0), "capacityBytes", `must be a positive integer, got ${String(capacity)}`);
  requireArgument(options.directIo === undefined || DIRECT_IO_MODES.includes(options.directIo), "directIo", `must be one of ${DIRECT_IO_MODES.join(", ")}, got ${String(options.directIo)}`);
}

async function openDisk(options: LocalNodeOptions, disk: LocalDiskOptions, logger: Logger): Promise<LocalDisk> {
  const opened = new Disk({ id: disk.id, root: disk.path, logger, ...(options.capacityBytes === undefined ? {} : { capacityBytes: options.capacityBytes }), ...(options.faultInjection === undefined ? {} : { faultInjection: options.faultInjection }), ...(options.now === undefined ? {} : { now: options.now }), ...(options.directIo === undefined ? {} : { directIo: options.directIo }) });
  await opened.initialize();
  await opened.scanShards();
  if (opened.state === "failed") return { disk: opened, records: undefined };
  try {
    return { disk: opened, records: new RecordStore(LmdbOrderedStore.open(opened.recordsDir)) };
  } catch (error) {
    opened.markFailed(`cannot open records: ${error instanceof Error ? error.message : String(error)}`);
    return { disk: opened, records: undefined };
  }
}

export class LocalNode implements StorageNode {
  readonly nodeId: string;
  readonly #disks: ReadonlyMap<string, LocalDisk>;
  readonly #writes = new Set<AbortController>();
  readonly #pending = new Set<Promise<unknown>>();
  /** Conditional-write leases per disk id, in memory (storage-node/lease-table.ts). */
  readonly #leases = new Map<string, LeaseTable>();
  #closed = false;

  private constructor(nodeId: string, disks: ReadonlyMap<string, LocalDisk>) {
    this.nodeId = nodeId;
    this.#disks = disks;
  }

  /** Opens every disk (a broken one is marked failed, not fatal) and empties their tmp/. */
  static async open(options: LocalNodeOptions): Promise<LocalNode> {
    validateOptions(options);
    const logger = (options.logger ?? pino({ level: "silent" })).child({ nodeId: options.nodeId });
    const opened = await Promise.all(options.disks.map((disk) => openDisk(options, disk, logger)));
    return new LocalNode(options.nodeId, new Map(opened.map((local) => [local.disk.id, local])));
  }

  #requireOpen(): void {
    if (this.#closed) throw new TesseraError("ERR_NODE_UNAVAILABLE", `node ${this.nodeId} is closed`, { nodeId: this.nodeId });
  }

  #disk(diskId: string): LocalDisk {
    this.#requireOpen();
    validateNameId(diskId, "diskId");
    const found = this.#disks.get(diskId);
    if (found === undefined) {
      throw new TesseraError("ERR_NOT_FOUND", `node ${this.nodeId} has no disk ${diskId} (its disks: ${[...this.#disks.keys()].join(", ")})`, { nodeId: this.nodeId, diskId });
    }
    return found;
  }

  /** Tracks an operation so close() can wait for it before closing LMDB. */
  async #track<T>(operation: () => Promise<T>): Promise<T> {
    const promise = operation();
    this.#pending.add(promise);
    try {
      return await promise;
    } finally {
      this.#pending.delete(promise);
    }
  }

  async #records<T>(local: LocalDisk, operation: DiskOperation, action: (records: RecordStore) => T | Promise<T>): Promise<T> {
    return this.#track(async () => {
      local.disk.requireUsable();
      if (operation === "record-write") await local.disk.requireWritable();
      const { records } = local;
      if (records === undefined) throw new TesseraError("ERR_DISK_FAILED", `disk ${local.disk.id} has no record store`, { diskId: local.disk.id });
      return local.disk.io(operation, local.disk.recordsDir, async () => action(records));
    });
  }

  async writeShard(diskId: string, shard: ShardId, body: AsyncIterable<Buffer>, declaredBytes: number): Promise<void> {
    const { disk } = this.#disk(diskId);
    validateShardId(shard);
    validateDeclaredBytes(declaredBytes);
    const controller = new AbortController();
    this.#writes.add(controller);
    try {
      await this.#track(() => writeShardFile(disk, shard, body, declaredBytes, controller.signal));
    } catch (error) {
      if (controller.signal.aborted) throw new TesseraError("ERR_NODE_UNAVAILABLE", `node ${this.nodeId} closed during the write; nothing was committed`, { nodeId: this.nodeId }, { cause: error });
      throw error;
    } finally {
      this.#writes.delete(controller);
    }
  }

  async *readShard(diskId: string, shard: ShardId, range?: StripeRange): AsyncGenerator<Buffer> {
    const { disk } = this.#disk(diskId);
    yield* readShardFile(disk, shard, range);
  }

  async deleteShard(diskId: string, shard: ShardId): Promise<boolean> {
    const { disk } = this.#disk(diskId);
    validateShardId(shard);
    return this.#track(() => deleteShardFile(disk, shard));
  }

  async listShards(diskId: string, query: ShardListQuery): Promise<ShardListPage> {
    const { disk } = this.#disk(diskId);
    return this.#track(() => listLocalShards(disk, query));
  }

  async putRecord(diskId: string, record: ObjectRecord, fence?: LeaseFence): Promise<PutRecordReply> {
    const local = this.#disk(diskId);
    const write = (): Promise<PutRecordReply> => this.#records(local, "record-write", (records) => records.putRecord(record));
    if (fence === undefined) return write();
    return this.#leaseTable(local).fenced(record.bucket, record.key, fence, write);
  }

  #leaseTable(local: LocalDisk): LeaseTable {
    local.disk.requireUsable();
    let table = this.#leases.get(local.disk.id);
    if (table === undefined) {
      table = new LeaseTable();
      this.#leases.set(local.disk.id, table);
    }
    return table;
  }

  async acquireLease(diskId: string, request: LeaseRequest): Promise<LeaseGrant> {
    return this.#leaseTable(this.#disk(diskId)).acquire(request);
  }

  async releaseLease(diskId: string, bucket: string, key: string, fence: LeaseFence): Promise<boolean> {
    return this.#leaseTable(this.#disk(diskId)).release(bucket, key, fence);
  }

  async getRecords(diskId: string, bucket: string, key: string): Promise<ObjectRecord[]> {
    return this.#records(this.#disk(diskId), "record-read", (records) => records.getRecords(bucket, key));
  }

  /** getRecords as each record's wire JSON text, unparsed (RecordStore.getRecordsJson). */
  async getRecordsJson(diskId: string, bucket: string, key: string): Promise<string[]> {
    return this.#records(this.#disk(diskId), "record-read", (records) => records.getRecordsJson(bucket, key));
  }

  async deleteRecord(diskId: string, bucket: string, key: string, versionId: HexId): Promise<boolean> {
    return this.#records(this.#disk(diskId), "record-write", (records) => records.deleteRecord(bucket, key, versionId));
  }

  async listRecords(diskId: string, options: ListRecordsOptions): Promise<ListRecordsPage> {
    return this.#records(this.#disk(diskId), "record-read", (records) => records.listRecords(options));
  }

  async listRecordsByPlacement(diskId: string, query: PlacementQuery): Promise<PlacementPage> {
    return this.#records(this.#disk(diskId), "record-read", (records) => records.listByPlacement(query));
  }

  /** Usable disks in configuration order; ERR_DISK_FAILED when there is none. */
  #healthyDisks(): LocalDisk[] {
    this.#requireOpen();
    const healthy = [...this.#disks.values()].filter((local) => local.disk.state !== "failed");
    if (healthy.length === 0) throw new TesseraError("ERR_DISK_FAILED", `node ${this.nodeId} has no healthy disk`, { nodeId: this.nodeId });
    return healthy;
  }

  /** Written to every healthy disk; succeeds if at least one stored it. */
  async putBucket(bucket: BucketRecord): Promise<void> {
    const normalized = normalizeBucket(bucket);
    const results = await Promise.allSettled(this.#healthyDisks().map((local) => this.#records(local, "record-write", (records) => records.putBucket(normalized))));
    if (!results.some((result) => result.status === "fulfilled")) throw firstRejection(results);
  }

  async getBucket(name: string): Promise<BucketRecord | undefined> {
    validateBucketName(name, "name");
    return this.#onFirstHealthy((records) => records.getBucket(name));
  }

  async deleteBucket(name: string): Promise<boolean> {
    validateBucketName(name, "name");
    const results = await Promise.allSettled(this.#healthyDisks().map((local) => this.#records(local, "record-write", (records) => records.deleteBucket(name))));
    if (!results.some((result) => result.status === "fulfilled")) throw firstRejection(results);
    return results.some((result) => result.status === "fulfilled" && result.value);
  }

  async listBuckets(): Promise<BucketRecord[]> {
    return this.#onFirstHealthy((records) => records.listBuckets());
  }

  /** Reads from the first healthy disk, falling over to the next if that one fails now. */
  async #onFirstHealthy<T>(read: (records: RecordStore) => T): Promise<T> {
    let lastError: unknown;
    for (const local of this.#healthyDisks()) {
      try {
        return await this.#records(local, "record-read", read);
      } catch (error) {
        if (!(error instanceof TesseraError && error.code === "ERR_DISK_FAILED")) throw error;
        lastError = error;
      }
    }
    throw lastError;
  }

  async health(): Promise<NodeHealth> {
    this.#requireOpen();
    const disks = await Promise.all([...this.#disks.values()].map((local) => diskHealth(local)));
    return { nodeId: this.nodeId, disks };
  }

  /**
   * Aborts in-flight shard writes (their temp files are removed; nothing partial is
   * committed), waits for every pending operation, then closes each disk's LMDB.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const controller of this.#writes) controller.abort();
    await Promise.allSettled([...this.#pending]);
    await Promise.allSettled([...this.#disks.values()].map((local) => local.records?.close()));
  }
}

async function diskHealth(local: LocalDisk): Promise<DiskHealth> {
  const { disk } = local;
  await disk.probe();
  const space = await disk.space();
  let recordCount = 0;
  try {
    recordCount = local.records?.recordCount() ?? 0;
  } catch {
    // A failed disk may not answer; its count is unknown and reported as 0.
  }
  return {
    diskId: disk.id,
    state: disk.state,
    ...(disk.reason === undefined ? {} : { reason: disk.reason }),
    freeBytes: space.freeBytes,
    usedBytes: space.usedBytes,
    shardCount: disk.shardCount,
    recordCount,
  };
}

function firstRejection(results: readonly PromiseSettledResult<unknown>[]): unknown {
  const rejected = results.find((result): result is PromiseRejectedResult => result.status === "rejected");
  return rejected?.reason;
}
