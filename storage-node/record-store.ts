/**
 * Object-version records and bucket records of one disk, over an ordered byte store (LMDB
 * on a real disk, a sorted array in the memory node). Key layout: record-keys.ts.
 *
 * Listing seeks once per returned key (to the key's newest version, then past all its
 * versions), so a page costs O(page × log n) however many keys or versions the bucket holds.
 * The placement index holds one empty entry per (node, disk) a record places shards on,
 * written in the same transaction as the record, so it can never disagree with it.
 */
import { assert } from "../core/assert.js";
import { requireArgument } from "../core/errors.js";
import type {
  BucketRecord,
  ListRecordsOptions,
  ListRecordsPage,
  ObjectRecord,
  PlacementPage,
  PlacementQuery,
  PutRecordReply,
} from "../core/storage-api.js";
import type { OrderedStore, StoreEntry, StoreWriter } from "./ordered-store.js";
import {
  afterObjectKey,
  bucketEnd,
  bucketKey,
  bucketStart,
  hasPrefix,
  keyPrefixStart,
  objectKeyStart,
  placementEnd,
  placementKey,
  placementPrefix,
  recordKey,
} from "./record-keys.js";
import {
  LIST_RECORDS_LIMIT_MAX,
  PLACEMENT_PAGE_LIMIT_MAX,
  clampLimit,
  decidePut,
  decodeBucket,
  decodeRecord,
  recordJsonText,
  encodeBucket,
  encodeRecord,
  normalizeBucket,
  normalizeRecord,
  placedDisks,
  validateBucketName,
  validateHexId,
  validateNameId,
  validateObjectKey,
} from "./record-rules.js";

/** Meta key of the record count, kept in the same transactions as the records. */
const RECORD_COUNT_KEY = Buffer.from("record-count", "utf8");
/** Longest placement cursor accepted: base64url of the longest record key (~2.4 KB). */
const PLACEMENT_CURSOR_CHARS_MAX = 4096;
const BASE64URL_PATTERN = /^[A-Za-z0-9_-]*$/;
const EMPTY = Buffer.alloc(0);

function readCount(writer: Pick<StoreWriter, "get">): number {
  const stored = writer.get("meta", RECORD_COUNT_KEY);
  return stored === undefined ? 0 : Number(stored.readBigUInt64LE(0));
}

function writeCount(writer: StoreWriter, count: number): void {
  assert(Number.isSafeInteger(count) && count >= 0, "the record count never goes negative");
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64LE(BigInt(count));
  writer.put("meta", RECORD_COUNT_KEY, bytes);
}

function putPlacements(writer: StoreWriter, record: ObjectRecord, key: Buffer, present: boolean): void {
  for (const { nodeId, diskId } of placedDisks(record)) {
    if (present) writer.put("placements", placementKey(nodeId, diskId, key), EMPTY);
    else writer.remove("placements", placementKey(nodeId, diskId, key));
  }
}

export class RecordStore {
  readonly #store: OrderedStore;

  constructor(store: OrderedStore) {
    this.#store = store;
  }

