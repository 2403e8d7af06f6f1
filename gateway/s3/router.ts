/**
 * Routing as data (after Garage's router.rs): a request's method, path, query and host are
 * parsed into an `Endpoint`, a discriminated union with one member per S3 operation,
 * implemented or not, before any handler runs. Handlers then live behind one exhaustive
 * `dispatchEndpoint`, so the compiler checks every operation is answered; one we do not
 * implement answers NotImplemented, never a 404. Every count a client sends is clamped;
 * bucket names and key lengths are checked here, once.
 */
import { S3Error } from "./errors.js";
import {
  BUCKET_NAME_LENGTH_MAX,
  BUCKET_NAME_LENGTH_MIN,
  KEY_BYTES_MAX,
  LIST_KEYS_MAX,
  LIST_PAGE_MIN,
  LIST_PARTS_MAX,
  LIST_UPLOADS_MAX,
  PART_NUMBER_MAX,
  PART_NUMBER_MIN,
} from "./limits.js";
import { headerValue, parseQueryPairs, type RequestHeaders } from "./sigv4.js";

// --- Operations named by a sub-resource alone ---------------------------------------------

interface SubresourceRule {
  readonly method: "GET" | "PUT" | "DELETE" | "POST";
  /** The query parameter that selects the operation (?cors, ?tagging, ...). */
  readonly query: string;
  /** A second parameter that must also be present (?analytics&id=...). */
  readonly requires?: string;
  readonly kind: string;
}

