/**
 * Object-level S3 operations: PutObject, GetObject and HeadObject (ranges, conditions,
 * metadata), DeleteObject and GetObjectAcl. Bodies stream through the payload checks into
 * the erasure encoder, and out of the degraded-read decoder, never buffered whole.
 */
import { Readable } from "node:stream";
import type { ObjectRecord } from "../../core/storage-api.js";
import type { WriteCondition } from "../objects/conditional-commit.js";
import { partOffsets } from "../objects/get-object.js";
import type { ResolvedVersion } from "../objects/versions.js";
import { checksumHeaderName, CHECKSUM_ALGORITHMS, parseContentMd5, verifyContentMd5 } from "../s3/checksums.js";
import { S3Error } from "../s3/errors.js";
import { PUT_OBJECT_BYTES_MAX, USER_METADATA_BYTES_MAX } from "../s3/limits.js";
import { openPayload, storedContentEncoding } from "../s3/payload.js";
import type { EndpointHandlers, EndpointOf } from "../s3/router.js";
import { headerValue, type RequestHeaders } from "../s3/sigv4.js";
import { accessControlPolicyXml, quoteEtag } from "../s3/xml.js";
import { sendEmpty, sendXml, type RequestContext } from "./context.js";
import { evaluateConditions } from "./conditions.js";
import { parseRange, type ByteRange } from "./range.js";

type Handlers = Partial<EndpointHandlers<Promise<void>>>;

/** Headers stored with an object and returned on GET/HEAD, as S3 does. */
const STORED_HEADERS = ["content-disposition", "cache-control", "expires", "content-language"] as const;
const USER_METADATA_PREFIX = "x-amz-meta-";
/** S3's Content-Type for objects stored without one. */
const CONTENT_TYPE_DEFAULT = "binary/octet-stream";

export function objectHandlers(context: RequestContext): Handlers {
  return {
    PutObject: (endpoint) => putObject(context, endpoint),
    GetObject: (endpoint) => getObject(context, endpoint),
    HeadObject: (endpoint) => headObject(context, endpoint),
    DeleteObject: async (endpoint) => {
      await context.store.delete(endpoint.bucket, endpoint.key);
      await sendEmpty(context, 204);
    },
    GetObjectAcl: async (endpoint) => {
      await context.store.resolve(endpoint.bucket, endpoint.key);
      await sendXml(context, accessControlPolicyXml(context.owner));
    },
  };
}

export function userMetadata(headers: RequestHeaders): Record<string, string> {
  const metadata: Record<string, string> = {};
  let bytes = 0;
  for (const name of Object.keys(headers)) {
    if (!name.startsWith(USER_METADATA_PREFIX)) continue;
    const value = headerValue(headers, name) ?? "";
    const field = name.slice(USER_METADATA_PREFIX.length);
    metadata[field] = value;
    bytes += Buffer.byteLength(field) + Buffer.byteLength(value);
  }
  if (bytes > USER_METADATA_BYTES_MAX) throw new S3Error("MetadataTooLarge", undefined, { extra: { MaxSizeAllowed: String(USER_METADATA_BYTES_MAX), Size: String(bytes) } });
  return metadata;
}

export function systemMetadata(headers: RequestHeaders): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const name of STORED_HEADERS) {
    const value = headerValue(headers, name);
    if (value !== undefined) metadata[name] = value;
  }
  const encoding = storedContentEncoding(headers);
  if (encoding !== undefined) metadata["content-encoding"] = encoding;
  return metadata;
}

/** An ETag from a conditional header: quotes and a weak prefix removed. */
function bareEtag(value: string): string {
  return value.trim().replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
}

/**
 * PutObject's and CompleteMultipartUpload's write conditions: `If-None-Match: *` (create
 * only) and `If-Match: <etag>` (replace only that version). S3 supports no other If-None-Match.
 */
