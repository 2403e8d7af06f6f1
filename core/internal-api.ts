/**
 * The internal HTTP API between gateways (or the healer) and storage nodes: routes, path
 * builders, path-id validation, the one table from error codes to HTTP statuses, and the
 * JSON wire forms of the storage interface's values. storage-node/server.ts serves it and
 * core/http-node-client.ts calls it; both import it, so they cannot drift apart.
 *
 *   PUT    /v1/disks/:disk/shards/:object/:version/:part/:index   shard bytes (Content-Length) -> 204
 *   GET    /v1/disks/:disk/shards/:object/:version/:part/:index   [?first=&count=] -> shard bytes
 *   DELETE /v1/disks/:disk/shards/:object/:version/:part/:index   -> {deleted}
 *   POST   /v1/disks/:disk/shards/list             ShardListQuery -> ShardListPage
 *   PUT    /v1/disks/:disk/records                 {record, fence?} -> {result}
 *   POST   /v1/disks/:disk/records/get             {bucket, key} -> {records}
 *   POST   /v1/disks/:disk/records/delete          {bucket, key, versionId} -> {deleted}
 *   POST   /v1/disks/:disk/records/list            ListRecordsOptions -> ListRecordsPage
 *   POST   /v1/disks/:disk/records/by-placement    PlacementQuery -> PlacementPage
 *   POST   /v1/disks/:disk/leases/acquire          LeaseRequest -> LeaseGrant
 *   POST   /v1/disks/:disk/leases/release          {bucket, key, holder, token} -> {released}
 *   PUT    /v1/buckets/:bucket                     {created} -> 204
 *   GET    /v1/buckets/:bucket                     -> {bucket: BucketRecord | null}
 *   DELETE /v1/buckets/:bucket                     -> {deleted}
 *   GET    /v1/buckets                             -> {buckets}
 *   GET    /v1/health                              -> NodeHealth
 *   GET    /metrics                                -> Prometheus text
 *
 * Object keys travel only in JSON bodies, never in a URL. Every error is JSON
 * `{code, message, details}` with the status from HTTP_STATUS_BY_CODE.
 */
import { isChecksumAlgorithm, type ChecksumAlgorithm } from "./checksum.js";
import { ERROR_CODES, TesseraError, type ErrorCode } from "./errors.js";
import { BLOCK_BYTES_MAX, EC_K_MAX, EC_M_MAX, OBJECT_BYTES_MAX, PART_NUMBER_MAX, SHARD_FILE_BYTES_MAX, SHARD_INDEX_MAX } from "./limits.js";
import {
  HEX_ID_PATTERN,
  NAME_ID_PATTERN,
  type BucketRecord,
  type DiskHealth,
  type LeaseFence,
  type LeaseGrant,
  type LeaseRequest,
  type ListRecordsOptions,
  type ListRecordsPage,
  type NodeHealth,
  type ObjectRecord,
  type PartRecord,
  type PlacementPage,
  type PlacementQuery,
  type ShardId,
  type ShardListing,
  type ShardListPage,
  type ShardListQuery,
  type ShardLocation,
  type StripeRange,
} from "./storage-api.js";

const MiB = 1024 * 1024;

/**
 * Largest JSON request body (a record): 10,000 multipart parts at ~150 bytes each plus inline
 * data and metadata fit with room to spare. The node holds a whole JSON body in memory.
 */
export const RECORD_BODY_BYTES_MAX = 8 * MiB;
/**
 * Largest JSON response the client reads (a listing page). A page of records with inline
 * data can be big; beyond this the client refuses rather than buffer without bound.
 */
export const JSON_RESPONSE_BYTES_MAX = 64 * MiB;
/** Records per listing page at most, whatever the caller asks (S3's own max-keys). */
export const LIST_PAGE_RECORDS_MAX = 1000;
/** The largest Content-Length a shard PUT may declare (core/limits.ts). */
export { SHARD_FILE_BYTES_MAX };

/** S3 bucket naming (3..63 of a-z 0-9 . -, alphanumeric at both ends): always one safe path segment. */
export const BUCKET_NAME_PATTERN = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const DECIMAL_PATTERN = /^(0|[1-9][0-9]{0,15})$/;

