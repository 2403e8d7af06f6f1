/**
 * Multipart uploads over the records of multipart-records.ts: create, upload a part (erasure
 * coded as it streams, onto the object's own disks), list parts, complete (one record that
 * lists the parts; nothing is copied) and abort. Completion and abort run under the key's
 * lock (lease-lock.ts), so they cannot interleave, and a completion may carry a write condition.
 * The S3 rules on the client's part list (InvalidPart, EntityTooSmall) are the caller's.
 */
import { createHash } from "node:crypto";
import { CHECKSUM_ALGORITHM_DEFAULT } from "../../core/checksum.js";
import { TesseraError } from "../../core/errors.js";
import type { ObjectRecord, PartRecord } from "../../core/storage-api.js";
import { decodeVersionId, type HybridClock } from "../hlc.js";
import type { Cluster } from "./cluster.js";
import { checkWriteCondition, commitFenced, readCurrent, type WriteCondition } from "./conditional-commit.js";
import { withKeyLock } from "./lease-lock.js";
import { removeUploadParts, removeUploadRecord } from "./multipart-cleanup.js";
import {
  findUpload,
  newestParts,
  partRecord,
  presentParts,
  readPartRecords,
  uploadPlacement,
  uploadRecord,
  type Upload,
  type UploadedPart,
} from "./multipart-records.js";
import { commitRecords, discardShards, encodeShards, writeQuorum } from "./put-object.js";

export interface MultipartContext {
  readonly cluster: Cluster;
  readonly clock: HybridClock;
  readonly requireBucket: (bucket: string) => Promise<void>;
  /** A write missed shards: queue the object for repair. */
  readonly repair: (bucket: string, key: string, reason: string) => void;
  /** A completed object was committed: collect the versions it superseded. */
  readonly committed: (record: ObjectRecord) => void;
  /** Runs clean-up nobody waits for (tracked, so tests and shutdown can settle it). */
  readonly background: (work: () => Promise<unknown>, what: string) => void;
}

export interface CreateUploadInput {
  readonly bucket: string;
  readonly key: string;
  readonly contentType?: string;
  readonly userMetadata: Readonly<Record<string, string>>;
  readonly systemMetadata: Readonly<Record<string, string>>;
  readonly now?: number;
}

export interface UploadPartInput {
  readonly bucket: string;
  readonly key: string;
  readonly uploadId: string;
  readonly partNumber: number;
  readonly body: AsyncIterable<Buffer>;
  readonly length: number;
  /** After the body and shards, before the part is committed: checks digests, returns checksums. */
  readonly finalize?: (md5: Buffer) => Promise<Readonly<Record<string, string>>>;
  readonly now?: number;
}

export interface CompleteInput {
  readonly bucket: string;
  readonly key: string;
  readonly uploadId: string;
  /** Picks the parts of the object from the newest version of each uploaded part (S3's rules). */
  readonly choose: (uploaded: ReadonlyMap<number, UploadedPart>) => readonly PartRecord[];
  readonly condition?: WriteCondition;
  readonly now?: number;
}

/** S3's multipart ETag: the MD5 of the concatenated binary part MD5s, then "-<part count>". */
export function multipartEtag(parts: readonly PartRecord[]): string {
  const md5 = createHash("md5");
  for (const part of parts) md5.update(Buffer.from(part.etag, "hex"));
  return `${md5.digest("hex")}-${parts.length}`;
}

function noSuchUpload(uploadId: string): TesseraError {
  return new TesseraError("ERR_NOT_FOUND", `upload ${uploadId} does not exist`, { kind: "upload" });
}

export class MultipartUploads {
  readonly #context: MultipartContext;

  constructor(context: MultipartContext) {
    this.#context = context;
  }

  async create(input: CreateUploadInput): Promise<Upload> {
    const { cluster, clock } = this.#context;
    await this.#context.requireBucket(input.bucket);
    const { k, m, blockSize } = cluster.map.ec;
    const placement = cluster.place(input.bucket, input.key);
    const uploadId = clock.nextVersionId();
    const record = uploadRecord({ ...input, uploadId, placement, ec: { k, m, blockBytes: blockSize, checksumAlgorithm: CHECKSUM_ALGORITHM_DEFAULT }, now: input.now ?? Date.now() });
    await commitRecords(cluster, placement.locations, record, writeQuorum(k, m));
    return { bucket: input.bucket, key: input.key, uploadId, record };
  }