export function writeCondition(headers: RequestHeaders): WriteCondition | undefined {
  const ifNoneMatch = headerValue(headers, "if-none-match");
  const ifMatch = headerValue(headers, "if-match");
  if (ifNoneMatch !== undefined && ifNoneMatch.trim() !== "*") {
    throw new S3Error("NotImplemented", "A header you provided implies functionality that is not implemented: If-None-Match accepts only *.", { extra: { Header: "If-None-Match" } });
  }
  if (ifNoneMatch === undefined && ifMatch === undefined) return undefined;
  return { ...(ifNoneMatch === undefined ? {} : { ifNoneMatch: true }), ...(ifMatch === undefined ? {} : { ifMatch: bareEtag(ifMatch) }) };
}

async function putObject(context: RequestContext, endpoint: EndpointOf<"PutObject">): Promise<void> {
  const { headers } = context;
  const contentMd5 = headerValue(headers, "content-md5");
  const expectedMd5 = contentMd5 === undefined ? undefined : parseContentMd5(contentMd5);
  const metadata = userMetadata(headers);
  const payload = openPayload(context.request.raw, context.auth, headers);
  if (payload.length === undefined) throw new S3Error("MissingContentLength");
  if (payload.length > PUT_OBJECT_BYTES_MAX) throw new S3Error("EntityTooLarge", undefined, { extra: { ProposedSize: String(payload.length), MaxSizeAllowed: String(PUT_OBJECT_BYTES_MAX) } });
  const contentType = headerValue(headers, "content-type");
  const condition = writeCondition(headers);
  const result = await context.store.put({
    bucket: endpoint.bucket,
    key: endpoint.key,
    body: payload.body,
    length: payload.length,
    ...(contentType === undefined ? {} : { contentType }),
    userMetadata: metadata,
    systemMetadata: systemMetadata(headers),
    finalize: async (md5) => {
      if (expectedMd5 !== undefined) verifyContentMd5(expectedMd5, md5);
      const checksum = await payload.checksum;
      return checksum === undefined ? {} : { [checksumHeaderName(checksum.algorithm)]: checksum.value };
    },
  }, condition);
  context.reply.header("etag", quoteEtag(result.record.etag));
  for (const [name, value] of Object.entries(result.record.systemMetadata)) if (name.startsWith("x-amz-checksum-")) context.reply.header(name, value);
  await sendEmpty(context);
}

/** `whole`: the response carries the whole object, so its stored checksum applies to it. */
function setObjectHeaders(context: RequestContext, record: ObjectRecord, whole: boolean): void {
  const reply = context.reply;
  reply.header("etag", quoteEtag(record.etag));
  reply.header("last-modified", new Date(record.lastModified).toUTCString());
  reply.header("accept-ranges", "bytes");
  reply.header("content-type", record.contentType ?? CONTENT_TYPE_DEFAULT);
  for (const [name, value] of Object.entries(record.userMetadata)) reply.header(`${USER_METADATA_PREFIX}${name}`, value);
  const checksumsWanted = whole && headerValue(context.headers, "x-amz-checksum-mode")?.toUpperCase() === "ENABLED";
  const checksumHeaders = new Set(CHECKSUM_ALGORITHMS.map(checksumHeaderName));
  for (const [name, value] of Object.entries(record.systemMetadata)) {
    if (!checksumHeaders.has(name) || checksumsWanted) reply.header(name, value);
  }
}

/** The bytes a GET or HEAD serves: the whole object, a Range, or one part (partNumber). */
interface Selection {
  readonly resolved: ResolvedVersion;
  /** Undefined: the whole object. */
  readonly range: ByteRange | undefined;
  /** With partNumber on a multipart object: its part count (x-amz-mp-parts-count). */
  readonly partsCount: number | undefined;
}

