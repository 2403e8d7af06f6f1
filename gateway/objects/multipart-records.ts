/**
 * Where multipart uploads live (docs/multipart.md). A gateway keeps no state, so an upload is
 * records on the disks of the object it will become (its placement), in reserved buckets
 * whose names start with a dot, which no S3 bucket name may:
 *
 *   upload  bucket ".tessera-uploads-<16 hex of sha256(bucket)>", key = the object key,
 *           versionId = the upload id (HLC: ids sort by initiation); metadata for the object
 *   part    bucket ".tessera-parts", key "<uploadId>/<part number, 5 digits>/<part version id>",
 *           versionId = the part version id; its `parts` holds the one PartRecord
 *
 * The part's shards are ShardIds (objectId, partVersionId, partNumber) on the same disks, so
 * completing an upload writes one record that lists its parts and copies nothing.
 *
 * Records are written at the write quorum W and deleted at it; a record counts as present when
 * at least N - W + 1 of the N disks hold it, so a copy a down node missed the delete of (at
 * most N - W of them) never brings an upload or part back.
 */
import { createHash } from "node:crypto";
import { TesseraError } from "../../core/errors.js";
import type { ObjectRecord, PartRecord, ShardLocation } from "../../core/storage-api.js";
import type { Cluster, ObjectPlacement } from "./cluster.js";
import { writeQuorum } from "./put-object.js";
import { RECORD_READ_TIMEOUT_MS, readRecords, withTimeout } from "./versions.js";

export const UPLOADS_BUCKET_PREFIX = ".tessera-uploads-";
export const PARTS_BUCKET = ".tessera-parts";
/** Hex characters of the bucket-name hash: 64 bits, and the name stays within 63 characters. */
const BUCKET_HASH_HEX_CHARS = 16;
/** Part numbers in part keys are zero-padded to this width, so keys sort by part number. */
const PART_NUMBER_DIGITS = 5;
/** Part records fetched per disk per round trip when reading an upload's parts. */
export const PART_RECORDS_PAGE = 1000;
const UPLOAD_ID = /^[0-9a-f]{32}$/;

/** The reserved bucket holding the upload records of S3 bucket `bucket` (fits 63 characters). */
export function uploadsBucket(bucket: string): string {
  return `${UPLOADS_BUCKET_PREFIX}${createHash("sha256").update(bucket).digest("hex").slice(0, BUCKET_HASH_HEX_CHARS)}`;
}

export function isUploadId(value: string): boolean {
  return UPLOAD_ID.test(value);
}

export function partKey(uploadId: string, partNumber: number, partVersionId: string): string {
  return `${uploadId}/${String(partNumber).padStart(PART_NUMBER_DIGITS, "0")}/${partVersionId}`;
}

export function partPrefix(uploadId: string): string {
  return `${uploadId}/`;
}

/** Disks that must hold a record for it to count as present: N - W + 1. */
export function presenceQuorum(k: number, m: number): number {
  return k + m - writeQuorum(k, m) + 1;
}

/** An upload in progress: its S3 name and its record (placement, metadata, initiation time). */
export interface Upload {
  readonly bucket: string;
  readonly key: string;
  readonly uploadId: string;
  readonly record: ObjectRecord;
}

/** One stored version of one part. */
export interface UploadedPart extends PartRecord {
  readonly lastModified: number;
  /** x-amz-checksum-* of the part, as the client sent them. */
  readonly checksums: Readonly<Record<string, string>>;
  readonly record: ObjectRecord;
}

export function uploadPlacement(upload: Upload): ObjectPlacement {
  return { objectId: Buffer.from(upload.record.objectId, "hex"), objectIdHex: upload.record.objectId, locations: upload.record.placement };
}

export interface NewUpload {
  readonly bucket: string;
  readonly key: string;
  readonly uploadId: string;
  readonly placement: ObjectPlacement;
  readonly ec: ObjectRecord["ec"];
  readonly contentType?: string;
  readonly userMetadata: Readonly<Record<string, string>>;
  readonly systemMetadata: Readonly<Record<string, string>>;
  readonly now: number;
}

export function uploadRecord(input: NewUpload): ObjectRecord {
  return {
    bucket: uploadsBucket(input.bucket),
    key: input.key,
    versionId: input.uploadId,
    revision: 1,
    objectId: input.placement.objectIdHex,
    deleteMarker: false,
    size: 0,
    etag: "",
    lastModified: input.now,
    ...(input.contentType === undefined ? {} : { contentType: input.contentType }),
    userMetadata: input.userMetadata,
    systemMetadata: input.systemMetadata,
    ec: input.ec,
    placement: input.placement.locations,
    parts: [],
  };
}

/** The record of one part version; its metadata names the upload, for the garbage collector. */
export function partRecord(upload: Upload, part: PartRecord, checksums: Readonly<Record<string, string>>, now: number): ObjectRecord {
  return {
    bucket: PARTS_BUCKET,
    key: partKey(upload.uploadId, part.partNumber, part.partVersionId),
    versionId: part.partVersionId,
    revision: 1,
    objectId: upload.record.objectId,
    deleteMarker: false,
    size: part.size,
    etag: part.etag,
    lastModified: now,
    userMetadata: { bucket: upload.bucket, key: upload.key },
    systemMetadata: checksums,
    ec: { ...upload.record.ec, blockBytes: part.blockBytes },
    placement: upload.record.placement,
    parts: [part],
  };
}

function uploadedPart(record: ObjectRecord): UploadedPart | undefined {
  const part = record.parts[0];
  if (part === undefined) return undefined;
  return { ...part, lastModified: record.lastModified, checksums: record.systemMetadata, record };
}