export const ROUTES = {
  shard: "/v1/disks/:diskId/shards/:objectId/:versionId/:partNumber/:shardIndex",
  shardList: "/v1/disks/:diskId/shards/list",
  recordPut: "/v1/disks/:diskId/records",
  recordGet: "/v1/disks/:diskId/records/get",
  recordDelete: "/v1/disks/:diskId/records/delete",
  recordList: "/v1/disks/:diskId/records/list",
  recordByPlacement: "/v1/disks/:diskId/records/by-placement",
  /** getRecords and putRecord on any of the node's disks, several at once (core/record-batch.ts). */
  recordBatch: "/v1/records/batch",
  /** The same batches as frames on one upgraded connection (core/record-channel.ts). */
  recordChannel: "/v1/records/channel",
  leaseAcquire: "/v1/disks/:diskId/leases/acquire",
  leaseRelease: "/v1/disks/:diskId/leases/release",
  bucket: "/v1/buckets/:bucket",
  buckets: "/v1/buckets",
  health: "/v1/health",
  metrics: "/metrics",
} as const;

/**
 * One closed table from error code to HTTP status. The client maps back by the `code` in the
 * body, so the status is for people, proxies and metrics.
 */
export const HTTP_STATUS_BY_CODE: Readonly<Record<ErrorCode, number>> = {
  ERR_INVALID_ARGUMENT: 400,
  ERR_SHARD_TRUNCATED: 400,
  ERR_INCOMPLETE_BODY: 400,
  ERR_UNAUTHORIZED: 401,
  ERR_NOT_FOUND: 404,
  ERR_VERSION_CONFLICT: 409,
  ERR_SHARD_TOO_LONG: 413,
  ERR_SHARD_HEADER: 422,
  ERR_SHARD_CHECKSUM: 422,
  ERR_INVALID_CLUSTER_MAP: 500,
  ERR_CODEC_SELF_TEST: 500,
  ERR_DISK_FAILED: 503,
  ERR_NODE_UNAVAILABLE: 503,
  ERR_WRITE_QUORUM: 503,
  ERR_READ_QUORUM: 503,
  ERR_INSUFFICIENT_STORAGE: 507,
};

export interface WireError {
  readonly code: string;
  readonly message: string;
  readonly details: Record<string, unknown>;
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && Object.hasOwn(ERROR_CODES, value);
}

function invalid(where: string, problem: string): TesseraError {
  return new TesseraError("ERR_INVALID_ARGUMENT", `${where}: ${problem}`, { field: where });
}

// --- Paths ----------------------------------------------------------------------------

function segment(value: string | number): string {
  return encodeURIComponent(String(value));
}

export function shardPath(diskId: string, shard: ShardId, range?: StripeRange): string {
  const path = `/v1/disks/${segment(diskId)}/shards/${segment(shard.objectId)}/${segment(shard.versionId)}/${segment(shard.partNumber)}/${segment(shard.shardIndex)}`;
  return range === undefined ? path : `${path}?first=${segment(range.firstStripe)}&count=${segment(range.stripeCount)}`;
}

export function shardListPath(diskId: string): string {
  return `/v1/disks/${segment(diskId)}/shards/list`;
}

export function recordsPath(diskId: string, operation?: "get" | "delete" | "list" | "by-placement"): string {
  const path = `/v1/disks/${segment(diskId)}/records`;
  return operation === undefined ? path : `${path}/${operation}`;
}

export function leasePath(diskId: string, operation: "acquire" | "release"): string {
  return `/v1/disks/${segment(diskId)}/leases/${operation}`;
}

export function bucketPath(name?: string): string {
  return name === undefined ? "/v1/buckets" : `/v1/buckets/${segment(name)}`;
}

// --- Path validation (before anything is touched) -----------------------------------------

function parseDecimal(value: string | undefined, where: string, max: number): number {
  if (value === undefined || !DECIMAL_PATTERN.test(value)) throw invalid(where, "must be a decimal integer");
  const number = Number(value);
  if (number > max) throw invalid(where, `must be at most ${max}, got ${number}`);
  return number;
}

export function parseDiskId(value: string | undefined): string {
  if (value === undefined || !NAME_ID_PATTERN.test(value)) throw invalid("diskId", `must match ${NAME_ID_PATTERN}`);
  return value;
}

function parseHexId(value: string | undefined, where: string): string {
  if (value === undefined || !HEX_ID_PATTERN.test(value)) throw invalid(where, "must be 32 lowercase hex characters");
  return value;
}

export function parseBucketName(value: string | undefined): string {
  if (value === undefined || !BUCKET_NAME_PATTERN.test(value)) throw invalid("bucket", `must match ${BUCKET_NAME_PATTERN}`);
  return value;
}

export interface ShardParams {
  readonly diskId?: string;
  readonly objectId?: string;
  readonly versionId?: string;
  readonly partNumber?: string;
  readonly shardIndex?: string;
}

