/**
 * Removing what an upload leaves behind: its upload record, and its part versions (records
 * and shards). A part version some version of the object lists is never deleted here: a
 * completion whose clean-up was cut short (a crash) leaves part records whose shards the
 * completed object now owns; the object's own garbage collection removes them later.
 */
import { TesseraError } from "../../core/errors.js";
import type { ObjectRecord, ShardLocation } from "../../core/storage-api.js";
import type { Cluster } from "./cluster.js";
import { presenceQuorum, readPartRecords, uploadsBucket, type Upload } from "./multipart-records.js";
import { deleteShards, writeQuorum } from "./put-object.js";
import { readRecords } from "./versions.js";

/**
 * Deletes the upload record from every disk of the upload. With `quorum`, fewer than the
 * write quorum of disks answering is an error (an abort must not leave the upload present).
 */
export async function removeUploadRecord(cluster: Cluster, upload: Upload, options: { quorum: boolean }): Promise<void> {
  const { k, m } = cluster.map.ec;
  const results = await Promise.allSettled(
    upload.record.placement.map((location) => {
      const node = cluster.node(location.nodeId);
      if (node === undefined) return Promise.reject(new Error(`no node ${location.nodeId}`));
      return node.deleteRecord(location.diskId, uploadsBucket(upload.bucket), upload.key, upload.uploadId);
    }),
  );
  const done = results.filter((result) => result.status === "fulfilled").length;
  if (options.quorum && done < writeQuorum(k, m)) {
    throw new TesseraError("ERR_WRITE_QUORUM", `upload ${upload.uploadId}: removed from ${done} disks, ${writeQuorum(k, m)} needed`);
  }
}

/**
 * Part version ids listed by any version of the object. Throws when too few disks answer to
 * be sure to see every committed version (one that reached the write quorum).
 */
export async function referencedParts(cluster: Cluster, bucket: string, key: string, locations: readonly ShardLocation[]): Promise<Set<string>> {
  const { k, m } = cluster.map.ec;
  const reads = await readRecords(cluster, bucket, key, locations);
  const answered = reads.filter((read) => read.records !== undefined).length;
  if (answered < presenceQuorum(k, m)) throw new TesseraError("ERR_READ_QUORUM", `${bucket}/${key}: ${answered} disks answered, cannot tell which parts the object uses`);
  const referenced = new Set<string>();
  for (const read of reads) for (const record of read.records ?? []) for (const part of record.parts) referenced.add(part.partVersionId);
  return referenced;
}

/** Deletes one part version: its shards (unless the object uses them) and its records. */
export async function removePartVersion(cluster: Cluster, record: ObjectRecord, disks: readonly ShardLocation[], referenced: ReadonlySet<string>): Promise<void> {
  const part = record.parts[0];
  if (part !== undefined && !referenced.has(part.partVersionId)) {
    await deleteShards(cluster, record.placement, record.objectId, part.partVersionId, part.partNumber);
  }
  await Promise.allSettled(disks.map((location) => cluster.node(location.nodeId)?.deleteRecord(location.diskId, record.bucket, record.key, record.versionId)));
}

/** Part version deletions in flight at once: keeps a 10,000-part clean-up from flooding the nodes. */
export const PART_REMOVALS_CONCURRENT = 8;

/** Deletes every part version of the upload found on any of its disks; returns how many. */
export async function removeUploadParts(cluster: Cluster, upload: Upload): Promise<number> {
  const referenced = await referencedParts(cluster, upload.bucket, upload.key, upload.record.placement);
  const { seen } = await readPartRecords(cluster, upload);
  const queue = [...seen.values()];
  const worker = async (): Promise<void> => {
    for (let entry = queue.shift(); entry !== undefined; entry = queue.shift()) await removePartVersion(cluster, entry.record, entry.disks, referenced);
  };
  await Promise.all(Array.from({ length: PART_REMOVALS_CONCURRENT }, worker));
  return seen.size;
}