/** Bucket operations whose only input is the bucket; first match wins. */
const BUCKET_RULES = [
  { method: "GET", query: "accelerate", kind: "GetBucketAccelerateConfiguration" },
  { method: "GET", query: "acl", kind: "GetBucketAcl" },
  { method: "GET", query: "analytics", requires: "id", kind: "GetBucketAnalyticsConfiguration" },
  { method: "GET", query: "analytics", kind: "ListBucketAnalyticsConfigurations" },
  { method: "GET", query: "cors", kind: "GetBucketCors" },
  { method: "GET", query: "encryption", kind: "GetBucketEncryption" },
  { method: "GET", query: "intelligent-tiering", requires: "id", kind: "GetBucketIntelligentTieringConfiguration" },
  { method: "GET", query: "intelligent-tiering", kind: "ListBucketIntelligentTieringConfigurations" },
  { method: "GET", query: "inventory", requires: "id", kind: "GetBucketInventoryConfiguration" },
  { method: "GET", query: "inventory", kind: "ListBucketInventoryConfigurations" },
  { method: "GET", query: "lifecycle", kind: "GetBucketLifecycleConfiguration" },
  { method: "GET", query: "location", kind: "GetBucketLocation" },
  { method: "GET", query: "logging", kind: "GetBucketLogging" },
  { method: "GET", query: "metrics", requires: "id", kind: "GetBucketMetricsConfiguration" },
  { method: "GET", query: "metrics", kind: "ListBucketMetricsConfigurations" },
  { method: "GET", query: "notification", kind: "GetBucketNotificationConfiguration" },
  { method: "GET", query: "object-lock", kind: "GetObjectLockConfiguration" },
  { method: "GET", query: "ownershipControls", kind: "GetBucketOwnershipControls" },
  { method: "GET", query: "policy", kind: "GetBucketPolicy" },
  { method: "GET", query: "policyStatus", kind: "GetBucketPolicyStatus" },
  { method: "GET", query: "publicAccessBlock", kind: "GetPublicAccessBlock" },
  { method: "GET", query: "replication", kind: "GetBucketReplication" },
  { method: "GET", query: "requestPayment", kind: "GetBucketRequestPayment" },
  { method: "GET", query: "session", kind: "CreateSession" },
  { method: "GET", query: "tagging", kind: "GetBucketTagging" },
  { method: "GET", query: "versioning", kind: "GetBucketVersioning" },
  { method: "GET", query: "website", kind: "GetBucketWebsite" },
  { method: "PUT", query: "accelerate", kind: "PutBucketAccelerateConfiguration" },
  { method: "PUT", query: "acl", kind: "PutBucketAcl" },
  { method: "PUT", query: "analytics", kind: "PutBucketAnalyticsConfiguration" },
  { method: "PUT", query: "cors", kind: "PutBucketCors" },
  { method: "PUT", query: "encryption", kind: "PutBucketEncryption" },
  { method: "PUT", query: "intelligent-tiering", kind: "PutBucketIntelligentTieringConfiguration" },
  { method: "PUT", query: "inventory", kind: "PutBucketInventoryConfiguration" },
  { method: "PUT", query: "lifecycle", kind: "PutBucketLifecycleConfiguration" },
  { method: "PUT", query: "logging", kind: "PutBucketLogging" },
  { method: "PUT", query: "metrics", kind: "PutBucketMetricsConfiguration" },
  { method: "PUT", query: "notification", kind: "PutBucketNotificationConfiguration" },
  { method: "PUT", query: "object-lock", kind: "PutObjectLockConfiguration" },
  { method: "PUT", query: "ownershipControls", kind: "PutBucketOwnershipControls" },
  { method: "PUT", query: "policy", kind: "PutBucketPolicy" },
  { method: "PUT", query: "publicAccessBlock", kind: "PutPublicAccessBlock" },
  { method: "PUT", query: "replication", kind: "PutBucketReplication" },
  { method: "PUT", query: "requestPayment", kind: "PutBucketRequestPayment" },
  { method: "PUT", query: "tagging", kind: "PutBucketTagging" },
  { method: "PUT", query: "versioning", kind: "PutBucketVersioning" },
  { method: "PUT", query: "website", kind: "PutBucketWebsite" },
  { method: "DELETE", query: "analytics", kind: "DeleteBucketAnalyticsConfiguration" },
  { method: "DELETE", query: "cors", kind: "DeleteBucketCors" },
  { method: "DELETE", query: "encryption", kind: "DeleteBucketEncryption" },
  { method: "DELETE", query: "intelligent-tiering", kind: "DeleteBucketIntelligentTieringConfiguration" },
  { method: "DELETE", query: "inventory", kind: "DeleteBucketInventoryConfiguration" },
  { method: "DELETE", query: "lifecycle", kind: "DeleteBucketLifecycle" },
  { method: "DELETE", query: "metrics", kind: "DeleteBucketMetricsConfiguration" },
  { method: "DELETE", query: "ownershipControls", kind: "DeleteBucketOwnershipControls" },
  { method: "DELETE", query: "policy", kind: "DeleteBucketPolicy" },
  { method: "DELETE", query: "publicAccessBlock", kind: "DeletePublicAccessBlock" },
  { method: "DELETE", query: "replication", kind: "DeleteBucketReplication" },
  { method: "DELETE", query: "tagging", kind: "DeleteBucketTagging" },
  { method: "DELETE", query: "website", kind: "DeleteBucketWebsite" },
  { method: "POST", query: "delete", kind: "DeleteObjects" },
] as const satisfies readonly SubresourceRule[];

/** Object operations whose only inputs are bucket, key and an optional versionId. */
const OBJECT_RULES = [
  { method: "GET", query: "acl", kind: "GetObjectAcl" },
  { method: "GET", query: "attributes", kind: "GetObjectAttributes" },
  { method: "GET", query: "legal-hold", kind: "GetObjectLegalHold" },
  { method: "GET", query: "retention", kind: "GetObjectRetention" },
  { method: "GET", query: "tagging", kind: "GetObjectTagging" },
  { method: "GET", query: "torrent", kind: "GetObjectTorrent" },
  { method: "PUT", query: "acl", kind: "PutObjectAcl" },
  { method: "PUT", query: "legal-hold", kind: "PutObjectLegalHold" },
  { method: "PUT", query: "retention", kind: "PutObjectRetention" },
  { method: "PUT", query: "tagging", kind: "PutObjectTagging" },
  { method: "DELETE", query: "tagging", kind: "DeleteObjectTagging" },
  { method: "POST", query: "uploads", kind: "CreateMultipartUpload" },
  { method: "POST", query: "restore", kind: "RestoreObject" },
  { method: "POST", query: "select", kind: "SelectObjectContent" },
] as const satisfies readonly SubresourceRule[];

