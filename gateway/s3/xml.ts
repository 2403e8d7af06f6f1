/**
 * S3's XML: builders for every response body the gateway sends, and strict parsers (size
 * limits, no DTDs, MalformedXML on anything unexpected) for the request bodies it accepts.
 * Builders concatenate escaped strings in S3's element order; parsing uses fast-xml-parser
 * with entity processing off, decoding only XML's five entities and character references.
 */
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { type ChecksumAlgorithm, CHECKSUM_ALGORITHMS } from "./checksums.js";
import { escapeXml, S3Error, type S3ErrorCode } from "./errors.js";
import { COMPLETE_XML_BYTES_MAX, CREATE_BUCKET_XML_BYTES_MAX, DELETE_OBJECTS_KEYS_MAX, DELETE_XML_BYTES_MAX, PART_NUMBER_MAX, PART_NUMBER_MIN } from "./limits.js";

export { escapeXml };

export const S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/";
const XSI_NAMESPACE = "http://www.w3.org/2001/XMLSchema-instance";
const DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';
/** The region whose LocationConstraint S3 answers as empty. */
const DEFAULT_REGION = "us-east-1";
export const STORAGE_CLASS_DEFAULT = "STANDARD";

// --- Building blocks --------------------------------------------------------------------

type Value = string | number | boolean | Date | undefined;

function formatValue(value: Exclude<Value, undefined>): string {
  if (value instanceof Date) return value.toISOString();
  return escapeXml(String(value));
}

/** `<name>value</name>`, or nothing when the value is undefined. */
function element(name: string, value: Value): string {
  return value === undefined ? "" : `<${name}>${formatValue(value)}</${name}>`;
}

function document(root: string, body: string, attributes = ""): string {
  return `${DECLARATION}<${root} xmlns="${S3_NAMESPACE}"${attributes}>${body}</${root}>`;
}

/** ETags are sent quoted, as in the ETag header. */
export function quoteEtag(etag: string): string {
  return etag.startsWith('"') ? etag : `"${etag}"`;
}

