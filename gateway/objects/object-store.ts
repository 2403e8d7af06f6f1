/**
 * The gateway's object layer: buckets, PUT, GET, HEAD, DELETE and listing over erasure-coded
 * shards on storage nodes. It knows nothing of HTTP or S3 XML (gateway/s3 does) and
 * throws TesseraErrors, which gateway/s3/errors.ts translates to S3 errors in one place.
 */
import { TesseraError, isTesseraError, requireArgument } from "../../core/errors.js";
import type { BucketRecord, ObjectRecord, ShardLocation, StorageNode } from "../../core/storage-api.js";
import { HybridClock, decodeVersionId } from "../hlc.js";
import type { Cluster } from "./cluster.js";
import { conditionalCommit, hasCondition, type WriteCondition } from "./conditional-commit.js";
import { isInline, readObject, type ReadObjectOptions } from "./get-object.js";
import { listObjects, type ListObjectsInput, type ListObjectsPage } from "./list-objects.js";
import { MultipartUploads } from "./multipart.js";
import { commitRecords, deleteShards, putObject, writeQuorum, type PutObjectInput, type PutObjectResult } from "./put-object.js";
import { INLINE_OBJECT_BYTES_MAX, SMALL_COPIES_BYTES_DEFAULT } from "./small-objects.js";
import { keyQuorums, readRecords, resolveFromQuorum, resolveNewest, withTimeout, type AvoidDisk, type ResolvedVersion } from "./versions.js";

/** How long a bucket operation waits for each node. */
export const BUCKET_OP_TIMEOUT_MS = 5_000;
/**
 * How long a bucket seen to exist is believed without asking the nodes again. Every object
 * operation checks its bucket; asking all nodes each time was a third of a small PUT's
 * internal requests. This gateway forgets a bucket at once when it deletes it; a bucket
 * deleted through another gateway may still take writes here for up to this long (buckets
 * are deleted only when empty, so such a late write is the only effect). 2 s keeps that
 * window short while a busy bucket is looked up once per 2 s instead of once per request.
 */
export const BUCKET_SEEN_TTL_MS = 2_000;
/** Buckets remembered at most; past it, expired entries are dropped, then the oldest. */
export const BUCKET_SEEN_ENTRIES_MAX = 10_000;

/** Objects whose shards need rebuilding (missing at write, failed at read); the healer drains it. */
export interface RepairQueue {
  enqueue(bucket: string, key: string, reason: string): void;
}

export interface ObjectStoreOptions {
  readonly cluster: Cluster;
  readonly repairs: RepairQueue;
  readonly clock?: HybridClock;
  /** Called with errors of background work (garbage collection) that nobody awaits. */
  readonly onBackgroundError?: (error: unknown, what: string) => void;
  /** The failure detector's view (also settable later: useHealth): reads ask its suspects last. */
  readonly health?: NodeHealthView;
  /**
   * Objects up to this size are stored as 1 + m copies (small-objects.ts; default
   * SMALL_COPIES_BYTES_DEFAULT, at most INLINE_OBJECT_BYTES_MAX); 0 stores every object erasure-coded.
   */
  readonly smallCopiesBytes?: number;
}

/** What the failure detector (gateway/healer/detector.ts) believes of a disk now. */
export interface NodeHealthView {
  /** True when the disk's node is suspect or down, or the disk failed. */
  unusable(nodeId: string, diskId: string): boolean;
}

export class ObjectStore {
  readonly #cluster: Cluster;
  readonly #repairs: RepairQueue;
  readonly #clock: HybridClock;
  readonly #onBackgroundError: (error: unknown, what: string) => void;
  readonly #background = new Set<Promise<void>>();
  /** Bucket name → when it was last seen to exist (BUCKET_SEEN_TTL_MS). */
  readonly #bucketsSeen = new Map<string, number>();
  #avoid: AvoidDisk;
  readonly #smallCopiesBytes: number;
  /** Multipart uploads of this store's objects (gateway/objects/multipart.ts). */
  readonly uploads: MultipartUploads;