export type BucketSubresourceKind = (typeof BUCKET_RULES)[number]["kind"];
export type ObjectSubresourceKind = (typeof OBJECT_RULES)[number]["kind"];

// --- The Endpoint union -------------------------------------------------------------------

export type EncodingType = "url";

/** `x-amz-copy-source`, decoded. */
export interface CopySource {
  bucket: string;
  key: string;
  versionId: string | undefined;
}

/** GetObject's response-* overrides, by the header they set. */
export type ResponseOverrides = Partial<Record<(typeof RESPONSE_OVERRIDES)[number], string>>;
const RESPONSE_OVERRIDES = ["content-type", "content-language", "expires", "cache-control", "content-disposition", "content-encoding"] as const;

interface BucketScoped {
  bucket: string;
}
interface ObjectScoped extends BucketScoped {
  key: string;
}
interface Listing extends BucketScoped {
  prefix: string;
  delimiter: string | undefined;
  encodingType: EncodingType | undefined;
}

export type BucketSubresourceEndpoint = { [K in BucketSubresourceKind]: { kind: K } & BucketScoped }[BucketSubresourceKind];
export type ObjectSubresourceEndpoint = {
  [K in ObjectSubresourceKind]: { kind: K; versionId: string | undefined } & ObjectScoped;
}[ObjectSubresourceKind];

export type Endpoint =
  | { kind: "ListBuckets" }
  | ({ kind: "CreateBucket" } & BucketScoped)
  | ({ kind: "HeadBucket" } & BucketScoped)
  | ({ kind: "DeleteBucket" } & BucketScoped)
  | ({ kind: "PostObject" } & BucketScoped)
  | ({ kind: "ListObjects"; marker: string | undefined; maxKeys: number } & Listing)
  | ({ kind: "ListObjectsV2"; continuationToken: string | undefined; startAfter: string | undefined; maxKeys: number; fetchOwner: boolean } & Listing)
  | ({ kind: "ListObjectVersions"; keyMarker: string | undefined; versionIdMarker: string | undefined; maxKeys: number } & Listing)
  | ({ kind: "ListMultipartUploads"; keyMarker: string | undefined; uploadIdMarker: string | undefined; maxUploads: number } & Listing)
  | ({ kind: "PutObject" } & ObjectScoped)
  | ({ kind: "CopyObject"; source: CopySource } & ObjectScoped)
  | ({ kind: "GetObject"; versionId: string | undefined; partNumber: number | undefined; responseOverrides: ResponseOverrides } & ObjectScoped)
  | ({ kind: "HeadObject"; versionId: string | undefined; partNumber: number | undefined } & ObjectScoped)
  | ({ kind: "DeleteObject"; versionId: string | undefined } & ObjectScoped)
  | ({ kind: "UploadPart"; uploadId: string; partNumber: number } & ObjectScoped)
  | ({ kind: "UploadPartCopy"; uploadId: string; partNumber: number; source: CopySource } & ObjectScoped)
  | ({ kind: "CompleteMultipartUpload"; uploadId: string } & ObjectScoped)
  | ({ kind: "AbortMultipartUpload"; uploadId: string } & ObjectScoped)
  | ({ kind: "ListParts"; uploadId: string; maxParts: number; partNumberMarker: number } & ObjectScoped)
  | { kind: "Options"; bucket: string | undefined; key: string | undefined }
  | BucketSubresourceEndpoint
  | ObjectSubresourceEndpoint;

