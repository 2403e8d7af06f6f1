/**
 * The rules every adapter applies to records, in one place so the local and memory nodes
 * cannot drift: validation (a record that reaches a disk is well formed), the conditional
 * put rule, page-size clamping and the stored byte encoding of a record.
 */
import { isChecksumAlgorithm } from "../core/checksum.js";
import { assert } from "../core/assert.js";
import { requireArgument } from "../core/errors.js";
import { BLOCK_BYTES_MAX, EC_K_MAX, EC_M_MAX, OBJECT_BYTES_MAX, OBJECT_KEY_BYTES_MAX } from "../core/limits.js";
import {
  HEX_ID_PATTERN,
  NAME_ID_PATTERN,
  type BucketRecord,
  type ObjectRecord,
  type PartRecord,
  type PutRecordResult,
  type ShardLocation,
} from "../core/storage-api.js";

const KiB = 1024;
const MiB = 1024 * KiB;

/** S3's key ceiling (core/limits.ts); with escaping it keeps LMDB keys under 4026 bytes. */
export { OBJECT_KEY_BYTES_MAX };
/** Bucket names: S3's 63 characters of a path-safe alphabet (the gateway checks S3's finer rules). */
export const BUCKET_NAME_PATTERN = /^[A-Za-z0-9._-]{1,63}$/;
/** Records per listing page: S3's max-keys ceiling; a page is read and sent in one piece. */
export const LIST_RECORDS_LIMIT_MAX = 1000;
/** Records per placement page (the healer's scan): same reasoning as a listing page. */
export const PLACEMENT_PAGE_LIMIT_MAX = 1000;
/**
 * Largest inline payload in a record. The gateway inlines objects up to 64 KiB (one shard's
 * bytes per record); 1 MiB leaves room and still keeps one record read cheap.
 */
export const RECORD_INLINE_BYTES_MAX = 1 * MiB;
/** User plus system metadata per record: S3 allows 2 KiB of user metadata; 16 KiB is ample. */
export const RECORD_METADATA_BYTES_MAX = 16 * KiB;
/** S3's ceiling on parts of one multipart upload. */
export const RECORD_PARTS_MAX = 10_000;
/** Longest ETag or content type kept (an ETag is 32 hex plus "-10000"). */
export const RECORD_STRING_BYTES_MAX = 1 * KiB;
/** Format byte in front of every stored record, so a later format can be told apart. */
const RECORD_FORMAT_VERSION = 1;

function isWholeNumber(value: unknown, max: number = Number.MAX_SAFE_INTEGER): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 && value <= max;
}

function isWellFormedUtf16(text: string): boolean {
  return Buffer.from(text, "utf8").toString("utf8") === text;
}

export function validateBucketName(bucket: unknown, option = "bucket"): asserts bucket is string {
  requireArgument(typeof bucket === "string" && BUCKET_NAME_PATTERN.test(bucket), option, `must be 1..63 characters of A-Z a-z 0-9 . _ -, got ${JSON.stringify(bucket)}`);
}

export function validateObjectKey(key: unknown, option = "key"): asserts key is string {
  requireArgument(typeof key === "string" && key.length > 0, option, "must be a non-empty string");
  requireArgument(isWellFormedUtf16(key), option, "must be valid Unicode (no lone surrogates)");
  const bytes = Buffer.byteLength(key, "utf8");
  requireArgument(bytes <= OBJECT_KEY_BYTES_MAX, option, `must be at most ${OBJECT_KEY_BYTES_MAX} UTF-8 bytes, got ${bytes}`);
}

export function validateHexId(id: unknown, option: string): asserts id is string {
  requireArgument(typeof id === "string" && HEX_ID_PATTERN.test(id), option, `must be 32 lowercase hex characters, got ${JSON.stringify(id)}`);
}

export function validateNameId(id: unknown, option: string): asserts id is string {
  requireArgument(typeof id === "string" && NAME_ID_PATTERN.test(id), option, `must match ${NAME_ID_PATTERN}, got ${JSON.stringify(id)}`);
}

function validateStringMap(map: unknown, option: string): Record<string, string> {
  requireArgument(typeof map === "object" && map !== null && !Array.isArray(map), option, "must be an object of strings");
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(map)) {
    requireArgument(typeof value === "string", `${option}.${name}`, "must be a string");
    out[name] = value;
  }
  return out;
}

