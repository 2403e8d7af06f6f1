/**
 * The rules every adapter applies to records, in one place so the local and memory nodes
 * cannot drift: validation (a record that reaches a disk is well formed), the conditional
 * put rule, page-size clamping and the stored byte encoding of a record.
 */
import { isChecksumAlgorithm } from "../core/checksum.js";
import { assert } from "../core/assert.js";
import { requireArgument } from "../core/errors.js";
import { recordWireJson } from "../core/internal-api.js";
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
/** k + m at most: validatePlacement keeps the placed shard indexes as bits of one 32-bit integer. */
const SHARD_COUNT_MAX = EC_K_MAX + EC_M_MAX;
assert(SHARD_COUNT_MAX <= 31, "placed shard indexes fit the bits of a 32-bit integer");
/** Format byte in front of every stored record, so a later format can be told apart. */
const RECORD_FORMAT_VERSION = 1;
/** The format byte as a one-character string: below 0x80, it is one byte in UTF-8. */
const RECORD_FORMAT_PREFIX = String.fromCharCode(RECORD_FORMAT_VERSION);
assert(RECORD_FORMAT_VERSION < 0x80, "the format byte is one UTF-8 byte");

function isWholeNumber(value: unknown, max: number = Number.MAX_SAFE_INTEGER): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 && value <= max;
}

/**
 * Throws requireArgument's ERR_INVALID_ARGUMENT. The validators below run on every record
 * operation and call it only once a check failed: messages built up front (template strings,
 * JSON.stringify of the value, a regex's source) cost 8 of normalizeRecord's 9 µs per record.
 */
function refuse(option: string, problem: string): never {
  requireArgument(false, option, problem);
}

/** No lone surrogates (String.prototype.isWellFormed: ES2024, in Node 20; TypeScript's ES2023 lib lacks it). */
function isWellFormedUtf16(text: string): boolean {
  return (text as string & { isWellFormed(): boolean }).isWellFormed();
}

export function validateBucketName(bucket: unknown, option = "bucket"): asserts bucket is string {
  if (typeof bucket !== "string" || !BUCKET_NAME_PATTERN.test(bucket)) refuse(option, `must be 1..63 characters of A-Z a-z 0-9 . _ -, got ${JSON.stringify(bucket)}`);
}

export function validateObjectKey(key: unknown, option = "key"): asserts key is string {
  if (typeof key !== "string" || key.length === 0) refuse(option, "must be a non-empty string");
  if (!isWellFormedUtf16(key)) refuse(option, "must be valid Unicode (no lone surrogates)");
  // A UTF-16 unit is at most 3 UTF-8 bytes (a pair is 4): short keys need no count.
  if (key.length * 3 <= OBJECT_KEY_BYTES_MAX) return;
  const bytes = Buffer.byteLength(key, "utf8");
  if (bytes > OBJECT_KEY_BYTES_MAX) refuse(option, `must be at most ${OBJECT_KEY_BYTES_MAX} UTF-8 bytes, got ${bytes}`);
}

function isHexId(id: unknown): id is string {
  return typeof id === "string" && HEX_ID_PATTERN.test(id);
}

function isNameId(id: unknown): id is string {
  return typeof id === "string" && NAME_ID_PATTERN.test(id);
}

function isShortString(value: unknown): value is string {
  // A UTF-16 unit is at most 3 UTF-8 bytes: short strings need no count.
  return typeof value === "string" && (value.length * 3 <= RECORD_STRING_BYTES_MAX || Buffer.byteLength(value) <= RECORD_STRING_BYTES_MAX);
}

export function validateHexId(id: unknown, option: string): asserts id is string {
  if (!isHexId(id)) refuse(option, `must be 32 lowercase hex characters, got ${JSON.stringify(id)}`);
}

export function validateNameId(id: unknown, option: string): asserts id is string {
  if (!isNameId(id)) validateNameIdFailed(id, option);
}

function validateNameIdFailed(id: unknown, option: string): never {
  refuse(option, `must match ${NAME_ID_PATTERN}, got ${JSON.stringify(id)}`);
}