export type EndpointKind = Endpoint["kind"];
export type EndpointOf<K extends EndpointKind> = Extract<Endpoint, { kind: K }>;
export type EndpointHandlers<R> = { [K in EndpointKind]: (endpoint: EndpointOf<K>) => R };

/** Calls the handler for the endpoint's kind; the handler table must name every kind. */
export function dispatchEndpoint<R>(endpoint: Endpoint, handlers: EndpointHandlers<R>): R {
  const handler = handlers[endpoint.kind] as (endpoint: Endpoint) => R;
  return handler(endpoint);
}

/** For the `default:` of an exhaustive switch: a new kind left unhandled fails to compile. */
export function assertNever(value: never): never {
  throw new Error(`unhandled endpoint ${JSON.stringify(value)}`);
}

/** Endpoints parsed in code rather than by table; a Record so none can be forgotten. */
const CODED_KINDS: Record<Exclude<EndpointKind, BucketSubresourceKind | ObjectSubresourceKind>, true> = {
  ListBuckets: true, CreateBucket: true, HeadBucket: true, DeleteBucket: true, PostObject: true, ListObjects: true,
  ListObjectsV2: true, ListObjectVersions: true, ListMultipartUploads: true, PutObject: true, CopyObject: true,
  GetObject: true, HeadObject: true, DeleteObject: true, UploadPart: true, UploadPartCopy: true,
  CompleteMultipartUpload: true, AbortMultipartUpload: true, ListParts: true, Options: true,
};

/** Every endpoint kind, for tests and metrics labels. */
export const ENDPOINT_KINDS: readonly EndpointKind[] = [
  ...new Set<EndpointKind>([...(Object.keys(CODED_KINDS) as EndpointKind[]), ...BUCKET_RULES.map((rule) => rule.kind), ...OBJECT_RULES.map((rule) => rule.kind)]),
];

// --- Names ----------------------------------------------------------------------------------

const BUCKET_CHARACTERS = /^[a-z0-9.-]+$/;
const ALPHANUMERIC_ENDS = /^[a-z0-9](.*[a-z0-9])?$/;
const IP_ADDRESS = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;
/** Prefixes and suffixes AWS reserves for its own features (punycode, access points, ...). */
const RESERVED_PREFIXES = ["xn--", "sthree-", "amzn-s3-demo-"];
const RESERVED_SUFFIXES = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];

function invalidBucket(bucket: string, reason: string): S3Error {
  return new S3Error("InvalidBucketName", `The specified bucket is not valid: ${reason}.`, { extra: { BucketName: bucket }, resource: `/${bucket}` });
}

/** S3's bucket naming rules (general purpose buckets); InvalidBucketName names the one broken. */
export function validateBucketName(bucket: string): void {
  if (bucket.length < BUCKET_NAME_LENGTH_MIN || bucket.length > BUCKET_NAME_LENGTH_MAX) {
    throw invalidBucket(bucket, `it must be between ${BUCKET_NAME_LENGTH_MIN} and ${BUCKET_NAME_LENGTH_MAX} characters long`);
  }
  if (!BUCKET_CHARACTERS.test(bucket)) throw invalidBucket(bucket, "it may contain only lower-case letters, digits, dots and hyphens");
  if (!ALPHANUMERIC_ENDS.test(bucket)) throw invalidBucket(bucket, "it must begin and end with a letter or digit");
  if (bucket.includes("..")) throw invalidBucket(bucket, "it must not contain two adjacent periods");
  if (IP_ADDRESS.test(bucket)) throw invalidBucket(bucket, "it must not be formatted as an IP address");
  const prefix = RESERVED_PREFIXES.find((reserved) => bucket.startsWith(reserved));
  if (prefix !== undefined) throw invalidBucket(bucket, `it must not start with "${prefix}"`);
  const suffix = RESERVED_SUFFIXES.find((reserved) => bucket.endsWith(reserved));
  if (suffix !== undefined) throw invalidBucket(bucket, `it must not end with "${suffix}"`);
}