/**
 * "present" when at least presenceQuorum disks hold it; "absent" when that many cannot hold
 * it; ERR_READ_QUORUM when too many disks were silent to tell.
 */
export function presence(holders: number, unanswered: number, k: number, m: number): "present" | "absent" {
  const needed = presenceQuorum(k, m);
  if (holders >= needed) return "present";
  if (unanswered > writeQuorum(k, m) - needed) throw new TesseraError("ERR_READ_QUORUM", `${unanswered} disks did not answer: cannot tell whether the upload exists`);
  return "absent";
}

/** Every present upload of bucket/key, oldest first. */
export async function uploadsOfKey(cluster: Cluster, bucket: string, key: string, locations: readonly ShardLocation[] = cluster.place(bucket, key).locations): Promise<Upload[]> {
  const { k, m } = cluster.map.ec;
  const reads = await readRecords(cluster, uploadsBucket(bucket), key, locations);
  const byId = new Map<string, { record: ObjectRecord; holders: number }>();
  for (const read of reads) {
    for (const record of read.records ?? []) {
      const seen = byId.get(record.versionId);
      byId.set(record.versionId, { record: seen === undefined || record.revision > seen.record.revision ? record : seen.record, holders: (seen?.holders ?? 0) + 1 });
    }
  }
  const unanswered = reads.filter((read) => read.records === undefined).length;
  // A record of another key whose bucket name hashes alike would carry another object id.
  const objectIdHex = cluster.place(bucket, key).objectIdHex;
  const present = [...byId.values()].filter((entry) => entry.holders >= presenceQuorum(k, m) && entry.record.objectId === objectIdHex);
  if (present.length === 0 && unanswered === reads.length) throw new TesseraError("ERR_NODE_UNAVAILABLE", `no disk of ${bucket}/${key} answered`);
  return present.map(({ record }) => ({ bucket, key, uploadId: record.versionId, record })).sort((a, b) => (a.uploadId < b.uploadId ? -1 : 1));
}

/** The upload, or undefined when it does not exist (never created, completed or aborted). */
export async function findUpload(cluster: Cluster, bucket: string, key: string, uploadId: string): Promise<Upload | undefined> {
  if (!isUploadId(uploadId)) return undefined;
  const { k, m } = cluster.map.ec;
  const placement = cluster.place(bucket, key);
  const reads = await readRecords(cluster, uploadsBucket(bucket), key, placement.locations);
  const holding = reads.flatMap((read) => (read.records ?? []).filter((record) => record.versionId === uploadId));
  const unanswered = reads.filter((read) => read.records === undefined).length;
  if (presence(holding.length, unanswered, k, m) === "absent") return undefined;
  const record = holding.reduce((a, b) => (b.revision > a.revision ? b : a));
  if (record.objectId !== placement.objectIdHex) return undefined;
  return { bucket, key, uploadId, record };
}

/** Every part record of the upload on one disk (all versions), page by page. */
async function partRecordsOnDisk(cluster: Cluster, location: ShardLocation, uploadId: string): Promise<ObjectRecord[]> {
  const node = cluster.node(location.nodeId);
  if (node === undefined) throw new TesseraError("ERR_NODE_UNAVAILABLE", `no node ${location.nodeId}`);
  const records: ObjectRecord[] = [];
  let startAfter: string | undefined;
  do {
    const options = { bucket: PARTS_BUCKET, prefix: partPrefix(uploadId), limit: PART_RECORDS_PAGE, ...(startAfter === undefined ? {} : { startAfter }) };
    const page = await withTimeout(node.listRecords(location.diskId, options), RECORD_READ_TIMEOUT_MS, `node ${location.nodeId}`);
    records.push(...page.records);
    startAfter = page.nextStartAfter;
  } while (startAfter !== undefined);
  return records;
}

export interface PartRecordsRead {
  /** Every part record seen on any disk of the upload, with the disks that hold it. */
  readonly seen: ReadonlyMap<string, { readonly record: ObjectRecord; readonly disks: readonly ShardLocation[] }>;
  /** Disks that did not answer. */
  readonly unanswered: number;
}

/** Reads every part record of the upload (all versions) from its disks. */
export async function readPartRecords(cluster: Cluster, upload: Upload): Promise<PartRecordsRead> {
  const locations = upload.record.placement;
  const results = await Promise.allSettled(locations.map((location) => partRecordsOnDisk(cluster, location, upload.uploadId)));
  const seen = new Map<string, { record: ObjectRecord; disks: ShardLocation[] }>();
  results.forEach((result, index) => {
    if (result.status !== "fulfilled") return;
    for (const record of result.value) {
      const entry = seen.get(record.key) ?? { record, disks: [] };
      entry.disks.push(locations[index] as ShardLocation);
      seen.set(record.key, entry);
    }
  });
  return { seen, unanswered: results.filter((result) => result.status === "rejected").length };
}

/** The part versions present on enough disks (ERR_READ_QUORUM when too many were silent to tell). */
export function presentParts(cluster: Cluster, read: PartRecordsRead): UploadedPart[] {
  const { k, m } = cluster.map.ec;
  return [...read.seen.values()]
    .filter((entry) => presence(entry.disks.length, read.unanswered, k, m) === "present")
    .flatMap((entry) => {
      const part = uploadedPart(entry.record);
      return part === undefined ? [] : [part];
    });
}

/** The newest present version of each part number, by part number. */
export function newestParts(parts: readonly UploadedPart[]): Map<number, UploadedPart> {
  const newest = new Map<number, UploadedPart>();
  for (const part of parts) {
    const seen = newest.get(part.partNumber);
    if (seen === undefined || part.partVersionId > seen.partVersionId) newest.set(part.partNumber, part);
  }
  return newest;
}
