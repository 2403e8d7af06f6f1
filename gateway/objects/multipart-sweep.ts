/**
 * The garbage collector of multipart uploads: an upload with no activity (its creation or its
 * newest part) for longer than the configured age is aborted with all its parts, as S3's
 * AbortIncompleteMultipartUpload lifecycle rule would; then part records older than that age
 * whose upload is gone (a part that landed after its upload was completed or aborted) are
 * removed, and so are stale copies of upload records a down node missed the removal of. An
 * upload whose bucket was deleted goes with its first old part.
 * The gateway runs it periodically; tests call it with their own `now`.
 */
import type { BucketRecord, ObjectRecord, ShardLocation } from "../../core/storage-api.js";
import type { Cluster } from "./cluster.js";
import { listObjects, LIST_DISK_PAGE_KEYS } from "./list-objects.js";
import { referencedParts, removePartVersion } from "./multipart-cleanup.js";
import { findUpload, PARTS_BUCKET, PART_RECORDS_PAGE, presenceQuorum, readPartRecords, uploadsBucket, type Upload } from "./multipart-records.js";
import type { MultipartUploads } from "./multipart.js";
import { RECORD_READ_TIMEOUT_MS, readRecords, withTimeout } from "./versions.js";

const DAY_MS = 24 * 60 * 60 * 1000;
/** S3 clients abandon uploads (a killed `aws s3 cp`); a week is long enough for any live one. */
export const UPLOAD_ABANDONED_AGE_MS_DEFAULT = 7 * DAY_MS;
/** How often a gateway sweeps: hourly keeps garbage within ~1 h of its age, at a listing's cost. */
export const UPLOAD_SWEEP_INTERVAL_MS_DEFAULT = 60 * 60 * 1000;

export interface SweepTarget {
  readonly cluster: Cluster;
  readonly uploads: MultipartUploads;
  listBuckets(): Promise<BucketRecord[]>;
}

export interface SweepResult {
  readonly uploadsRemoved: number;
  readonly partsRemoved: number;
  readonly staleRecordsRemoved: number;
  /** Keys or parts that could not be handled now (nodes down); the next sweep retries them. */
  readonly failures: number;
}

interface Tally {
  uploadsRemoved: number;
  partsRemoved: number;
  staleRecordsRemoved: number;
  failures: number;
}

export async function sweepAbandonedUploads(target: SweepTarget, now: number, maxAgeMs: number): Promise<SweepResult> {
  const tally: Tally = { uploadsRemoved: 0, partsRemoved: 0, staleRecordsRemoved: 0, failures: 0 };
  const buckets = new Set((await target.listBuckets()).map((bucket) => bucket.name));
  const context: SweepContext = { now, maxAgeMs, tally, buckets };
  for (const bucket of buckets) await sweepBucket(target, bucket, context);
  await sweepOrphanParts(target, context);
  return tally;
}

interface SweepContext {
  readonly now: number;
  readonly maxAgeMs: number;
  readonly tally: Tally;
  /** The buckets that exist: uploads of any other bucket are abandoned with it. */
  readonly buckets: ReadonlySet<string>;
}

async function sweepBucket(target: SweepTarget, bucket: string, context: SweepContext): Promise<void> {
  let startAfter: string | undefined;
  do {
    const page = await listObjects(target.cluster, { bucket: uploadsBucket(bucket), limit: LIST_DISK_PAGE_KEYS, ...(startAfter === undefined ? {} : { startAfter }) });
    for (const entry of page.entries) await sweepKey(target, bucket, entry.key, context).catch(() => void (context.tally.failures += 1));
    startAfter = page.nextStartAfter;
  } while (startAfter !== undefined);
}

/** Every upload record of one key: expire the abandoned uploads, drop old stale copies. */
async function sweepKey(target: SweepTarget, bucket: string, key: string, context: SweepContext): Promise<void> {
  const { cluster } = target;
  const { k, m } = cluster.map.ec;
  const reads = await readRecords(cluster, uploadsBucket(bucket), key, cluster.place(bucket, key).locations);
  const byId = new Map<string, { record: ObjectRecord; disks: ShardLocation[] }>();
  for (const read of reads) {
    for (const record of read.records ?? []) {
      const entry = byId.get(record.versionId) ?? { record, disks: [] };
      entry.disks.push(read.location);
      byId.set(record.versionId, entry);
    }
  }
  for (const { record, disks } of byId.values()) {
    if (disks.length >= presenceQuorum(k, m)) {
      await expireIfAbandoned(target, { bucket, key, uploadId: record.versionId, record }, context);
    } else if (context.now - record.lastModified > context.maxAgeMs) {
      await Promise.allSettled(disks.map((disk) => cluster.node(disk.nodeId)?.deleteRecord(disk.diskId, record.bucket, record.key, record.versionId)));
      context.tally.staleRecordsRemoved += 1;
    }
  }
}

async function expireIfAbandoned(target: SweepTarget, upload: Upload, context: SweepContext): Promise<void> {
  if (context.now - upload.record.lastModified <= context.maxAgeMs) return;
  const parts = await readPartRecords(target.cluster, upload);
  const lastActivity = Math.max(upload.record.lastModified, ...[...parts.seen.values()].map((entry) => entry.record.lastModified));
  if (context.now - lastActivity <= context.maxAgeMs) return;
  context.tally.partsRemoved += await target.uploads.expire(upload);
  context.tally.uploadsRemoved += 1;
}

/**
 * Part records older than the age whose upload no longer exists, on every disk; an old
 * part of an upload whose bucket was deleted expires that whole upload.
 */
async function sweepOrphanParts(target: SweepTarget, context: SweepContext): Promise<void> {
  const { cluster } = target;
  const done = new Set<string>();
  for (const disk of cluster.allDisks()) {
    const node = cluster.node(disk.nodeId);
    let startAfter: string | undefined;
    do {
      const options = { bucket: PARTS_BUCKET, limit: PART_RECORDS_PAGE, ...(startAfter === undefined ? {} : { startAfter }) };
      const page = await withTimeout(node?.listRecords(disk.diskId, options) ?? Promise.reject(new Error(`no node ${disk.nodeId}`)), RECORD_READ_TIMEOUT_MS, `node ${disk.nodeId}`).catch(() => undefined);
      for (const record of page?.records ?? []) {
        const uploadId = record.key.slice(0, record.key.indexOf("/"));
        if (done.has(record.key) || done.has(uploadId) || context.now - record.lastModified <= context.maxAgeMs) continue;
        done.add(record.key);
        await sweepOldPart(target, record, uploadId, { ...context, done }).catch(() => void (context.tally.failures += 1));
      }
      startAfter = page?.nextStartAfter;
    } while (startAfter !== undefined);
  }
}

async function sweepOldPart(target: SweepTarget, record: ObjectRecord, uploadId: string, context: SweepContext & { done: Set<string> }): Promise<void> {
  const { cluster } = target;
  const bucket = record.userMetadata.bucket;
  const key = record.userMetadata.key;
  if (bucket === undefined || key === undefined) return;
  const upload = await findUpload(cluster, bucket, key, uploadId);
  if (upload !== undefined && context.buckets.has(bucket)) return;
  if (upload !== undefined) {
    context.done.add(uploadId);
    context.tally.partsRemoved += await target.uploads.expire(upload);
    context.tally.uploadsRemoved += 1;
    return;
  }
  const referenced = await referencedParts(cluster, bucket, key, record.placement);
  await removePartVersion(cluster, record, record.placement, referenced);
  context.tally.partsRemoved += 1;
}