/** Keys over KEY_BYTES_MAX UTF-8 bytes: KeyTooLongError. */
export function validateKey(key: string): void {
  const bytes = Buffer.byteLength(key, "utf8");
  if (bytes > KEY_BYTES_MAX) throw new S3Error("KeyTooLongError", undefined, { extra: { Size: String(bytes), MaxSizeAllowed: String(KEY_BYTES_MAX) } });
}

function decodePathPart(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new S3Error("InvalidURI");
  }
}

// --- Query parameters -----------------------------------------------------------------------

type Query = ReadonlyMap<string, string>;

function queryMap(rawQuery: string): Query {
  const map = new Map<string, string>();
  for (const [name, value] of parseQueryPairs(rawQuery)) if (!map.has(name)) map.set(name, value);
  return map;
}

const INTEGER = /^-?\d{1,15}$/;

/** A page size: absent → max; not an integer → InvalidArgument; otherwise clamped to LIST_PAGE_MIN..max. */
export function clampCount(query: Query, name: string, max: number): number {
  const value = query.get(name);
  if (value === undefined || value === "") return max;
  if (!INTEGER.test(value)) throw new S3Error("InvalidArgument", `Provided ${name} not an integer or within integer range`, { extra: { ArgumentName: name, ArgumentValue: value } });
  const count = Number(value);
  if (count < 0) throw new S3Error("InvalidArgument", `Argument ${name} must be an integer between 0 and 2147483647`, { extra: { ArgumentName: name, ArgumentValue: value } });
  return Math.min(max, Math.max(LIST_PAGE_MIN, count));
}

function partNumber(value: string): number {
  const number = INTEGER.test(value) ? Number(value) : Number.NaN;
  if (!(number >= PART_NUMBER_MIN && number <= PART_NUMBER_MAX)) {
    throw new S3Error("InvalidArgument", `Part number must be an integer between ${PART_NUMBER_MIN} and ${PART_NUMBER_MAX}, inclusive`, { extra: { ArgumentName: "partNumber", ArgumentValue: value } });
  }
  return number;
}

function optionalPartNumber(query: Query): number | undefined {
  const value = query.get("partNumber");
  return value === undefined ? undefined : partNumber(value);
}

function partNumberMarker(query: Query): number {
  const value = query.get("part-number-marker");
  if (value === undefined || value === "") return 0;
  if (!/^\d{1,10}$/.test(value)) throw new S3Error("InvalidArgument", "Argument part-number-marker must be an integer between 0 and 2147483647", { extra: { ArgumentName: "part-number-marker", ArgumentValue: value } });
  return Number(value);
}

function encodingType(query: Query): EncodingType | undefined {
  const value = query.get("encoding-type");
  if (value === undefined) return undefined;
  if (value.toLowerCase() !== "url") throw new S3Error("InvalidArgument", "Invalid Encoding Method specified in Request", { extra: { ArgumentName: "encoding-type", ArgumentValue: value } });
  return "url";
}