function validateShortString(value: unknown, option: string): asserts value is string {
  requireArgument(typeof value === "string" && Buffer.byteLength(value) <= RECORD_STRING_BYTES_MAX, option, `must be a string of at most ${RECORD_STRING_BYTES_MAX} bytes`);
}

function validatePlacement(placement: unknown, shardCount: number): ShardLocation[] {
  requireArgument(Array.isArray(placement) && placement.length <= shardCount, "placement", `must be an array of at most k + m = ${shardCount} locations`);
  const seen = new Set<number>();
  return placement.map((location: ShardLocation, at) => {
    const option = `placement[${at}]`;
    requireArgument(typeof location === "object" && location !== null, option, "must be an object");
    requireArgument(isWholeNumber(location.shardIndex, shardCount - 1) && !seen.has(location.shardIndex), `${option}.shardIndex`, `must be a distinct integer in 0..${shardCount - 1}`);
    seen.add(location.shardIndex);
    validateNameId(location.nodeId, `${option}.nodeId`);
    validateNameId(location.diskId, `${option}.diskId`);
    return { shardIndex: location.shardIndex, nodeId: location.nodeId, diskId: location.diskId };
  });
}

function validateParts(parts: unknown): PartRecord[] {
  requireArgument(Array.isArray(parts) && parts.length <= RECORD_PARTS_MAX, "parts", `must be an array of at most ${RECORD_PARTS_MAX} parts`);
  return parts.map((part: PartRecord, at) => {
    const option = `parts[${at}]`;
    requireArgument(typeof part === "object" && part !== null, option, "must be an object");
    requireArgument(isWholeNumber(part.partNumber, RECORD_PARTS_MAX) && part.partNumber >= 1, `${option}.partNumber`, `must be an integer in 1..${RECORD_PARTS_MAX}`);
    validateHexId(part.partVersionId, `${option}.partVersionId`);
    requireArgument(isWholeNumber(part.size, OBJECT_BYTES_MAX), `${option}.size`, "must be a whole number of bytes");
    validateShortString(part.etag, `${option}.etag`);
    requireArgument(isWholeNumber(part.blockBytes, BLOCK_BYTES_MAX) && part.blockBytes > 0, `${option}.blockBytes`, `must be an integer in 1..${BLOCK_BYTES_MAX}`);
    return { partNumber: part.partNumber, partVersionId: part.partVersionId, size: part.size, etag: part.etag, blockBytes: part.blockBytes };
  });
}

function validateEc(ec: unknown): ObjectRecord["ec"] {
  requireArgument(typeof ec === "object" && ec !== null, "ec", "must be an object");
  const { k, m, blockBytes, checksumAlgorithm } = ec as ObjectRecord["ec"];
  requireArgument(isWholeNumber(k, EC_K_MAX) && k >= 1, "ec.k", `must be an integer in 1..${EC_K_MAX}`);
  requireArgument(isWholeNumber(m, EC_M_MAX), "ec.m", `must be an integer in 0..${EC_M_MAX}`);
  requireArgument(isWholeNumber(blockBytes, BLOCK_BYTES_MAX) && blockBytes > 0, "ec.blockBytes", `must be an integer in 1..${BLOCK_BYTES_MAX}`);
  requireArgument(typeof checksumAlgorithm === "number" && isChecksumAlgorithm(checksumAlgorithm), "ec.checksumAlgorithm", "must be a known checksum algorithm");
  return { k, m, blockBytes, checksumAlgorithm };
}

/**
 * Checks every field of a record and returns a clean copy with exactly the interface's
 * fields (unknown fields dropped, optional ones omitted when absent, inline as a Buffer).
 * Throws ERR_INVALID_ARGUMENT naming the first bad field.
 */