function validateStringMap(map: unknown, option: string): Record<string, string> {
  if (typeof map !== "object" || map === null || Array.isArray(map)) refuse(option, "must be an object of strings");
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(map)) {
    if (typeof value !== "string") refuse(`${option}.${name}`, "must be a string");
    out[name] = value;
  }
  return out;
}

function validateShortString(value: unknown, option: string): asserts value is string {
  if (!isShortString(value)) refuse(option, `must be a string of at most ${RECORD_STRING_BYTES_MAX} bytes`);
}

function validatePlacement(placement: unknown, shardCount: number): ShardLocation[] {
  if (!Array.isArray(placement) || placement.length > shardCount) refuse("placement", `must be an array of at most k + m = ${shardCount} locations`);
  let seen = 0; // bit i: shard index i is placed (fits: SHARD_COUNT_MAX <= 31, asserted at load)
  return placement.map((location: ShardLocation, at) => {
    if (typeof location !== "object" || location === null) refuse(`placement[${at}]`, "must be an object");
    const { shardIndex, nodeId, diskId } = location;
    if (!isWholeNumber(shardIndex, shardCount - 1) || (seen & (1 << shardIndex)) !== 0) refuse(`placement[${at}].shardIndex`, `must be a distinct integer in 0..${shardCount - 1}`);
    seen |= 1 << shardIndex;
    if (!isNameId(nodeId)) validateNameIdFailed(nodeId, `placement[${at}].nodeId`);
    if (!isNameId(diskId)) validateNameIdFailed(diskId, `placement[${at}].diskId`);
    return { shardIndex, nodeId, diskId };
  });
}

function validateParts(parts: unknown): PartRecord[] {
  if (!Array.isArray(parts) || parts.length > RECORD_PARTS_MAX) refuse("parts", `must be an array of at most ${RECORD_PARTS_MAX} parts`);
  return parts.map((part: PartRecord, at) => {
    if (typeof part !== "object" || part === null) refuse(`parts[${at}]`, "must be an object");
    if (!isWholeNumber(part.partNumber, RECORD_PARTS_MAX) || part.partNumber < 1) refuse(`parts[${at}].partNumber`, `must be an integer in 1..${RECORD_PARTS_MAX}`);
    if (!isHexId(part.partVersionId)) validateHexId(part.partVersionId, `parts[${at}].partVersionId`);
    if (!isWholeNumber(part.size, OBJECT_BYTES_MAX)) refuse(`parts[${at}].size`, "must be a whole number of bytes");
    if (!isShortString(part.etag)) validateShortString(part.etag, `parts[${at}].etag`);
    if (!isWholeNumber(part.blockBytes, BLOCK_BYTES_MAX) || part.blockBytes <= 0) refuse(`parts[${at}].blockBytes`, `must be an integer in 1..${BLOCK_BYTES_MAX}`);
    return { partNumber: part.partNumber, partVersionId: part.partVersionId, size: part.size, etag: part.etag, blockBytes: part.blockBytes };
  });
}

function validateEc(ec: unknown): ObjectRecord["ec"] {
  if (typeof ec !== "object" || ec === null) refuse("ec", "must be an object");
  const { k, m, blockBytes, checksumAlgorithm, writeQuorum } = ec as ObjectRecord["ec"];
  if (!isWholeNumber(k, EC_K_MAX) || k < 1) refuse("ec.k", `must be an integer in 1..${EC_K_MAX}`);
  if (!isWholeNumber(m, EC_M_MAX)) refuse("ec.m", `must be an integer in 0..${EC_M_MAX}`);
  if (!isWholeNumber(blockBytes, BLOCK_BYTES_MAX) || blockBytes <= 0) refuse("ec.blockBytes", `must be an integer in 1..${BLOCK_BYTES_MAX}`);
  if (typeof checksumAlgorithm !== "number" || !isChecksumAlgorithm(checksumAlgorithm)) refuse("ec.checksumAlgorithm", "must be a known checksum algorithm");
  if (writeQuorum === undefined) return { k, m, blockBytes, checksumAlgorithm };
  if (!isWholeNumber(writeQuorum, k + m) || writeQuorum < k) refuse("ec.writeQuorum", `must be an integer in k..k + m = ${k}..${k + m}`);
  return { k, m, blockBytes, checksumAlgorithm, writeQuorum };
}

