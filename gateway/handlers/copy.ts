/**
 * CopyObject and UploadPartCopy: the source is decoded and the destination encoded in one
 * stream (the source's degraded-read decoder feeds the destination's encoder, with its
 * backpressure), so a copy holds a few stripes in memory whatever the object size. Works
 * within and across buckets; a copy onto itself changes metadata (REPLACE) as S3 requires.
 */
import type { ObjectRecord } from "../../core/storage-api.js";
import type { ResolvedVersion } from "../objects/versions.js";
import { checksumHeaderName, CHECKSUM_ALGORITHMS } from "../s3/checksums.js";
import { isS3Error, S3Error } from "../s3/errors.js";
import { COPY_SOURCE_BYTES_MAX } from "../s3/limits.js";
import type { CopySource, EndpointHandlers, EndpointOf } from "../s3/router.js";
import { headerValue, type RequestHeaders } from "../s3/sigv4.js";
import { copyObjectResultXml, copyPartResultXml } from "../s3/xml.js";
import { evaluateConditions } from "./conditions.js";
import { drainBody, sendXml, type RequestContext } from "./context.js";
import { systemMetadata, userMetadata } from "./objects.js";

type Handlers = Partial<EndpointHandlers<Promise<void>>>;

const COPY_CONDITION_HEADERS = ["if-match", "if-none-match", "if-modified-since", "if-unmodified-since"] as const;
const COPY_RANGE = /^bytes=(\d{1,16})-(\d{1,16})$/;

export function copyHandlers(context: RequestContext): Handlers {
  return {
    CopyObject: (endpoint) => copyObject(context, endpoint),
    UploadPartCopy: (endpoint) => uploadPartCopy(context, endpoint),
  };
}

/**
 * The x-amz-copy-source-if-* conditions. They read like GET's conditions, but every failure
 * is 412 PreconditionFailed (S3 has no 304 for a copy).
 */
export function checkCopySourceConditions(headers: RequestHeaders, record: ObjectRecord): void {
  const conditions: Record<string, string> = {};
  for (const name of COPY_CONDITION_HEADERS) {
    const value = headerValue(headers, `x-amz-copy-source-${name}`);
    if (value !== undefined) conditions[name] = value;
  }
  try {
    evaluateConditions(conditions, { etag: record.etag, lastModified: record.lastModified });
  } catch (error) {
    if (isS3Error(error, "NotModified")) throw new S3Error("PreconditionFailed", undefined, { extra: { Condition: "x-amz-copy-source-If-None-Match / If-Modified-Since" } });
    throw error;
  }
}

/** The source version: it must exist (NoSuchBucket, NoSuchKey), match any versionId, and pass the conditions. */
async function resolveSource(context: RequestContext, source: CopySource): Promise<ResolvedVersion> {
  const resolved = await context.store.resolve(source.bucket, source.key);
  if (source.versionId !== undefined && source.versionId !== "null" && source.versionId !== resolved.record.versionId) {
    throw new S3Error("NoSuchVersion", undefined, { extra: { Key: source.key, VersionId: source.versionId } });
  }
  checkCopySourceConditions(context.headers, resolved.record);
  return resolved;
}

/** The x-amz-checksum-* a stored object carries: its bytes are copied unchanged, so they hold. */
function storedChecksums(record: ObjectRecord): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const algorithm of CHECKSUM_ALGORITHMS) {
    const value = record.systemMetadata[checksumHeaderName(algorithm)];
    if (value !== undefined) kept[checksumHeaderName(algorithm)] = value;
  }
  return kept;
}

function metadataDirective(headers: RequestHeaders): "COPY" | "REPLACE" {
  const value = headerValue(headers, "x-amz-metadata-directive")?.trim().toUpperCase() ?? "COPY";
  if (value !== "COPY" && value !== "REPLACE") {
    throw new S3Error("InvalidArgument", "Unknown metadata directive.", { extra: { ArgumentName: "x-amz-metadata-directive", ArgumentValue: value } });
  }
  return value;
}