/** encoding-type=url: every byte but unreserved characters and '/' escaped, spaces as '+', as S3 does. */
export function s3UrlEncode(value: string): string {
  return encodeURIComponent(value)
    .replace(/[!'()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%2F/g, "/")
    .replace(/%20/g, "+");
}

type Encode = <T extends string | undefined>(value: T) => T;

/** The identity, or s3UrlEncode when the client asked for encoding-type=url. */
function encoder(encodingType: "url" | undefined): Encode {
  return <T extends string | undefined>(value: T): T => (value === undefined || encodingType === undefined ? value : (s3UrlEncode(value) as T));
}

export interface Owner {
  id: string;
  displayName: string;
}

function ownerXml(owner: Owner): string {
  return `<Owner>${element("ID", owner.id)}${element("DisplayName", owner.displayName)}</Owner>`;
}

export type Checksums = Partial<Record<ChecksumAlgorithm, string>>;

/** ChecksumCRC32, ChecksumSHA256, ... elements in S3's order. */
function checksumsXml(checksums: Checksums | undefined): string {
  if (checksums === undefined) return "";
  return CHECKSUM_ALGORITHMS.map((algorithm) => element(`Checksum${algorithm}`, checksums[algorithm])).join("");
}

// --- Buckets ------------------------------------------------------------------------------

export interface BucketEntry {
  name: string;
  creationDate: Date;
}

export function listAllMyBucketsXml(input: { owner: Owner; buckets: readonly BucketEntry[] }): string {
  const buckets = input.buckets.map((bucket) => `<Bucket>${element("Name", bucket.name)}${element("CreationDate", bucket.creationDate)}</Bucket>`).join("");
  return document("ListAllMyBucketsResult", `${ownerXml(input.owner)}<Buckets>${buckets}</Buckets>`);
}

/** us-east-1 (or no region) is S3's empty LocationConstraint. */
export function locationConstraintXml(region: string | undefined): string {
  const value = region === undefined || region === DEFAULT_REGION ? "" : escapeXml(region);
  return `${DECLARATION}<LocationConstraint xmlns="${S3_NAMESPACE}">${value}</LocationConstraint>`;
}

/** Never-enabled versioning is an empty VersioningConfiguration. */
export function versioningConfigurationXml(status?: "Enabled" | "Suspended"): string {
  return document("VersioningConfiguration", element("Status", status));
}

/** The only ACL Tessera has: the owner with FULL_CONTROL (clients like s3cmd ask before copies). */
export function accessControlPolicyXml(owner: Owner): string {
  const grantee = `<Grantee xmlns:xsi="${XSI_NAMESPACE}" xsi:type="CanonicalUser">${element("ID", owner.id)}${element("DisplayName", owner.displayName)}</Grantee>`;
  return document("AccessControlPolicy", `${ownerXml(owner)}<AccessControlList><Grant>${grantee}<Permission>FULL_CONTROL</Permission></Grant></AccessControlList>`);
}

// --- Listing objects ------------------------------------------------------------------------

export interface ObjectEntry {
  key: string;
  lastModified: Date;
  etag: string;
  size: number;
  storageClass?: string;
  /** Included in V1 always and in V2 when fetch-owner=true. */
  owner?: Owner;
  checksumAlgorithm?: ChecksumAlgorithm;
}

function contentsXml(entries: readonly ObjectEntry[], encode: Encode, withOwner: boolean): string {
  return entries
    .map((entry) => {
      const owner = withOwner && entry.owner !== undefined ? ownerXml(entry.owner) : "";
      return (
        `<Contents>${element("Key", encode(entry.key))}${element("LastModified", entry.lastModified)}${element("ETag", quoteEtag(entry.etag))}` +
        `${element("ChecksumAlgorithm", entry.checksumAlgorithm)}${element("Size", entry.size)}${owner}${element("StorageClass", entry.storageClass ?? STORAGE_CLASS_DEFAULT)}</Contents>`
      );
    })
    .join("");
}

function commonPrefixesXml(prefixes: readonly string[], encode: Encode): string {
  return prefixes.map((prefix) => `<CommonPrefixes>${element("Prefix", encode(prefix))}</CommonPrefixes>`).join("");
}

export interface ListObjectsV2Input {
  bucket: string;
  prefix: string;
  delimiter: string | undefined;
  maxKeys: number;
  encodingType: "url" | undefined;
  isTruncated: boolean;
  continuationToken: string | undefined;
  nextContinuationToken: string | undefined;
  startAfter: string | undefined;
  fetchOwner: boolean;
  contents: readonly ObjectEntry[];
  commonPrefixes: readonly string[];
}

export function listObjectsV2Xml(input: ListObjectsV2Input): string {
  const encode = encoder(input.encodingType);
  const body =
    element("Name", input.bucket) +
    element("Prefix", encode(input.prefix)) +
    element("Delimiter", encode(input.delimiter)) +
    element("MaxKeys", input.maxKeys) +
    element("EncodingType", input.encodingType) +
    element("KeyCount", input.contents.length + input.commonPrefixes.length) +
    element("IsTruncated", input.isTruncated) +
    element("ContinuationToken", input.continuationToken) +
    element("NextContinuationToken", input.nextContinuationToken) +
    element("StartAfter", encode(input.startAfter)) +
    contentsXml(input.contents, encode, input.fetchOwner) +
    commonPrefixesXml(input.commonPrefixes, encode);
  return document("ListBucketResult", body);
}

export interface ListObjectsV1Input {
  bucket: string;
  prefix: string;
  delimiter: string | undefined;
  marker: string | undefined;
  /** Sent only with a delimiter when truncated, as S3 does. */
  nextMarker: string | undefined;
  maxKeys: number;
  encodingType: "url" | undefined;
  isTruncated: boolean;
  contents: readonly ObjectEntry[];
  commonPrefixes: readonly string[];
}

export function listObjectsV1Xml(input: ListObjectsV1Input): string {
  const encode = encoder(input.encodingType);
  const body =
    element("Name", input.bucket) +
    element("Prefix", encode(input.prefix)) +
    element("Marker", encode(input.marker ?? "")) +
    element("NextMarker", encode(input.nextMarker)) +
    element("MaxKeys", input.maxKeys) +
    element("Delimiter", encode(input.delimiter)) +
    element("EncodingType", input.encodingType) +
    element("IsTruncated", input.isTruncated) +
    contentsXml(input.contents, encode, true) +
    commonPrefixesXml(input.commonPrefixes, encode);
  return document("ListBucketResult", body);
}

// --- Objects ---------------------------------------------------------------------------------

export interface DeletedEntry {
  key: string;
  versionId?: string;
  deleteMarker?: boolean;
  deleteMarkerVersionId?: string;
}

export interface DeleteErrorEntry {
  key: string;
  versionId?: string;
  code: S3ErrorCode;
  message: string;
}

/** Quiet mode lists only the errors. */
export function deleteResultXml(input: { deleted: readonly DeletedEntry[]; errors: readonly DeleteErrorEntry[]; quiet: boolean }): string {
  const deleted = input.quiet
    ? ""
    : input.deleted
        .map((entry) => `<Deleted>${element("Key", entry.key)}${element("VersionId", entry.versionId)}${element("DeleteMarker", entry.deleteMarker)}${element("DeleteMarkerVersionId", entry.deleteMarkerVersionId)}</Deleted>`)
        .join("");
  const errors = input.errors.map((entry) => `<Error>${element("Key", entry.key)}${element("VersionId", entry.versionId)}${element("Code", entry.code)}${element("Message", entry.message)}</Error>`).join("");
  return document("DeleteResult", deleted + errors);
}

export function copyObjectResultXml(input: { etag: string; lastModified: Date; checksums?: Checksums }): string {
  return document("CopyObjectResult", element("LastModified", input.lastModified) + element("ETag", quoteEtag(input.etag)) + checksumsXml(input.checksums));
}

export function copyPartResultXml(input: { etag: string; lastModified: Date; checksums?: Checksums }): string {
  return document("CopyPartResult", element("LastModified", input.lastModified) + element("ETag", quoteEtag(input.etag)) + checksumsXml(input.checksums));
}

// --- Multipart uploads -------------------------------------------------------------------

export function initiateMultipartUploadResultXml(input: { bucket: string; key: string; uploadId: string }): string {
  return document("InitiateMultipartUploadResult", element("Bucket", input.bucket) + element("Key", input.key) + element("UploadId", input.uploadId));
}

export function completeMultipartUploadResultXml(input: { location: string; bucket: string; key: string; etag: string; checksums?: Checksums }): string {
  const body = element("Location", input.location) + element("Bucket", input.bucket) + element("Key", input.key) + element("ETag", quoteEtag(input.etag)) + checksumsXml(input.checksums);
  return document("CompleteMultipartUploadResult", body);
}

export interface PartEntry {
  partNumber: number;
  lastModified: Date;
  etag: string;
  size: number;
  checksums?: Checksums;
}

export interface ListPartsInput {
  bucket: string;
  key: string;
  uploadId: string;
  owner: Owner;
  storageClass?: string;
  partNumberMarker: number;
  nextPartNumberMarker: number;
  maxParts: number;
  isTruncated: boolean;
  parts: readonly PartEntry[];
}

export function listPartsResultXml(input: ListPartsInput): string {
  const initiator = `<Initiator>${element("ID", input.owner.id)}${element("DisplayName", input.owner.displayName)}</Initiator>`;
  const parts = input.parts
    .map((part) => `<Part>${element("PartNumber", part.partNumber)}${element("LastModified", part.lastModified)}${element("ETag", quoteEtag(part.etag))}${element("Size", part.size)}${checksumsXml(part.checksums)}</Part>`)
    .join("");
  const body =
    element("Bucket", input.bucket) +
    element("Key", input.key) +
    element("UploadId", input.uploadId) +
    initiator +
    ownerXml(input.owner) +
    element("StorageClass", input.storageClass ?? STORAGE_CLASS_DEFAULT) +
    element("PartNumberMarker", input.partNumberMarker) +
    element("NextPartNumberMarker", input.nextPartNumberMarker) +
    element("MaxParts", input.maxParts) +
    element("IsTruncated", input.isTruncated) +
    parts;
  return document("ListPartsResult", body);
}

export interface UploadEntry {
  key: string;
  uploadId: string;
  initiated: Date;
  owner: Owner;
  storageClass?: string;
}

export interface ListMultipartUploadsInput {
  bucket: string;
  keyMarker: string | undefined;
  uploadIdMarker: string | undefined;
  nextKeyMarker: string | undefined;
  nextUploadIdMarker: string | undefined;
  prefix: string;
  delimiter: string | undefined;
  maxUploads: number;
  encodingType: "url" | undefined;
  isTruncated: boolean;
  uploads: readonly UploadEntry[];
  commonPrefixes: readonly string[];
}

export function listMultipartUploadsResultXml(input: ListMultipartUploadsInput): string {
  const encode = encoder(input.encodingType);
  const uploads = input.uploads
    .map((upload) => {
      const initiator = `<Initiator>${element("ID", upload.owner.id)}${element("DisplayName", upload.owner.displayName)}</Initiator>`;
      return `<Upload>${element("Key", encode(upload.key))}${element("UploadId", upload.uploadId)}${initiator}${ownerXml(upload.owner)}${element("StorageClass", upload.storageClass ?? STORAGE_CLASS_DEFAULT)}${element("Initiated", upload.initiated)}</Upload>`;
    })
    .join("");
  const body =
    element("Bucket", input.bucket) +
    element("KeyMarker", encode(input.keyMarker ?? "")) +
    element("UploadIdMarker", input.uploadIdMarker ?? "") +
    element("NextKeyMarker", encode(input.nextKeyMarker)) +
    element("NextUploadIdMarker", input.nextUploadIdMarker) +
    element("Prefix", encode(input.prefix)) +
    element("Delimiter", encode(input.delimiter)) +
    element("MaxUploads", input.maxUploads) +
    element("EncodingType", input.encodingType) +
    element("IsTruncated", input.isTruncated) +
    uploads +
    commonPrefixesXml(input.commonPrefixes, encode);
  return document("ListMultipartUploadsResult", body);
}

// --- Parsing request bodies ------------------------------------------------------------------

function malformed(detail?: string): S3Error {
  return new S3Error("MalformedXML", detail === undefined ? undefined : `The XML you provided was not well-formed or did not validate against our published schema: ${detail}.`);
}

const PARSER = new XMLParser({
  ignoreAttributes: true,
  // Keys must stay strings ("0001"), keep their spaces, and entities are decoded below.
  parseTagValue: false,
  trimValues: false,
  processEntities: false,
  removeNSPrefix: true,
  ignoreDeclaration: true,
  isArray: (name) => name === "Object" || name === "Part",
});

const ENTITY = /&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|amp|lt|gt|quot|apos)?;?/g;
const NAMED_ENTITIES: Readonly<Record<string, string>> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

/** XML text: line ends normalised, the five entities and character references decoded, nothing else. */
function decodeText(raw: string): string {
  return raw.replace(/\r\n?/g, "\n").replace(ENTITY, (match, entity: string | undefined) => {
    if (entity === undefined || !match.endsWith(";")) throw malformed("a bare '&' or an unknown entity");
    const named = NAMED_ENTITIES[entity];
    if (named !== undefined) return named;
    const code = entity.startsWith("#x") ? Number.parseInt(entity.slice(2), 16) : Number.parseInt(entity.slice(1), 10);
    if (code > 0x10ffff || code === 0 || (code >= 0xd800 && code <= 0xdfff)) throw malformed("an invalid character reference");
    return String.fromCodePoint(code);
  });
}

type Node = Record<string, unknown>;

function parseDocument(body: Buffer | string, limit: number, root: string): Node {
  const length = typeof body === "string" ? Buffer.byteLength(body) : body.length;
  if (length > limit) throw malformed(`the body is larger than ${limit} bytes`);
  const text = typeof body === "string" ? body : body.toString("utf8");
  if (text.trim() === "") throw malformed("the body is empty");
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) throw malformed("document type declarations are not allowed");
  if (XMLValidator.validate(text) !== true) throw malformed();
  const parsed = PARSER.parse(text) as Node;
  const node = parsed[root];
  const elements = Object.keys(parsed).filter((name) => name !== "#text");
  if (elements.length !== 1 || node === undefined) throw malformed(`expected a single <${root}> element`);
  if (node === "") return {};
  if (typeof node !== "object" || node === null || Array.isArray(node)) throw malformed(`expected a single <${root}> element`);
  return node as Node;
}

