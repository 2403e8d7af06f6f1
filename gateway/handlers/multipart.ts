/**
 * Multipart upload operations: CreateMultipartUpload, UploadPart, CompleteMultipartUpload
 * (S3's part-list rules and the write conditions), AbortMultipartUpload, ListParts and
 * ListMultipartUploads. UploadPartCopy is in copy.ts. Part bodies stream through the payload
 * checks into the erasure encoder exactly as PutObject bodies do.
 */
import type { PartRecord } from "../../core/storage-api.js";
import { OBJECT_BYTES_MAX } from "../../core/limits.js";
import { listUploads } from "../objects/multipart-list.js";
import type { UploadedPart } from "../objects/multipart-records.js";
import { checksumHeaderName, CHECKSUM_ALGORITHMS, parseChecksumAlgorithm, parseContentMd5, verifyContentMd5 } from "../s3/checksums.js";
import { S3Error } from "../s3/errors.js";
import { COMPLETE_XML_BYTES_MAX, PART_BYTES_MAX, PART_BYTES_MIN } from "../s3/limits.js";
import { openPayload } from "../s3/payload.js";
import type { EndpointHandlers, EndpointOf } from "../s3/router.js";
import { headerValue } from "../s3/sigv4.js";
import {
  completeMultipartUploadResultXml,
  initiateMultipartUploadResultXml,
  listMultipartUploadsResultXml,
  listPartsResultXml,
  parseCompleteMultipartUploadXml,
  quoteEtag,
  readXmlBody,
  type Checksums,
  type CompletedPart,
} from "../s3/xml.js";
import { drainBody, sendEmpty, sendXml, type RequestContext } from "./context.js";
import { systemMetadata, userMetadata, writeCondition } from "./objects.js";

type Handlers = Partial<EndpointHandlers<Promise<void>>>;

export function multipartHandlers(context: RequestContext): Handlers {
  return {
    CreateMultipartUpload: (endpoint) => createUpload(context, endpoint),
    UploadPart: (endpoint) => uploadPart(context, endpoint),
    CompleteMultipartUpload: (endpoint) => completeUpload(context, endpoint),
    AbortMultipartUpload: async (endpoint) => {
      await context.store.uploads.abort(endpoint.bucket, endpoint.key, endpoint.uploadId);
      await sendEmpty(context, 204);
    },
    ListParts: (endpoint) => listParts(context, endpoint),
    ListMultipartUploads: (endpoint) => listMultipartUploads(context, endpoint),
  };
}

async function createUpload(context: RequestContext, endpoint: EndpointOf<"CreateMultipartUpload">): Promise<void> {
  await drainBody(context);
  const contentType = headerValue(context.headers, "content-type");
  const upload = await context.store.uploads.create({
    bucket: endpoint.bucket,
    key: endpoint.key,
    ...(contentType === undefined ? {} : { contentType }),
    userMetadata: userMetadata(context.headers),
    systemMetadata: systemMetadata(context.headers),
  });
  const algorithm = headerValue(context.headers, "x-amz-checksum-algorithm");
  if (algorithm !== undefined && parseChecksumAlgorithm(algorithm) !== undefined) context.reply.header("x-amz-checksum-algorithm", algorithm.toUpperCase());
  await sendXml(context, initiateMultipartUploadResultXml({ bucket: endpoint.bucket, key: endpoint.key, uploadId: upload.uploadId }));
}

async function uploadPart(context: RequestContext, endpoint: EndpointOf<"UploadPart">): Promise<void> {
  const { headers } = context;
  const contentMd5 = headerValue(headers, "content-md5");
  const expectedMd5 = contentMd5 === undefined ? undefined : parseContentMd5(contentMd5);
  const payload = openPayload(context.request.raw, context.auth, headers);
  if (payload.length === undefined) throw new S3Error("MissingContentLength");
  if (payload.length > PART_BYTES_MAX) throw new S3Error("EntityTooLarge", undefined, { extra: { ProposedSize: String(payload.length), MaxSizeAllowed: String(PART_BYTES_MAX) } });
  const part = await context.store.uploads.uploadPart({
    bucket: endpoint.bucket,
    key: endpoint.key,
    uploadId: endpoint.uploadId,
    partNumber: endpoint.partNumber,
    body: payload.body,
    length: payload.length,
    finalize: async (md5) => {
      if (expectedMd5 !== undefined) verifyContentMd5(expectedMd5, md5);
      const checksum = await payload.checksum;
      return checksum === undefined ? {} : { [checksumHeaderName(checksum.algorithm)]: checksum.value };
    },
  });
  context.reply.header("etag", quoteEtag(part.etag));
  for (const [name, value] of Object.entries(part.checksums)) context.reply.header(name, value);
  await sendEmpty(context);
}