/** The destination's content type and metadata: the source's (COPY) or the request's (REPLACE). */
function destinationMetadata(headers: RequestHeaders, source: ObjectRecord): { contentType?: string; userMetadata: Record<string, string>; systemMetadata: Record<string, string> } {
  if (metadataDirective(headers) === "COPY") {
    return { ...(source.contentType === undefined ? {} : { contentType: source.contentType }), userMetadata: { ...source.userMetadata }, systemMetadata: { ...source.systemMetadata } };
  }
  const contentType = headerValue(headers, "content-type");
  return { ...(contentType === undefined ? {} : { contentType }), userMetadata: userMetadata(headers), systemMetadata: { ...systemMetadata(headers), ...storedChecksums(source) } };
}

async function copyObject(context: RequestContext, endpoint: EndpointOf<"CopyObject">): Promise<void> {
  await drainBody(context);
  const resolved = await resolveSource(context, endpoint.source);
  const source = resolved.record;
  if (endpoint.source.bucket === endpoint.bucket && endpoint.source.key === endpoint.key && metadataDirective(context.headers) === "COPY") {
    throw new S3Error(
      "InvalidRequest",
      "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
    );
  }
  if (source.size > COPY_SOURCE_BYTES_MAX) {
    throw new S3Error("InvalidRequest", `The specified copy source is larger than the maximum allowable size for a copy source: ${COPY_SOURCE_BYTES_MAX}`);
  }
  const result = await context.store.put({
    bucket: endpoint.bucket,
    key: endpoint.key,
    body: context.store.read(resolved, 0, source.size, { forCopy: true }),
    length: source.size,
    ...destinationMetadata(context.headers, source),
  });
  await sendXml(context, copyObjectResultXml({ etag: result.record.etag, lastModified: new Date(result.record.lastModified) }));
}

/** x-amz-copy-source-range `bytes=first-last` as [start, end); the whole source without it. */
export function parseCopyRange(header: string | undefined, size: number): { start: number; end: number } {
  if (header === undefined) return { start: 0, end: size };
  const match = COPY_RANGE.exec(header.trim());
  const first = Number(match?.[1]);
  const last = Number(match?.[2]);
  if (match === null || first > last) {
    throw new S3Error("InvalidArgument", "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy", {
      extra: { ArgumentName: "x-amz-copy-source-range", ArgumentValue: header },
    });
  }
  if (last >= size) {
    throw new S3Error("InvalidArgument", `Range specified is not valid for source object of size: ${size}`, { extra: { ArgumentName: "x-amz-copy-source-range", ArgumentValue: header } });
  }
  return { start: first, end: last + 1 };
}

async function uploadPartCopy(context: RequestContext, endpoint: EndpointOf<"UploadPartCopy">): Promise<void> {
  await drainBody(context);
  await context.store.uploads.require(endpoint.bucket, endpoint.key, endpoint.uploadId);
  const resolved = await resolveSource(context, endpoint.source);
  const range = parseCopyRange(headerValue(context.headers, "x-amz-copy-source-range"), resolved.record.size);
  if (range.end - range.start > COPY_SOURCE_BYTES_MAX) {
    throw new S3Error("InvalidRequest", `The specified copy source is larger than the maximum allowable size for a copy source: ${COPY_SOURCE_BYTES_MAX}`);
  }
  const part = await context.store.uploads.uploadPart({
    bucket: endpoint.bucket,
    key: endpoint.key,
    uploadId: endpoint.uploadId,
    partNumber: endpoint.partNumber,
    body: context.store.read(resolved, range.start, range.end, { forCopy: true }),
    length: range.end - range.start,
  });
  await sendXml(context, copyPartResultXml({ etag: part.etag, lastModified: new Date(part.lastModified) }));
}