  async putRecord(input: ObjectRecord): Promise<PutRecordReply> {
    const record = normalizeRecord(input);
    // Encoded now, outside the write transaction, and before the caller can touch its inline
    // payload again (normalizeRecord does not copy it).
    const encoded = encodeRecord(record);
    const key = recordKey(record.bucket, record.key, record.versionId);
    return this.#store.write((writer): PutRecordReply => {
      const stored = writer.get("records", key);
      const existing = stored === undefined ? undefined : decodeRecord(stored);
      const result = decidePut(existing, record);
      // Versions sort newest first: the older ones follow this key (counted in the transaction,
      // before its writes, which leave that range alone).
      const olderVersions = writer.count("records", { start: key, end: afterObjectKey(record.bucket, record.key), exclusiveStart: true });
      if (result !== "stored") return { result, olderVersions };
      if (existing !== undefined) putPlacements(writer, existing, key, false);
      else writeCount(writer, readCount(writer) + 1);
      writer.put("records", key, encoded);
      putPlacements(writer, record, key, true);
      return { result, olderVersions };
    });
  }

  /**
   * Every version of one key, newest first, as the JSON text of its wire form
   * (JSON.stringify(recordToWire(record))): what encodeRecord stored after its format byte,
   * passed on without parsing it and serializing it again (record reads of small GETs).
   */
  getRecordsJson(bucket: string, key: string): string[] {
    return this.#versionsOf(bucket, key).map((entry) => recordJsonText(entry.value));
  }

  /** Every version of one key, newest first. */
  getRecords(bucket: string, key: string): ObjectRecord[] {
    return this.#versionsOf(bucket, key).map((entry) => decodeRecord(entry.value));
  }

  /** The stored entries of every version of one key, newest first. */
  #versionsOf(bucket: string, key: string): StoreEntry[] {
    validateBucketName(bucket);
    validateObjectKey(key);
    return [...this.#store.range("records", { start: objectKeyStart(bucket, key), end: afterObjectKey(bucket, key) })];
  }

  async deleteRecord(bucket: string, key: string, versionId: string): Promise<boolean> {
    validateBucketName(bucket);
    validateObjectKey(key);
    validateHexId(versionId, "versionId");
    const storeKey = recordKey(bucket, key, versionId);
    return this.#store.write((writer) => {
      const stored = writer.get("records", storeKey);
      if (stored === undefined) return false;
      putPlacements(writer, decodeRecord(stored), storeKey, false);
      writer.remove("records", storeKey);
      writeCount(writer, readCount(writer) - 1);
      return true;
    });
  }

  /** The newest version of each key, in key order, one seek per key returned. */
  listRecords(options: ListRecordsOptions): ListRecordsPage {
    const { bucket, prefix = "", startAfter } = options;
    validateBucketName(bucket);
    if (prefix !== "") validateObjectKey(prefix, "prefix");
    if (startAfter !== undefined) validateObjectKey(startAfter, "startAfter");
    const limit = clampLimit(options.limit, LIST_RECORDS_LIMIT_MAX);
    const prefixStart = keyPrefixStart(bucket, prefix);
    const end = bucketEnd(bucket);
    let cursor = startAfter === undefined ? bucketStart(bucket) : afterObjectKey(bucket, startAfter);
    if (Buffer.compare(prefixStart, cursor) > 0) cursor = prefixStart;
    const next = (): ObjectRecord | undefined => {
      for (const entry of this.#store.range("records", { start: cursor, end, limit: 1 })) {
        if (!hasPrefix(entry.key, prefixStart)) return undefined;
        return decodeRecord(entry.value);
      }
      return undefined;
    };
    const records: ObjectRecord[] = [];
    for (let record = next(); record !== undefined; record = next()) {
      if (records.length === limit) return { records, nextStartAfter: records[records.length - 1]?.key };
      records.push(record);
      cursor = afterObjectKey(bucket, record.key);
    }
    return { records };
  }

  /** Records that place a shard on (query.nodeId, query.diskId), in record-key order. */
  listByPlacement(query: PlacementQuery): PlacementPage {
    validateNameId(query.nodeId, "nodeId");
    validateNameId(query.diskId, "diskId");
    const limit = clampLimit(query.limit, PLACEMENT_PAGE_LIMIT_MAX);
    const prefix = placementPrefix(query.nodeId, query.diskId);
    const start = query.cursor === undefined ? prefix : Buffer.concat([prefix, decodeCursor(query.cursor)]);
    const range = { start, end: placementEnd(query.nodeId, query.diskId), exclusiveStart: query.cursor !== undefined, limit: limit + 1 };
    const records: ObjectRecord[] = [];
    let lastKey: Buffer | undefined;
    for (const entry of this.#store.range("placements", range)) {
      if (records.length === limit) {
        assert(lastKey !== undefined, "a full page has a last key");
        return { records, nextCursor: lastKey.toString("base64url") };
      }
      lastKey = entry.key.subarray(prefix.length);
      const stored = this.#store.get("records", lastKey);
      assert(stored !== undefined, "the placement index only names stored records (same transaction)");
      records.push(decodeRecord(stored));
    }
    return { records };
  }

  recordCount(): number {
    return readCount(this.#store);
  }

  async putBucket(input: BucketRecord): Promise<void> {
    const bucket = normalizeBucket(input);
    await this.#store.write((writer) => writer.put("buckets", bucketKey(bucket.name), encodeBucket(bucket)));
  }

  getBucket(name: string): BucketRecord | undefined {
    validateBucketName(name, "name");
    const stored = this.#store.get("buckets", bucketKey(name));
    return stored === undefined ? undefined : decodeBucket(stored);
  }

  async deleteBucket(name: string): Promise<boolean> {
    validateBucketName(name, "name");
    return this.#store.write((writer) => {
      const found = writer.get("buckets", bucketKey(name)) !== undefined;
      if (found) writer.remove("buckets", bucketKey(name));
      return found;
    });
  }

  /** Every bucket in name order (buckets are few: S3 allows 100 per account by default). */
  listBuckets(): BucketRecord[] {
    const all = this.#store.range("buckets", { start: EMPTY, end: Buffer.of(0xff) });
    return [...all].map((entry) => decodeBucket(entry.value));
  }

  async close(): Promise<void> {
    await this.#store.close();
  }
}

function decodeCursor(cursor: unknown): Buffer {
  requireArgument(
    typeof cursor === "string" && cursor.length > 0 && cursor.length <= PLACEMENT_CURSOR_CHARS_MAX && BASE64URL_PATTERN.test(cursor),
    "cursor",
    "must be a cursor returned by a previous page",
  );
  return Buffer.from(cursor, "base64url");
}