/** S3's rules on the client's part list, against the newest version of each uploaded part. */
export function chooseParts(uploadId: string, requested: readonly CompletedPart[], uploaded: ReadonlyMap<number, UploadedPart>): PartRecord[] {
  const chosen = requested.map((wanted): PartRecord => {
    const part = uploaded.get(wanted.partNumber);
    if (part === undefined || part.etag !== wanted.etag.toLowerCase()) throw invalidPart(uploadId, wanted.partNumber, wanted.etag);
    for (const algorithm of CHECKSUM_ALGORITHMS) {
      const sent = wanted.checksums[algorithm];
      const stored = part.checksums[checksumHeaderName(algorithm)];
      if (sent !== undefined && stored !== undefined && sent !== stored) throw invalidPart(uploadId, wanted.partNumber, wanted.etag);
    }
    return part;
  });
  chosen.forEach((part, index) => {
    if (index < chosen.length - 1 && part.size < PART_BYTES_MIN) {
      throw new S3Error("EntityTooSmall", undefined, { extra: { ProposedSize: String(part.size), MinSizeAllowed: String(PART_BYTES_MIN), PartNumber: String(part.partNumber), ETag: quoteEtag(part.etag) } });
    }
  });
  const size = chosen.reduce((sum, part) => sum + part.size, 0);
  if (size > OBJECT_BYTES_MAX) throw new S3Error("EntityTooLarge", undefined, { extra: { ProposedSize: String(size), MaxSizeAllowed: String(OBJECT_BYTES_MAX) } });
  return chosen;
}

function invalidPart(uploadId: string, partNumber: number, etag: string): S3Error {
  return new S3Error("InvalidPart", undefined, { extra: { UploadId: uploadId, PartNumber: String(partNumber), ETag: quoteEtag(etag) } });
}

async function completeUpload(context: RequestContext, endpoint: EndpointOf<"CompleteMultipartUpload">): Promise<void> {
  const condition = writeCondition(context.headers);
  const body = await readXmlBody(openPayload(context.request.raw, context.auth, context.headers).body, COMPLETE_XML_BYTES_MAX);
  const requested = parseCompleteMultipartUploadXml(body);
  const record = await context.store.uploads.complete({
    bucket: endpoint.bucket,
    key: endpoint.key,
    uploadId: endpoint.uploadId,
    choose: (uploaded) => chooseParts(endpoint.uploadId, requested, uploaded),
    ...(condition === undefined ? {} : { condition }),
  });
  const host = headerValue(context.headers, "host") ?? "localhost";
  const location = `http://${host}/${endpoint.bucket}/${encodeURIComponent(endpoint.key).replace(/%2F/g, "/")}`;
  await sendXml(context, completeMultipartUploadResultXml({ location, bucket: endpoint.bucket, key: endpoint.key, etag: record.etag }));
}

function partChecksums(part: UploadedPart): Checksums {
  const checksums: Checksums = {};
  for (const [name, value] of Object.entries(part.checksums)) {
    const algorithm = parseChecksumAlgorithm(name);
    if (algorithm !== undefined) checksums[algorithm] = value;
  }
  return checksums;
}

async function listParts(context: RequestContext, endpoint: EndpointOf<"ListParts">): Promise<void> {
  const { parts } = await context.store.uploads.listParts(endpoint.bucket, endpoint.key, endpoint.uploadId);
  const after = parts.filter((part) => part.partNumber > endpoint.partNumberMarker);
  const page = after.slice(0, endpoint.maxParts);
  const xml = listPartsResultXml({
    bucket: endpoint.bucket,
    key: endpoint.key,
    uploadId: endpoint.uploadId,
    owner: context.owner,
    partNumberMarker: endpoint.partNumberMarker,
    nextPartNumberMarker: page[page.length - 1]?.partNumber ?? endpoint.partNumberMarker,
    maxParts: endpoint.maxParts,
    isTruncated: after.length > page.length,
    parts: page.map((part) => ({ partNumber: part.partNumber, lastModified: new Date(part.lastModified), etag: part.etag, size: part.size, checksums: partChecksums(part) })),
  });
  await sendXml(context, xml);
}

async function listMultipartUploads(context: RequestContext, endpoint: EndpointOf<"ListMultipartUploads">): Promise<void> {
  await context.store.requireBucket(endpoint.bucket);
  const page = await listUploads(context.store.cluster, {
    bucket: endpoint.bucket,
    prefix: endpoint.prefix,
    ...(endpoint.delimiter === undefined ? {} : { delimiter: endpoint.delimiter }),
    ...(endpoint.keyMarker === undefined ? {} : { keyMarker: endpoint.keyMarker }),
    ...(endpoint.uploadIdMarker === undefined ? {} : { uploadIdMarker: endpoint.uploadIdMarker }),
    limit: endpoint.maxUploads,
  });
  const xml = listMultipartUploadsResultXml({
    bucket: endpoint.bucket,
    keyMarker: endpoint.keyMarker,
    uploadIdMarker: endpoint.uploadIdMarker,
    nextKeyMarker: page.nextKeyMarker,
    nextUploadIdMarker: page.nextUploadIdMarker,
    prefix: endpoint.prefix,
    delimiter: endpoint.delimiter,
    maxUploads: endpoint.maxUploads,
    encodingType: endpoint.encodingType,
    isTruncated: page.truncated,
    uploads: page.entries.flatMap((entry) => (entry.upload === undefined ? [] : [{ key: entry.upload.key, uploadId: entry.upload.uploadId, initiated: new Date(entry.upload.record.lastModified), owner: context.owner }])),
    commonPrefixes: page.entries.flatMap((entry) => (entry.prefix === undefined ? [] : [entry.prefix])),
  });
  await sendXml(context, xml);
}