  /** The upload, or NoSuchUpload (NoSuchBucket when the bucket itself is missing). */
  async require(bucket: string, key: string, uploadId: string): Promise<Upload> {
    const upload = await findUpload(this.#context.cluster, bucket, key, uploadId);
    if (upload !== undefined) return upload;
    await this.#context.requireBucket(bucket);
    throw noSuchUpload(uploadId);
  }

  async uploadPart(input: UploadPartInput): Promise<UploadedPart> {
    const { cluster, clock } = this.#context;
    const upload = await this.require(input.bucket, input.key, input.uploadId);
    const placement = uploadPlacement(upload);
    const partVersionId = clock.nextVersionId();
    const encoded = await encodeShards(cluster, placement, { body: input.body, length: input.length, versionId: partVersionId, partNumber: input.partNumber, inline: false });
    try {
      const checksums = (await input.finalize?.(encoded.digest)) ?? {};
      // Completed or aborted while the body streamed: the part would be an orphan at once.
      await this.require(input.bucket, input.key, input.uploadId);
      const part: PartRecord = { partNumber: input.partNumber, partVersionId, size: input.length, etag: encoded.digest.toString("hex"), blockBytes: encoded.blockBytes };
      const record = partRecord(upload, part, checksums, input.now ?? Date.now());
      const { k, m } = cluster.map.ec;
      await commitRecords(cluster, encoded.committed, record, writeQuorum(k, m));
      if (encoded.missingShards.length > 0) this.#context.repair(input.bucket, input.key, `part ${input.partNumber} of upload ${input.uploadId} missed shards ${encoded.missingShards.join(",")}`);
      return { ...part, lastModified: record.lastModified, checksums, record };
    } catch (error) {
      await discardShards(cluster, placement, encoded, partVersionId, input.partNumber);
      throw error;
    }
  }

  /** The newest version of each uploaded part, in part-number order. */
  async listParts(bucket: string, key: string, uploadId: string): Promise<{ upload: Upload; parts: UploadedPart[] }> {
    const upload = await this.require(bucket, key, uploadId);
    const parts = [...newestParts(presentParts(this.#context.cluster, await readPartRecords(this.#context.cluster, upload))).values()];
    return { upload, parts: parts.sort((a, b) => a.partNumber - b.partNumber) };
  }

  async complete(input: CompleteInput): Promise<ObjectRecord> {
    const { cluster, clock } = this.#context;
    const { upload, parts } = await this.listParts(input.bucket, input.key, input.uploadId);
    const chosen = input.choose(new Map(parts.map((part) => [part.partNumber, part])));
    const placement = upload.record.placement;
    const record = await withKeyLock(cluster, input.bucket, input.key, placement, async (lock) => {
      await this.require(input.bucket, input.key, input.uploadId);
      const current = await readCurrent(cluster, input.bucket, input.key, placement);
      if (input.condition !== undefined) checkWriteCondition(input.condition, current, `${input.bucket}/${input.key}`);
      if (current !== undefined) clock.observe(decodeVersionId(current.versionId));
      const completed = completedRecord(upload, chosen, clock.nextVersionId(), input.now ?? Date.now());
      await commitFenced(cluster, lock, placement, completed);
      // The object is committed whatever happens next; an upload record left behind (too
      // few disks answered) only lets a retried completion write the same object again.
      await removeUploadRecord(cluster, upload, { quorum: false });
      return completed;
    });
    this.#context.committed(record);
    this.#context.background(() => removeUploadParts(cluster, upload), `clean-up of completed upload ${upload.uploadId}`);
    return record;
  }

  async abort(bucket: string, key: string, uploadId: string): Promise<void> {
    const upload = await this.require(bucket, key, uploadId);
    await this.#removeUpload(upload);
    this.#context.background(() => removeUploadParts(this.#context.cluster, upload), `clean-up of aborted upload ${uploadId}`);
  }

  /** The garbage collector's abort: removes the upload and waits for its parts to go; returns how many. */
  async expire(upload: Upload): Promise<number> {
    await this.#removeUpload(upload);
    return removeUploadParts(this.#context.cluster, upload);
  }

  /** Under the key's lock, so no completion of the same upload can interleave. */
  async #removeUpload(upload: Upload): Promise<void> {
    await withKeyLock(this.#context.cluster, upload.bucket, upload.key, upload.record.placement, async () => {
      await this.require(upload.bucket, upload.key, upload.uploadId);
      await removeUploadRecord(this.#context.cluster, upload, { quorum: true });
    });
  }
}

/** The completed object's record: the upload's metadata, and its parts in order. */
function completedRecord(upload: Upload, parts: readonly PartRecord[], versionId: string, now: number): ObjectRecord {
  const source = upload.record;
  return {
    bucket: upload.bucket,
    key: upload.key,
    versionId,
    revision: 1,
    objectId: source.objectId,
    deleteMarker: false,
    size: parts.reduce((sum, part) => sum + part.size, 0),
    etag: multipartEtag(parts),
    lastModified: now,
    ...(source.contentType === undefined ? {} : { contentType: source.contentType }),
    userMetadata: source.userMetadata,
    systemMetadata: source.systemMetadata,
    ec: source.ec,
    placement: source.placement,
    parts: parts.map(({ partNumber, partVersionId, size, etag, blockBytes }) => ({ partNumber, partVersionId, size, etag, blockBytes })),
  };
}