/**
 * Checks every field of a record and returns a clean copy with exactly the interface's
 * fields (unknown fields dropped, optional ones omitted when absent, inline as a Buffer).
 * The inline payload is not copied: a Buffer is used as is (a Uint8Array is viewed as one),
 * so encode the record before the caller can touch its payload again (RecordStore.putRecord
 * encodes at once). Throws ERR_INVALID_ARGUMENT naming the first bad field.
 */
export function normalizeRecord(record: ObjectRecord): ObjectRecord {
  if (typeof record !== "object" || record === null) refuse("record", "must be an object");
  validateBucketName(record.bucket, "record.bucket");
  validateObjectKey(record.key, "record.key");
  validateHexId(record.versionId, "record.versionId");
  if (!isWholeNumber(record.revision)) refuse("record.revision", "must be a whole number");
  validateHexId(record.objectId, "record.objectId");
  if (typeof record.deleteMarker !== "boolean") refuse("record.deleteMarker", "must be a boolean");
  if (!isWholeNumber(record.size, OBJECT_BYTES_MAX)) refuse("record.size", `must be a whole number up to ${OBJECT_BYTES_MAX}`);
  validateShortString(record.etag, "record.etag");
  if (!isWholeNumber(record.lastModified)) refuse("record.lastModified", "must be whole milliseconds since the epoch");
  if (record.contentType !== undefined) validateShortString(record.contentType, "record.contentType");
  const userMetadata = validateStringMap(record.userMetadata, "record.userMetadata");
  const systemMetadata = validateStringMap(record.systemMetadata, "record.systemMetadata");
  const metadataBytes = Buffer.byteLength(JSON.stringify([userMetadata, systemMetadata]));
  if (metadataBytes > RECORD_METADATA_BYTES_MAX) refuse("record.userMetadata", `metadata must total at most ${RECORD_METADATA_BYTES_MAX} bytes, got ${metadataBytes}`);
  const ec = validateEc(record.ec);
  const placement = validatePlacement(record.placement, ec.k + ec.m);
  const parts = validateParts(record.parts);
  const inline = record.inline === undefined ? undefined : asBuffer(validateInline(record.inline));
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

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function validateInline(inline: unknown): Uint8Array {
  if (!(inline instanceof Uint8Array)) refuse("record.inline", "must be a Buffer");
  if (inline.length > RECORD_INLINE_BYTES_MAX) refuse("record.inline", `must be at most ${RECORD_INLINE_BYTES_MAX} bytes, got ${inline.length}`);
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

/**
 * Record bytes as stored: a format byte, then the record's wire JSON with the inline payload
 * in base64, last (recordWireJson: spliced in as text, not scanned by JSON.stringify).
 */
export function encodeRecord(record: ObjectRecord): Buffer {
  return Buffer.from(RECORD_FORMAT_PREFIX + recordWireJson(record), "utf8");
}

/** A stored record's JSON text: its wire form, byte for byte (see encodeRecord). */
export function recordJsonText(bytes: Buffer): string {
  assert(bytes[0] === RECORD_FORMAT_VERSION, "records on disk were written by this format");
  return bytes.toString("utf8", 1);
}

export function decodeRecord(bytes: Buffer): ObjectRecord {
  assert(bytes[0] === RECORD_FORMAT_VERSION, "records on disk were written by this format");
  // A StoredRecord until its payload is turned into bytes in place (the object is ours alone).
  const stored = JSON.parse(bytes.toString("utf8", 1)) as Omit<StoredRecord, "inline"> & { inline?: string | Buffer };
  if (typeof stored.inline === "string") stored.inline = Buffer.from(stored.inline, "base64");
  return stored as unknown as ObjectRecord;
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