function listing(bucket: string, query: Query): Listing {
  return { bucket, prefix: query.get("prefix") ?? "", delimiter: nonEmpty(query.get("delimiter")), encodingType: encodingType(query) };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

/** `x-amz-copy-source: [/]bucket/key[?versionId=...]`, the key URL-encoded. */
export function parseCopySource(header: string): CopySource {
  const [path = "", search] = header.split("?", 2);
  const decoded = decodePathPart(path.startsWith("/") ? path.slice(1) : path);
  const slash = decoded.indexOf("/");
  if (slash <= 0 || slash === decoded.length - 1) {
    throw new S3Error("InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey", { extra: { ArgumentName: "x-amz-copy-source", ArgumentValue: header } });
  }
  const bucket = decoded.slice(0, slash);
  const key = decoded.slice(slash + 1);
  validateBucketName(bucket);
  validateKey(key);
  const versionId = search === undefined ? undefined : queryMap(search).get("versionId");
  return { bucket, key, versionId };
}

// --- Routing --------------------------------------------------------------------------------

export interface RouteRequest {
  method: string;
  /** The path exactly as received, percent-encoded, without the query. */
  path: string;
  /** The raw query string without '?'. */
  query: string;
  headers: RequestHeaders;
}

export interface RouterOptions {
  /**
   * Domains under which `<bucket>.<domain>` addresses a bucket (virtual-hosted style),
   * e.g. "s3.example.com" or "localhost". Any other host means path style.
   */
  baseDomains: readonly string[];
}

export interface Route {
  endpoint: Endpoint;
  addressing: "path" | "virtual-hosted";
  /** `/bucket/key` as S3 names it in errors. */
  resource: string;
}

const METHODS = new Set(["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"]);

/** Lower-cased host without port (IPv6 literals keep their brackets). */
function hostName(headers: RequestHeaders): string {
  const host = (headerValue(headers, "host") ?? "").trim().toLowerCase();
  if (host.startsWith("[")) return host.slice(0, host.indexOf("]") + 1);
  const colon = host.lastIndexOf(":");
  return colon === -1 ? host : host.slice(0, colon);
}

function bucketFromHost(host: string, baseDomains: readonly string[]): string | undefined {
  for (const domain of baseDomains) {
    const base = domain.toLowerCase().replace(/^\./, "");
    if (host.length > base.length + 1 && host.endsWith(`.${base}`)) return host.slice(0, host.length - base.length - 1);
  }
  return undefined;
}

/** Parses a request into its Endpoint, or throws the S3Error it must answer. */
export function routeRequest(request: RouteRequest, options: RouterOptions): Route {
  const method = request.method.toUpperCase();
  if (!request.path.startsWith("/")) throw new S3Error("InvalidURI");
  const hostBucket = bucketFromHost(hostName(request.headers), options.baseDomains);
  let bucket: string | undefined;
  let key: string;
  if (hostBucket !== undefined) {
    bucket = hostBucket;
    key = decodePathPart(request.path.slice(1));
  } else {
    const rest = request.path.slice(1);
    const slash = rest.indexOf("/");
    const rawBucket = slash === -1 ? rest : rest.slice(0, slash);
    bucket = rawBucket === "" ? undefined : decodePathPart(rawBucket);
    key = slash === -1 ? "" : decodePathPart(rest.slice(slash + 1));
  }
  const addressing = hostBucket === undefined ? "path" : "virtual-hosted";
  const resource = bucket === undefined ? "/" : key === "" ? `/${bucket}` : `/${bucket}/${key}`;
  if (!METHODS.has(method)) throw new S3Error("MethodNotAllowed", undefined, { resource, extra: { Method: method, ResourceType: key === "" ? "BUCKET" : "OBJECT" } });
  const query = queryMap(request.query);
  let endpoint: Endpoint;
  if (method === "OPTIONS") endpoint = { kind: "Options", bucket, key: key === "" ? undefined : key };
  else if (bucket === undefined) endpoint = routeService(method, resource);
  else {
    validateBucketName(bucket);
    if (key === "") endpoint = routeBucket(method, bucket, query);
    else {
      validateKey(key);
      endpoint = routeObject(method, bucket, key, query, request.headers);
    }
  }
  return { endpoint, addressing, resource };
}

function routeService(method: string, resource: string): Endpoint {
  if (method === "GET") return { kind: "ListBuckets" };
  throw new S3Error("MethodNotAllowed", undefined, { resource, extra: { Method: method, ResourceType: "SERVICE" } });
}

function matchRule<R extends SubresourceRule>(rules: readonly R[], method: string, query: Query): R | undefined {
  return rules.find((rule) => rule.method === method && query.has(rule.query) && (!("requires" in rule) || query.has(rule.requires as string)));
}

function routeBucket(method: string, bucket: string, query: Query): Endpoint {
  const rule = matchRule<(typeof BUCKET_RULES)[number]>(BUCKET_RULES, method, query);
  if (rule !== undefined) return { kind: rule.kind, bucket } as BucketSubresourceEndpoint;
  switch (method) {
    case "HEAD":
      return { kind: "HeadBucket", bucket };
    case "PUT":
      return { kind: "CreateBucket", bucket };
    case "DELETE":
      return { kind: "DeleteBucket", bucket };
    case "POST":
      return { kind: "PostObject", bucket };
  }
  if (query.has("uploads")) {
    const base = listing(bucket, query);
    return { kind: "ListMultipartUploads", ...base, keyMarker: nonEmpty(query.get("key-marker")), uploadIdMarker: nonEmpty(query.get("upload-id-marker")), maxUploads: clampCount(query, "max-uploads", LIST_UPLOADS_MAX) };
  }
  if (query.has("versions")) {
    const base = listing(bucket, query);
    return { kind: "ListObjectVersions", ...base, keyMarker: nonEmpty(query.get("key-marker")), versionIdMarker: nonEmpty(query.get("version-id-marker")), maxKeys: clampCount(query, "max-keys", LIST_KEYS_MAX) };
  }
  const base = listing(bucket, query);
  const maxKeys = clampCount(query, "max-keys", LIST_KEYS_MAX);
  if (query.get("list-type") === "2") {
    const fetchOwner = query.get("fetch-owner") === "true";
    return { kind: "ListObjectsV2", ...base, maxKeys, fetchOwner, continuationToken: nonEmpty(query.get("continuation-token")), startAfter: nonEmpty(query.get("start-after")) };
  }
  return { kind: "ListObjects", ...base, maxKeys, marker: nonEmpty(query.get("marker")) };
}

function routeObject(method: string, bucket: string, key: string, query: Query, headers: RequestHeaders): Endpoint {
  const uploadId = query.get("uploadId");
  const copySource = headerValue(headers, "x-amz-copy-source");
  if (uploadId !== undefined) {
    const scoped = { bucket, key, uploadId };
    if (method === "PUT" && query.has("partNumber")) {
      const number = partNumber(query.get("partNumber") as string);
      if (copySource !== undefined) return { kind: "UploadPartCopy", ...scoped, partNumber: number, source: parseCopySource(copySource) };
      return { kind: "UploadPart", ...scoped, partNumber: number };
    }
    if (method === "POST") return { kind: "CompleteMultipartUpload", ...scoped };
    if (method === "DELETE") return { kind: "AbortMultipartUpload", ...scoped };
    if (method === "GET") return { kind: "ListParts", ...scoped, maxParts: clampCount(query, "max-parts", LIST_PARTS_MAX), partNumberMarker: partNumberMarker(query) };
  }
  const versionId = nonEmpty(query.get("versionId"));
  const rule = matchRule<(typeof OBJECT_RULES)[number]>(OBJECT_RULES, method, query);
  if (rule !== undefined) return { kind: rule.kind, bucket, key, versionId } as ObjectSubresourceEndpoint;
  switch (method) {
    case "GET":
      return { kind: "GetObject", bucket, key, versionId, partNumber: optionalPartNumber(query), responseOverrides: responseOverrides(query) };
    case "HEAD":
      return { kind: "HeadObject", bucket, key, versionId, partNumber: optionalPartNumber(query) };
    case "PUT":
      if (copySource !== undefined) return { kind: "CopyObject", bucket, key, source: parseCopySource(copySource) };
      return { kind: "PutObject", bucket, key };
    case "DELETE":
      return { kind: "DeleteObject", bucket, key, versionId };
  }
  throw new S3Error("NotImplemented", `The operation ${method} on an object with these parameters is not implemented.`, { resource: `/${bucket}/${key}` });
}

function responseOverrides(query: Query): ResponseOverrides {
  const overrides: ResponseOverrides = {};
  for (const header of RESPONSE_OVERRIDES) {
    const value = query.get(`response-${header}`);
    if (value !== undefined) overrides[header] = value;
  }
  return overrides;
}