/** Resolves the object and applies versionId, partNumber, Range and the conditional headers. */
async function select(context: RequestContext, endpoint: EndpointOf<"GetObject"> | EndpointOf<"HeadObject">): Promise<Selection> {
  const resolved = await context.store.resolve(endpoint.bucket, endpoint.key);
  const { record } = resolved;
  if (endpoint.versionId !== undefined && endpoint.versionId !== "null" && endpoint.versionId !== record.versionId) {
    throw new S3Error("NoSuchVersion", undefined, { extra: { Key: endpoint.key, VersionId: endpoint.versionId } });
  }
  evaluateConditions(context.headers, { etag: record.etag, lastModified: record.lastModified });
  const rangeHeader = headerValue(context.headers, "range");
  if (endpoint.partNumber === undefined) return { resolved, range: parseRange(rangeHeader, record.size), partsCount: undefined };
  if (rangeHeader !== undefined) throw new S3Error("InvalidRequest", "Cannot specify both Range header and partNumber query parameter");
  // An object uploaded in one piece is part 1 of 1.
  if (record.parts.length === 0) {
    if (endpoint.partNumber !== 1) throw new S3Error("InvalidPartNumber");
    return { resolved, range: undefined, partsCount: undefined };
  }
  const part = record.parts[endpoint.partNumber - 1];
  if (part === undefined) throw new S3Error("InvalidPartNumber", undefined, { extra: { PartNumberRequested: String(endpoint.partNumber), ActualPartCount: String(record.parts.length) } });
  const start = partOffsets(record.parts)[endpoint.partNumber - 1] as number;
  return { resolved, range: { start, end: start + part.size }, partsCount: record.parts.length };
}

async function headObject(context: RequestContext, endpoint: EndpointOf<"HeadObject">): Promise<void> {
  const { resolved, range, partsCount } = await select(context, endpoint);
  setObjectHeaders(context, resolved.record, range === undefined);
  sizeHeaders(context, range, resolved.record.size, partsCount);
  await context.reply.code(range === undefined ? 200 : 206).send();
}

function sizeHeaders(context: RequestContext, range: ByteRange | undefined, size: number, partsCount: number | undefined): void {
  if (partsCount !== undefined) context.reply.header("x-amz-mp-parts-count", String(partsCount));
  if (range === undefined) {
    context.reply.header("content-length", String(size));
    return;
  }
  context.reply.header("content-length", String(range.end - range.start));
  // An empty part has no byte positions to name; S3 still answers with the part (206).
  if (range.end > range.start) context.reply.header("content-range", `bytes ${range.start}-${range.end - 1}/${size}`);
}

async function getObject(context: RequestContext, endpoint: EndpointOf<"GetObject">): Promise<void> {
  const { resolved, range, partsCount } = await select(context, endpoint);
  const { record } = resolved;
  const start = range?.start ?? 0;
  const end = range?.end ?? record.size;
  // Read the first piece before any header goes out: a read that fails at once (too many
  // shards lost) becomes a clean 503 instead of a cut connection.
  const bytes = context.store.read(resolved, start, end);
  const first = await bytes.next();
  setObjectHeaders(context, record, range === undefined);
  for (const [name, value] of Object.entries(endpoint.responseOverrides)) if (value !== undefined) context.reply.header(name, value);
  sizeHeaders(context, range, record.size, partsCount);
  const status = range === undefined ? 200 : 206;
  if (first.done === true || first.value.length === end - start) {
    // The whole answer is at hand (an empty or small object): one Buffer goes out with the
    // headers in one socket write, instead of a stream's headers and pieces in several. The
    // decoder is closed once the response is done with its bytes (they may be its buffer).
    context.reply.raw.once("close", () => void bytes.return(undefined).catch(() => undefined));
    await context.reply.code(status).send(first.done === true ? Buffer.alloc(0) : first.value);
    return;
  }
  async function* rest(): AsyncGenerator<Buffer> {
    if (first.done !== true) yield first.value;
    yield* bytes;
  }
  const stream = Readable.from(rest(), { objectMode: false });
  // A response cut before rest() started (the client went away) never returns `bytes`
  // through it: its decoder would keep its shard readers and its stripe budget share.
  stream.once("close", () => void bytes.return(undefined).catch(() => undefined));
  await context.reply.code(status).send(stream);
}
