/**
 * Object-level S3 operations: PutObject, GetObject and HeadObject (ranges, conditions,
 * metadata), DeleteObject and GetObjectAcl. Bodies stream through the payload checks into
 * the erasure encoder, and out of the degraded-read decoder, never buffered whole.
 */
import { Readable } from "node:stream";
import type { ObjectRecord } from "../../core/storage-api.js";
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

function userMetadata(headers: RequestHeaders): Record<string, string> {
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

function systemMetadata(headers: RequestHeaders): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const name of STORED_HEADERS) {
    const value = headerValue(headers, name);
    if (value !== undefined) metadata[name] = value;
  }
  const encoding = storedContentEncoding(headers);
  if (encoding !== undefined) metadata["content-encoding"] = encoding;
  return metadata;
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
  });
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

/** Resolves the object and applies versionId, partNumber and the conditional headers. */
async function resolveFor(context: RequestContext, endpoint: EndpointOf<"GetObject"> | EndpointOf<"HeadObject">): Promise<ResolvedVersion> {
  const resolved = await context.store.resolve(endpoint.bucket, endpoint.key);
  const { record } = resolved;
  if (endpoint.versionId !== undefined && endpoint.versionId !== "null" && endpoint.versionId !== record.versionId) {
    throw new S3Error("NoSuchVersion", undefined, { extra: { Key: endpoint.key, VersionId: endpoint.versionId } });
  }
  // An object uploaded in one piece is part 1 of 1.
  if (endpoint.partNumber !== undefined && endpoint.partNumber !== 1) throw new S3Error("InvalidPartNumber");
  evaluateConditions(context.headers, { etag: record.etag, lastModified: record.lastModified });
  return resolved;
}

async function headObject(context: RequestContext, endpoint: EndpointOf<"HeadObject">): Promise<void> {
  const { record } = await resolveFor(context, endpoint);
  const range = parseRange(headerValue(context.headers, "range"), record.size);
  setObjectHeaders(context, record, range === undefined);
  sizeHeaders(context, range, record.size);
  await context.reply.code(range === undefined ? 200 : 206).send();
}

function sizeHeaders(context: RequestContext, range: ByteRange | undefined, size: number): void {
  if (range === undefined) {
    context.reply.header("content-length", String(size));
    return;
  }
  context.reply.header("content-length", String(range.end - range.start));
  context.reply.header("content-range", `bytes ${range.start}-${range.end - 1}/${size}`);
}

async function getObject(context: RequestContext, endpoint: EndpointOf<"GetObject">): Promise<void> {
  const resolved = await resolveFor(context, endpoint);
  const { record } = resolved;
  const range = parseRange(headerValue(context.headers, "range"), record.size);
  const start = range?.start ?? 0;
  const end = range?.end ?? record.size;
  // Read the first piece before any header goes out: a read that fails at once (too many
  // shards lost) becomes a clean 503 instead of a cut connection.
  const bytes = context.store.read(resolved, start, end);
  const first = await bytes.next();
  setObjectHeaders(context, record, range === undefined);
  for (const [name, value] of Object.entries(endpoint.responseOverrides)) if (value !== undefined) context.reply.header(name, value);
  sizeHeaders(context, range, record.size);
  async function* rest(): AsyncGenerator<Buffer> {
    if (first.done !== true) yield first.value;
    yield* bytes;
  }
  await context.reply.code(range === undefined ? 200 : 206).send(Readable.from(rest(), { objectMode: false }));
}