export function normalizeRecord(record: ObjectRecord): ObjectRecord {
  requireArgument(typeof record === "object" && record !== null, "record", "must be an object");
  validateBucketName(record.bucket, "record.bucket");
  validateObjectKey(record.key, "record.key");
  validateHexId(record.versionId, "record.versionId");
  requireArgument(isWholeNumber(record.revision), "record.revision", "must be a whole number");
  validateHexId(record.objectId, "record.objectId");
  requireArgument(typeof record.deleteMarker === "boolean", "record.deleteMarker", "must be a boolean");
  requireArgument(isWholeNumber(record.size, OBJECT_BYTES_MAX), "record.size", `must be a whole number up to ${OBJECT_BYTES_MAX}`);
  validateShortString(record.etag, "record.etag");
  requireArgument(isWholeNumber(record.lastModified), "record.lastModified", "must be whole milliseconds since the epoch");
  if (record.contentType !== undefined) validateShortString(record.contentType, "record.contentType");
  const userMetadata = validateStringMap(record.userMetadata, "record.userMetadata");
  const systemMetadata = validateStringMap(record.systemMetadata, "record.systemMetadata");
  const metadataBytes = Buffer.byteLength(JSON.stringify([userMetadata, systemMetadata]));
  requireArgument(metadataBytes <= RECORD_METADATA_BYTES_MAX, "record.userMetadata", `metadata must total at most ${RECORD_METADATA_BYTES_MAX} bytes, got ${metadataBytes}`);
  const ec = validateEc(record.ec);
  const placement = validatePlacement(record.placement, ec.k + ec.m);
  const parts = validateParts(record.parts);
  const inline = record.inline === undefined ? undefined : Buffer.from(validateInline(record.inline));
  return {
    bucket: record.bucket,
    key: record.key,
    versionId: record.versionId,
    revision: record.revision,
    objectId: record.objectId,
    deleteMarker: record.deleteMarker,
    size: record.size,
    etag: record.etag,
    lastModified: record.lastModified,
    ...(record.contentType === undefined ? {} : { contentType: record.contentType }),
    userMetadata,
    systemMetadata,
    ec,
    placement,
    parts,
    ...(inline === undefined ? {} : { inline }),
  };
}

function validateInline(inline: unknown): Uint8Array {
  requireArgument(inline instanceof Uint8Array, "record.inline", "must be a Buffer");
  requireArgument(inline.length <= RECORD_INLINE_BYTES_MAX, "record.inline", `must be at most ${RECORD_INLINE_BYTES_MAX} bytes, got ${inline.length}`);
  return inline;
}

/**
 * The conditional put rule: a record replaces the stored one of the same (bucket, key,
 * versionId) only with a higher revision, so a stale writer can never undo a repair.
 */
export function decidePut(existing: ObjectRecord | undefined, incoming: ObjectRecord): PutRecordResult {
  if (existing === undefined || incoming.revision > existing.revision) return "stored";
  return incoming.revision === existing.revision ? "unchanged" : "superseded";
}

/** The distinct (node, disk) pairs a record places shards on, each once. */
export function placedDisks(record: ObjectRecord): { nodeId: string; diskId: string }[] {
  const seen = new Map<string, { nodeId: string; diskId: string }>();
  for (const { nodeId, diskId } of record.placement) seen.set(`${nodeId}/${diskId}`, { nodeId, diskId });
  return [...seen.values()];
}

/** A page size the caller asked for, clamped to `max`; below 1 is a caller bug worth an error. */
export function clampLimit(limit: unknown, max: number): number {
  requireArgument(typeof limit === "number" && Number.isInteger(limit) && limit >= 1, "limit", `must be an integer >= 1, got ${String(limit)}`);
  return Math.min(limit, max);
}

interface StoredRecord extends Omit<ObjectRecord, "inline"> {
  readonly inline?: string;
}

/** Record bytes as stored: a format byte, then JSON with the inline payload in base64. */
export function encodeRecord(record: ObjectRecord): Buffer {
  const { inline, ...rest } = record;
  const stored: StoredRecord = inline === undefined ? rest : { ...rest, inline: inline.toString("base64") };
  return Buffer.concat([Buffer.of(RECORD_FORMAT_VERSION), Buffer.from(JSON.stringify(stored), "utf8")]);
}

export function decodeRecord(bytes: Buffer): ObjectRecord {
  assert(bytes[0] === RECORD_FORMAT_VERSION, "records on disk were written by this format");
  const stored = JSON.parse(bytes.subarray(1).toString("utf8")) as StoredRecord;
  const { inline, ...rest } = stored;
  return inline === undefined ? rest : { ...rest, inline: Buffer.from(inline, "base64") };
}

export function normalizeBucket(bucket: BucketRecord): BucketRecord {
  requireArgument(typeof bucket === "object" && bucket !== null, "bucket", "must be an object");
  validateBucketName(bucket.name, "bucket.name");
  requireArgument(isWholeNumber(bucket.created), "bucket.created", "must be whole milliseconds since the epoch");
  return { name: bucket.name, created: bucket.created };
}

export function encodeBucket(bucket: BucketRecord): Buffer {
  return Buffer.from(JSON.stringify(bucket), "utf8");
}

export function decodeBucket(bytes: Buffer): BucketRecord {
  return JSON.parse(bytes.toString("utf8")) as BucketRecord;
}