/** The decoded text of a child element, or undefined when absent. */
function childText(node: Node, name: string): string | undefined {
  const value = node[name];
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw malformed(`<${name}> must hold text`);
  return decodeText(value);
}

function childNodes(node: Node, name: string): Node[] {
  const value = node[name];
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw malformed(`<${name}> is misplaced`);
  return value.map((item: unknown) => {
    if (item === "") return {};
    if (typeof item !== "object" || item === null) throw malformed(`<${name}> must hold elements`);
    return item as Node;
  });
}

export interface DeleteRequest {
  quiet: boolean;
  objects: Array<{ key: string; versionId: string | undefined }>;
}

/** The DeleteObjects body: 1..1000 <Object> with a <Key> each, optional <Quiet>. */
export function parseDeleteXml(body: Buffer | string): DeleteRequest {
  const root = parseDocument(body, DELETE_XML_BYTES_MAX, "Delete");
  const quietText = childText(root, "Quiet")?.trim().toLowerCase();
  if (quietText !== undefined && quietText !== "true" && quietText !== "false") throw malformed("<Quiet> must be true or false");
  const objects = childNodes(root, "Object").map((object) => {
    const key = childText(object, "Key");
    if (key === undefined) throw malformed("every <Object> needs a <Key>");
    return { key, versionId: childText(object, "VersionId")?.trim() || undefined };
  });
  if (objects.length === 0) throw malformed("at least one <Object> is required");
  if (objects.length > DELETE_OBJECTS_KEYS_MAX) throw malformed(`at most ${DELETE_OBJECTS_KEYS_MAX} <Object> elements are allowed`);
  return { quiet: quietText === "true", objects };
}