  constructor(options: ObjectStoreOptions) {
    this.#cluster = options.cluster;
    this.#repairs = options.repairs;
    this.#clock = options.clock ?? new HybridClock();
    this.#onBackgroundError = options.onBackgroundError ?? (() => {});
    this.#avoid = this.#avoidWith(options.health);
    this.#smallCopiesBytes = options.smallCopiesBytes ?? SMALL_COPIES_BYTES_DEFAULT;
    requireArgument(Number.isSafeInteger(this.#smallCopiesBytes) && this.#smallCopiesBytes >= 0 && this.#smallCopiesBytes <= INLINE_OBJECT_BYTES_MAX, "smallCopiesBytes", `must be an integer in 0..${INLINE_OBJECT_BYTES_MAX}, got ${this.#smallCopiesBytes}`);
    this.uploads = new MultipartUploads({
      cluster: this.#cluster,
      clock: this.#clock,
      requireBucket: (bucket) => this.requireBucket(bucket),
      repair: (bucket, key, reason) => this.#repairs.enqueue(bucket, key, reason),
      committed: (record) => this.#collectOlder(record),
      background: (work, what) => this.#runInBackground(work, what),
    });
  }

  get cluster(): Cluster {
    return this.#cluster;
  }

  /** Reads consult `health` from now on (the healer starts after the store is made). */
  useHealth(health: NodeHealthView): void {
    this.#avoid = this.#avoidWith(health);
  }

  /**
   * Disks reads ask last: those the failure detector holds unusable, and those of a node that
   * just refused a connection (StorageNode.refusing), which the detector calls suspect only
   * after several seconds of missed probes.
   */
  #avoidWith(health: NodeHealthView | undefined): AvoidDisk {
    return (location) => health?.unusable(location.nodeId, location.diskId) === true || this.#cluster.node(location.nodeId)?.refusing?.() === true;
  }

  // --- Buckets: a record on every node; created at a majority, seen if any node has it.

  async #eachNode<T>(run: (node: StorageNode) => Promise<T>): Promise<PromiseSettledResult<T>[]> {
    return Promise.allSettled(
      this.#cluster.nodeIds.map((id) => {
        const node = this.#cluster.node(id);
        if (node === undefined) return Promise.reject(new Error(`no node ${id}`));
        return withTimeout(run(node), BUCKET_OP_TIMEOUT_MS, `node ${id}`);
      }),
    );
  }

  #majority(): number {
    return Math.floor(this.#cluster.nodeIds.length / 2) + 1;
  }

  async getBucket(name: string): Promise<BucketRecord | undefined> {
    const results = await this.#eachNode((node) => node.getBucket(name));
    const found = results.flatMap((result) => (result.status === "fulfilled" && result.value !== undefined ? [result.value] : []));
    if (found.length > 0) return found.reduce((a, b) => (a.created <= b.created ? a : b));
    if (results.every((result) => result.status === "rejected")) throw unavailable("no node answered the bucket lookup");
    return undefined;
  }

  async createBucket(name: string, now = Date.now()): Promise<"created" | "exists"> {
    if ((await this.getBucket(name)) !== undefined) return "exists";
    const results = await this.#eachNode((node) => node.putBucket({ name, created: now }));
    const stored = results.filter((result) => result.status === "fulfilled").length;
    if (stored < this.#majority()) throw new TesseraError("ERR_WRITE_QUORUM", `bucket ${name}: stored on ${stored} nodes, ${this.#majority()} needed`);
    this.#sawBucket(name);
    return "created";
  }

  async deleteBucket(name: string): Promise<void> {
    const page = await this.list({ bucket: name, limit: 1 });
    if (page.entries.length > 0) throw new TesseraError("ERR_VERSION_CONFLICT", `bucket ${name} is not empty`, { kind: "bucket-not-empty" });
    this.#bucketsSeen.delete(name);
    const results = await this.#eachNode((node) => node.deleteBucket(name));
    this.#bucketsSeen.delete(name);
    if (results.filter((result) => result.status === "fulfilled").length < this.#majority()) throw unavailable(`bucket ${name}: too few nodes answered the delete`);
  }

  async listBuckets(): Promise<BucketRecord[]> {
    const results = await this.#eachNode((node) => node.listBuckets());
    if (results.every((result) => result.status === "rejected")) throw unavailable("no node answered the bucket listing");
    const byName = new Map<string, BucketRecord>();
    for (const result of results) {
      if (result.status !== "fulfilled") continue;
      for (const bucket of result.value) {
        const seen = byName.get(bucket.name);
        if (seen === undefined || bucket.created < seen.created) byName.set(bucket.name, bucket);
      }
    }
    return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /** Throws ERR_NOT_FOUND unless the bucket exists (believed for BUCKET_SEEN_TTL_MS once seen). */
  async requireBucket(name: string): Promise<void> {
    const seenAt = this.#bucketsSeen.get(name);
    if (seenAt !== undefined && Date.now() - seenAt < BUCKET_SEEN_TTL_MS) return;
    if ((await this.getBucket(name)) === undefined) {
      this.#bucketsSeen.delete(name);
      throw new TesseraError("ERR_NOT_FOUND", `bucket ${name} does not exist`, { kind: "bucket" });
    }
    this.#sawBucket(name);
  }

  #sawBucket(name: string): void {
    const now = Date.now();
    this.#bucketsSeen.delete(name); // re-inserted last: the map's order is oldest first
    if (this.#bucketsSeen.size >= BUCKET_SEEN_ENTRIES_MAX) {
      for (const [seen, at] of this.#bucketsSeen) if (now - at >= BUCKET_SEEN_TTL_MS) this.#bucketsSeen.delete(seen);
      const oldest = this.#bucketsSeen.keys().next();
      if (this.#bucketsSeen.size >= BUCKET_SEEN_ENTRIES_MAX && oldest.done !== true) this.#bucketsSeen.delete(oldest.value);
    }
    this.#bucketsSeen.set(name, now);
  }

  // --- Objects

  /** With a condition, a compare-and-set under the key's lock (conditional-commit.ts). */
  async put(input: Omit<PutObjectInput, "versionId">, condition?: WriteCondition): Promise<PutObjectResult> {
    await this.requireBucket(input.bucket);
    const placement = this.#cluster.place(input.bucket, input.key);
    const commit = hasCondition(condition) ? conditionalCommit(this.#cluster, placement.locations, condition) : undefined;
    // A conditional write is never copies: its lock holds leases on a write quorum of the k + m
    // disks (lease-lock.ts), not necessarily on every copy's disk, and a copy refused for want of
    // a lease would fail the write as a conflict (409) where erasure coding needs only k + 1.
    const copies = commit === undefined && this.#asCopies(input.length, placement.locations) ? { fallbackVersionId: () => this.#clock.nextVersionId() } : undefined;
    const result = await putObject(this.#cluster, placement, { ...input, versionId: this.#clock.nextVersionId(), ...(copies === undefined ? {} : { copies }) }, commit);
    if (result.missingShards.length > 0) this.#repairs.enqueue(input.bucket, input.key, `write missed shards ${result.missingShards.join(",")}`);
    // Disks that stored the record said whether they hold older versions; a disk that did not
    // store it keeps its old versions until a read or the healer finds them.
    if (result.olderVersions) this.#collectOlder(result.record);
    return result;
  }

  /**
   * Whether a PUT of `length` bytes is stored as copies: small enough, a code with k > 1 (with
   * k = 1 every object is copies already), and none of the copies' disks held unusable by the
   * failure detector (the write needs them all; erasure coding needs only k + 1 of k + m).
   */
  #asCopies(length: number, locations: readonly ShardLocation[]): boolean {
    const { k, m } = this.#cluster.map.ec;
    return this.#smallCopiesBytes > 0 && length <= this.#smallCopiesBytes && k > 1 && locations.slice(0, 1 + m).every((location) => !this.#avoid(location));
  }

  /** The version a GET or HEAD serves; ERR_NOT_FOUND when none (or a delete marker). */
  async resolve(bucket: string, key: string): Promise<ResolvedVersion> {
    const placement = this.#cluster.place(bucket, key);
    const { reads, resolved } = await resolveFromQuorum(this.#cluster, bucket, key, placement.locations, keyQuorums(this.#cluster.map.ec), this.#avoid);
    if (reads.every((read) => read.records === undefined)) throw unavailable(`no node holding ${bucket}/${key} answered`);
    if (resolved !== undefined) this.#clock.observe(decodeVersionId(resolved.record.versionId));
    if (resolved === undefined || resolved.record.deleteMarker) {
      await this.requireBucket(bucket);
      throw new TesseraError("ERR_NOT_FOUND", `${bucket}/${key} does not exist`, { kind: "key" });
    }
    const missing = resolved.partial === true ? [] : placementMissing(resolved);
    if (missing.length > 0) this.#repairs.enqueue(bucket, key, `records missing on shards ${missing.join(",")}`);
    return resolved;
  }

  read(resolved: ResolvedVersion, start: number, end: number, purpose: { readonly forCopy?: boolean } = {}): AsyncGenerator<Buffer> {
    const { bucket, key } = resolved.record;
    const options: ReadObjectOptions = {
      // A shard whose node did not answer needs no verification; one that failed its checksum or broke off does.
      onShardFailure: (shardIndex, error) => this.#repairs.enqueue(bucket, key, isTesseraError(error, "ERR_NODE_UNAVAILABLE") ? `shard ${shardIndex} unreachable` : `shard ${shardIndex} failed a read`),
      avoid: this.#avoid,
      ...(purpose.forCopy === true ? { forCopy: true } : {}),
    };
    if (resolved.partial === true && isInline(resolved)) return this.#readInline(resolved, start, end, options);
    return readObject(this.#cluster, resolved, start, end, options);
  }

  /**
   * An inline object resolved from a read quorum holds only those disks' shards: if one of
   * them fails its checksum there is no parity at hand, so the (at most 64 KiB) object is
   * decoded whole before the first byte goes out, and on failure decoded again from every
   * disk's record.
   */
  async *#readInline(resolved: ResolvedVersion, start: number, end: number, options: ReadObjectOptions): AsyncGenerator<Buffer> {
    const { bucket, key, versionId } = resolved.record;
    let bytes: Buffer;
    try {
      bytes = await collect(readObject(this.#cluster, resolved, start, end, options));
    } catch {
      const placement = this.#cluster.place(bucket, key);
      const reads = await readRecords(this.#cluster, bucket, key, placement.locations);
      const full = resolveNewest(reads, keyQuorums(this.#cluster.map.ec));
      if (full === undefined || full.record.versionId !== versionId) throw unavailable(`${bucket}/${key} version ${versionId}: its inline shards could not be read`);
      bytes = await collect(readObject(this.#cluster, full, start, end, options));
    }
    yield bytes;
  }

  /** Writes a delete marker (S3 DeleteObject succeeds whether or not the key existed). */
  async delete(bucket: string, key: string): Promise<void> {
    await this.requireBucket(bucket);
    const placement = this.#cluster.place(bucket, key);
    const { k, m, blockSize } = this.#cluster.map.ec;
    const marker: ObjectRecord = {
      bucket,
      key,
      versionId: this.#clock.nextVersionId(),
      revision: 1,
      objectId: placement.objectIdHex,
      deleteMarker: true,
      size: 0,
      etag: "",
      lastModified: Date.now(),
      userMetadata: {},
      systemMetadata: {},
      ec: { k, m, blockBytes: blockSize, checksumAlgorithm: 1 },
      placement: placement.locations,
      parts: [],
    };
    const report = await commitRecords(this.#cluster, placement.locations, marker, writeQuorum(k, m));
    if (report.olderVersions) this.#collectOlder(marker);
  }

  async list(input: ListObjectsInput): Promise<ListObjectsPage> {
    return listObjects(this.#cluster, input);
  }

  /** Waits for background garbage collection (tests, shutdown). */
  async settle(): Promise<void> {
    while (this.#background.size > 0) await Promise.allSettled([...this.#background]);
  }

  /**
   * Superseded versions are garbage: once `newest` is committed, remove older records and
   * their shards from the disks that hold `newest`. Delete markers stay, so a node that
   * missed this cannot bring the object back (newest wins everywhere).
   */
  #collectOlder(newest: ObjectRecord): void {
    this.#runInBackground(() => this.#removeOlder(newest), `garbage collection of ${newest.bucket}/${newest.key}`);
  }

  /** Runs work nobody awaits; settle() waits for it, and errors go to onBackgroundError. */
  #runInBackground(run: () => Promise<unknown>, what: string): void {
    const work = run().then(
      () => undefined,
      (error: unknown) => this.#onBackgroundError(error, what),
    );
    this.#background.add(work);
    void work.finally(() => this.#background.delete(work));
  }

  async #removeOlder(newest: ObjectRecord): Promise<void> {
    const reads = await readRecords(this.#cluster, newest.bucket, newest.key, newest.placement);
    // A part listed by the newest version or a newer one stays: a completion retried after a
    // crash writes a second version listing the same parts.
    const kept = new Set(reads.flatMap((read) => (read.records ?? []).filter((record) => record.versionId >= newest.versionId).flatMap((record) => record.parts.map((part) => part.partVersionId))));
    for (const read of reads) {
      const node = this.#cluster.node(read.location.nodeId);
      for (const record of read.records ?? []) {
        if (node === undefined || record.versionId >= newest.versionId) continue;
        if (!record.deleteMarker && record.inline === undefined) await this.#removeShardsOn(record, read.location, kept);
        await node.deleteRecord(read.location.diskId, record.bucket, record.key, record.versionId);
      }
    }
  }

  /** The shards of `record` on one disk: the object's own, or each part's (unless kept). */
  async #removeShardsOn(record: ObjectRecord, disk: ShardLocation, kept: ReadonlySet<string>): Promise<void> {
    const here = record.placement.filter((location) => location.nodeId === disk.nodeId && location.diskId === disk.diskId);
    if (record.parts.length === 0) {
      await deleteShards(this.#cluster, here, record.objectId, record.versionId);
      return;
    }
    for (const part of record.parts) {
      if (!kept.has(part.partVersionId)) await deleteShards(this.#cluster, here, record.objectId, part.partVersionId, part.partNumber);
    }
  }
}

async function collect(pieces: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const piece of pieces) parts.push(piece);
  // An inline object's decode yields its range as one Buffer already: no copy then.
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
}

function unavailable(message: string): TesseraError {
  return new TesseraError("ERR_NODE_UNAVAILABLE", message);
}

function placementMissing(resolved: ResolvedVersion): number[] {
  const { record } = resolved;
  if (record.deleteMarker) return [];
  const expected = record.ec.k + record.ec.m;
  return Array.from({ length: expected }, (_, index) => index).filter((index) => !resolved.holders.has(index));
}