export function parseShardParams(params: ShardParams): { diskId: string; shard: ShardId } {
  const diskId = parseDiskId(params.diskId);
  const shard: ShardId = {
    objectId: parseHexId(params.objectId, "objectId"),
    versionId: parseHexId(params.versionId, "versionId"),
    partNumber: parseDecimal(params.partNumber, "partNumber", PART_NUMBER_MAX),
    shardIndex: parseDecimal(params.shardIndex, "shardIndex", SHARD_INDEX_MAX),
  };
  return { diskId, shard };
}

/** `?first=&count=`: both or neither. */
export function parseStripeRange(query: { first?: string; count?: string }): StripeRange | undefined {
  if (query.first === undefined && query.count === undefined) return undefined;
  const firstStripe = parseDecimal(query.first, "first", Number.MAX_SAFE_INTEGER);
  const stripeCount = parseDecimal(query.count, "count", Number.MAX_SAFE_INTEGER);
  return { firstStripe, stripeCount };
}

// --- JSON field reading --------------------------------------------------------------------

/** Reads typed fields out of parsed JSON, naming the field in every error. */
class Fields {
  readonly #object: Record<string, unknown>;
  readonly #where: string;

  constructor(value: unknown, where: string) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw invalid(where, "must be a JSON object");
    this.#object = value as Record<string, unknown>;
    this.#where = where;
  }

  #at(name: string): string {
    return `${this.#where}.${name}`;
  }

  /** The object itself, for a decoder that takes raw JSON. */
  get raw(): Record<string, unknown> {
    return this.#object;
  }

  has(name: string): boolean {
    return this.#object[name] !== undefined && this.#object[name] !== null;
  }

  string(name: string): string {
    const value = this.#object[name];
    if (typeof value !== "string") throw invalid(this.#at(name), "must be a string");
    return value;
  }

  optionalString(name: string): string | undefined {
    return this.has(name) ? this.string(name) : undefined;
  }

  hexId(name: string): string {
    return parseHexId(this.string(name), this.#at(name));
  }

  integer(name: string, min: number, max: number = Number.MAX_SAFE_INTEGER): number {
    const value = this.#object[name];
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
      throw invalid(this.#at(name), `must be an integer in ${min}..${max}`);
    }
    return value;
  }

  boolean(name: string): boolean {
    const value = this.#object[name];
    if (typeof value !== "boolean") throw invalid(this.#at(name), "must be true or false");
    return value;
  }

  stringMap(name: string): Record<string, string> {
    const fields = new Fields(this.#object[name], this.#at(name));
    // fromEntries defines own properties, so a "__proto__" key stays data, never a prototype.
    return Object.fromEntries(Object.keys(fields.#object).map((key) => [key, fields.string(key)]));
  }

  child(name: string): Fields {
    return new Fields(this.#object[name], this.#at(name));
  }

  list<T>(name: string, each: (item: unknown, where: string) => T): T[] {
    const value = this.#object[name];
    if (!Array.isArray(value)) throw invalid(this.#at(name), "must be an array");
    return value.map((item: unknown, index) => each(item, `${this.#at(name)}[${index}]`));
  }

  /**
   * Buffers travel as base64, strictly: Node's decoder silently drops bad characters, so the
   * decoded bytes must encode back to exactly the text (canonical padded base64, nothing
   * else). Both directions run natively; a regular expression over every inline record was
   * 2.5% of the gateway's CPU on 4 KiB GETs.
   */
  base64(name: string): Buffer {
    const value = this.string(name);
    const bytes = Buffer.from(value, "base64");
    if (bytes.toString("base64") !== value) throw invalid(this.#at(name), "must be base64");
    return bytes;
  }
}

// --- Records ---------------------------------------------------------------------------

/** ObjectRecord as JSON: `inline` is base64. */
export type ObjectRecordWire = Omit<ObjectRecord, "inline"> & { readonly inline?: string };

export function recordToWire(record: ObjectRecord): ObjectRecordWire {
  const { inline, ...rest } = record;
  return inline === undefined ? rest : { ...rest, inline: inline.toString("base64") };
}

/**
 * JSON.stringify(recordToWire(record)), the same text, with the inline payload's base64 put in
 * as it is: base64 needs no escaping, and JSON.stringify scanning it for characters to escape
 * cost about 14 µs per 4 KiB object's record against 3 µs spliced (issue 7). Used where a
 * record is serialized on every small PUT: the gateway's record writes and the node's store.
 */
export function recordWireJson(record: ObjectRecord): string {
  const { inline, ...rest } = record;
  const json = JSON.stringify(rest);
  if (inline === undefined) return json;
  const payload = `"inline":"${inline.toString("base64")}"`;
  return json === "{}" ? `{${payload}}` : `${json.slice(0, -1)},${payload}}`;
}

function placementFromWire(value: unknown, where: string): ShardLocation {
  const fields = new Fields(value, where);
  return { shardIndex: fields.integer("shardIndex", 0, SHARD_INDEX_MAX), nodeId: fields.string("nodeId"), diskId: fields.string("diskId") };
}

function partFromWire(value: unknown, where: string): PartRecord {
  const fields = new Fields(value, where);
  return {
    partNumber: fields.integer("partNumber", 1, PART_NUMBER_MAX),
    partVersionId: fields.hexId("partVersionId"),
    size: fields.integer("size", 0),
    etag: fields.string("etag"),
    blockBytes: fields.integer("blockBytes", 0),
  };
}

function ecFromWire(fields: Fields): ObjectRecord["ec"] {
  const checksumAlgorithm = fields.integer("checksumAlgorithm", 0, 255);
  if (!isChecksumAlgorithm(checksumAlgorithm)) throw invalid("record.ec.checksumAlgorithm", `unknown algorithm ${checksumAlgorithm}`);
  return {
    k: fields.integer("k", 0, EC_K_MAX),
    m: fields.integer("m", 0, EC_M_MAX),
    blockBytes: fields.integer("blockBytes", 0, BLOCK_BYTES_MAX),
    checksumAlgorithm: checksumAlgorithm satisfies ChecksumAlgorithm,
    ...(fields.has("writeQuorum") ? { writeQuorum: fields.integer("writeQuorum", 1, EC_K_MAX + EC_M_MAX) } : {}),
  };
}

/** Checks the shape of a record from JSON; the storage node judges its meaning. */
export function recordFromWire(value: unknown, where = "record"): ObjectRecord {
  const fields = new Fields(value, where);
  const contentType = fields.optionalString("contentType");
  const record: ObjectRecord = {
    bucket: fields.string("bucket"),
    key: fields.string("key"),
    versionId: fields.hexId("versionId"),
    revision: fields.integer("revision", 0),
    objectId: fields.hexId("objectId"),
    deleteMarker: fields.boolean("deleteMarker"),
    size: fields.integer("size", 0, OBJECT_BYTES_MAX),
    etag: fields.string("etag"),
    lastModified: fields.integer("lastModified", 0),
    ...(contentType === undefined ? {} : { contentType }),
    userMetadata: fields.stringMap("userMetadata"),
    systemMetadata: fields.stringMap("systemMetadata"),
    ec: ecFromWire(fields.child("ec")),
    placement: fields.list("placement", placementFromWire),
    parts: fields.list("parts", partFromWire),
  };
  return fields.has("inline") ? { ...record, inline: fields.base64("inline") } : record;
}

// --- Request bodies ----------------------------------------------------------------------

function fenceFrom(fields: Fields): LeaseFence {
  return { holder: fields.hexId("holder"), token: fields.integer("token", 0) };
}

/** A record PUT: the record and, for a conditional write, the lease grant it is made under. */
export function recordPutFromWire(value: unknown): { record: ObjectRecord; fence?: LeaseFence } {
  const fields = new Fields(value, "body");
  const record = recordFromWire(fields.child("record").raw, "record");
  return fields.has("fence") ? { record, fence: fenceFrom(fields.child("fence")) } : { record };
}

export function leaseRequestFromWire(value: unknown): LeaseRequest {
  const fields = new Fields(value, "body");
  return { bucket: fields.string("bucket"), key: fields.string("key"), holder: fields.hexId("holder"), ttlMs: fields.integer("ttlMs", 0) };
}

export function leaseReleaseFromWire(value: unknown): { bucket: string; key: string; fence: LeaseFence } {
  const fields = new Fields(value, "body");
  return { bucket: fields.string("bucket"), key: fields.string("key"), fence: fenceFrom(fields) };
}

export function recordKeyFromWire(value: unknown): { bucket: string; key: string } {
  const fields = new Fields(value, "body");
  return { bucket: fields.string("bucket"), key: fields.string("key") };
}

export function recordVersionFromWire(value: unknown): { bucket: string; key: string; versionId: string } {
  const fields = new Fields(value, "body");
  return { bucket: fields.string("bucket"), key: fields.string("key"), versionId: fields.hexId("versionId") };
}

/** `limit` is clamped to LIST_PAGE_RECORDS_MAX: a client cannot ask for an unbounded page. */
export function listOptionsFromWire(value: unknown): ListRecordsOptions {
  const fields = new Fields(value, "body");
  const prefix = fields.optionalString("prefix");
  const startAfter = fields.optionalString("startAfter");
  return {
    bucket: fields.string("bucket"),
    ...(prefix === undefined ? {} : { prefix }),
    ...(startAfter === undefined ? {} : { startAfter }),
    limit: Math.min(fields.integer("limit", 1), LIST_PAGE_RECORDS_MAX),
  };
}

export function placementQueryFromWire(value: unknown): PlacementQuery {
  const fields = new Fields(value, "body");
  const cursor = fields.optionalString("cursor");
  return {
    nodeId: fields.string("nodeId"),
    diskId: fields.string("diskId"),
    ...(cursor === undefined ? {} : { cursor }),
    limit: Math.min(fields.integer("limit", 1), LIST_PAGE_RECORDS_MAX),
  };
}

export function shardListQueryFromWire(value: unknown): ShardListQuery {
  const fields = new Fields(value, "body");
  const cursor = fields.optionalString("cursor");
  return { ...(cursor === undefined ? {} : { cursor }), limit: Math.min(fields.integer("limit", 1), LIST_PAGE_RECORDS_MAX) };
}

function shardListingFromWire(value: unknown, where: string): ShardListing {
  const fields = new Fields(value, where);
  const shard = fields.child("shard");
  return {
    shard: { objectId: shard.hexId("objectId"), versionId: shard.hexId("versionId"), partNumber: shard.integer("partNumber", 0), shardIndex: shard.integer("shardIndex", 0) },
    bytes: fields.integer("bytes", 0),
    committedAt: fields.integer("committedAt", 0),
  };
}

export function shardListPageFromWire(value: unknown): ShardListPage {
  const fields = new Fields(value, "page");
  const shards = fields.list("shards", shardListingFromWire);
  const nextCursor = fields.optionalString("nextCursor");
  return nextCursor === undefined ? { shards } : { shards, nextCursor };
}

export function bucketCreatedFromWire(value: unknown): number {
  return new Fields(value, "body").integer("created", 0);
}

// --- Response bodies (the client checks what a node sends, too) ---------------------------------

export function leaseGrantFromWire(value: unknown): LeaseGrant {
  const fields = new Fields(value, "grant");
  return fields.boolean("granted") ? { granted: true, token: fields.integer("token", 0) } : { granted: false, retryAfterMs: fields.integer("retryAfterMs", 0) };
}

export function bucketFromWire(value: unknown, where = "bucket"): BucketRecord {
  const fields = new Fields(value, where);
  return { name: fields.string("name"), created: fields.integer("created", 0) };
}

export function listPageFromWire(value: unknown): ListRecordsPage {
  const fields = new Fields(value, "page");
  const records = fields.list("records", recordFromWire);
  const nextStartAfter = fields.optionalString("nextStartAfter");
  return nextStartAfter === undefined ? { records } : { records, nextStartAfter };
}

export function placementPageFromWire(value: unknown): PlacementPage {
  const fields = new Fields(value, "page");
  const records = fields.list("records", recordFromWire);
  const nextCursor = fields.optionalString("nextCursor");
  return nextCursor === undefined ? { records } : { records, nextCursor };
}

const DISK_STATES = new Set(["ok", "failed", "full"]);

function diskHealthFromWire(value: unknown, where: string): DiskHealth {
  const fields = new Fields(value, where);
  const state = fields.string("state");
  if (!DISK_STATES.has(state)) throw invalid(`${where}.state`, `unknown state ${state}`);
  const reason = fields.optionalString("reason");
  return {
    diskId: fields.string("diskId"),
    state: state as DiskHealth["state"],
    ...(reason === undefined ? {} : { reason }),
    freeBytes: fields.integer("freeBytes", 0),
    usedBytes: fields.integer("usedBytes", 0),
    shardCount: fields.integer("shardCount", 0),
    recordCount: fields.integer("recordCount", 0),
  };
}

export function nodeHealthFromWire(value: unknown): NodeHealth {
  const fields = new Fields(value, "health");
  return { nodeId: fields.string("nodeId"), disks: fields.list("disks", diskHealthFromWire) };
}

export function recordListFromWire(value: unknown, name: string): ObjectRecord[] {
  return new Fields(value, "body").list(name, recordFromWire);
}

export function bucketListFromWire(value: unknown): BucketRecord[] {
  return new Fields(value, "body").list("buckets", bucketFromWire);
}

export function flagFromWire(value: unknown, name: string): boolean {
  return new Fields(value, "body").boolean(name);
}