export interface CompletedPart {
  partNumber: number;
  /** As sent, surrounding quotes and spaces removed. */
  etag: string;
  checksums: Checksums;
}

/** The CompleteMultipartUpload body: parts in strictly ascending order (else InvalidPartOrder). */
export function parseCompleteMultipartUploadXml(body: Buffer | string): CompletedPart[] {
  const root = parseDocument(body, COMPLETE_XML_BYTES_MAX, "CompleteMultipartUpload");
  const parts = childNodes(root, "Part").map((part): CompletedPart => {
    const numberText = childText(part, "PartNumber")?.trim() ?? "";
    const partNumber = /^\d{1,5}$/.test(numberText) ? Number(numberText) : Number.NaN;
    if (!(partNumber >= PART_NUMBER_MIN && partNumber <= PART_NUMBER_MAX)) throw malformed(`<PartNumber> must be an integer from ${PART_NUMBER_MIN} to ${PART_NUMBER_MAX}`);
    const etag = childText(part, "ETag")?.trim().replace(/^"(.*)"$/, "$1");
    if (etag === undefined || etag === "") throw malformed("every <Part> needs an <ETag>");
    const checksums: Checksums = {};
    for (const algorithm of CHECKSUM_ALGORITHMS) {
      const value = childText(part, `Checksum${algorithm}`)?.trim();
      if (value !== undefined) checksums[algorithm] = value;
    }
    return { partNumber, etag, checksums };
  });
  if (parts.length === 0) throw malformed("at least one <Part> is required");
  for (let i = 1; i < parts.length; i++) {
    if ((parts[i] as CompletedPart).partNumber <= (parts[i - 1] as CompletedPart).partNumber) throw new S3Error("InvalidPartOrder");
  }
  return parts;
}

/** The CreateBucket body; an empty body is no configuration. */
export function parseCreateBucketConfigurationXml(body: Buffer | string): { locationConstraint: string | undefined } {
  if ((typeof body === "string" ? body : body.toString("utf8")).trim() === "") return { locationConstraint: undefined };
  const root = parseDocument(body, CREATE_BUCKET_XML_BYTES_MAX, "CreateBucketConfiguration");
  const location = childText(root, "LocationConstraint")?.trim();
  return { locationConstraint: location === "" ? undefined : location };
}

/** Reads a request body for one of the parsers above, refusing more than `maxBytes`. */
export async function readXmlBody(source: AsyncIterable<Uint8Array>, maxBytes: number): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const part of source) {
    total += part.length;
    if (total > maxBytes) throw malformed(`the body is larger than ${maxBytes} bytes`);
    parts.push(part);
  }
  return Buffer.concat(parts);
}
