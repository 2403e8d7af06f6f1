/**
 * Conditional writes (PutObject and CompleteMultipartUpload with If-None-Match: * or
 * If-Match: <etag>) as a compare-and-set across the write quorum: under the key's lock
 * (lease-lock.ts) read the newest version, check the condition against it, and commit the
 * record fenced by the lock's grants. Design and proof sketch: docs/conditional-writes.md.
 */
import { TesseraError } from "../../core/errors.js";
import type { ObjectRecord, ShardLocation } from "../../core/storage-api.js";
import type { Cluster } from "./cluster.js";
import { lockConflict, withKeyLock, type KeyLock } from "./lease-lock.js";
import { commitRecords, recordQuorum, type CommitReport, type RecordCommit } from "./put-object.js";
import { keyQuorums, readRecords, resolveNewest } from "./versions.js";

/** S3's two write conditions; both may be given (then both must hold). */
export interface WriteCondition {
  /** If-None-Match: * — the key must have no current object. */
  readonly ifNoneMatch?: boolean;
  /** If-Match: the current object's ETag must be this (unquoted), or "*" for any object. */
  readonly ifMatch?: string;
}

export function hasCondition(condition: WriteCondition | undefined): condition is WriteCondition {
  return condition !== undefined && (condition.ifNoneMatch === true || condition.ifMatch !== undefined);
}

/** The current object of the key (undefined when none or a delete marker), read under the lock. */
export async function readCurrent(cluster: Cluster, bucket: string, key: string, locations: readonly ShardLocation[]): Promise<ObjectRecord | undefined> {
  const reads = await readRecords(cluster, bucket, key, locations);
  if (reads.every((read) => read.records === undefined)) throw new TesseraError("ERR_NODE_UNAVAILABLE", `no node holding ${bucket}/${key} answered`);
  return resolveNewest(reads, keyQuorums(cluster.map.ec))?.record;
}

/** Throws PreconditionFailed (or NoSuchKey for If-Match on a missing key), as S3 does. */
export function checkWriteCondition(condition: WriteCondition, current: ObjectRecord | undefined, where: string): void {
  const exists = current !== undefined && !current.deleteMarker;
  if (condition.ifMatch !== undefined) {
    if (!exists) throw new TesseraError("ERR_NOT_FOUND", `${where} does not exist (If-Match)`, { kind: "key" });
    if (condition.ifMatch !== "*" && condition.ifMatch !== current.etag) throw preconditionFailed(where, "If-Match");
  }
  if (condition.ifNoneMatch === true && exists) throw preconditionFailed(where, "If-None-Match");
}

function preconditionFailed(where: string, header: string): TesseraError {
  return new TesseraError("ERR_VERSION_CONFLICT", `${where}: ${header} did not hold`, { kind: "precondition-failed", condition: header });
}

/** commitRecords fenced by the lock: a commit that lost its leases is a conflict, not an outage. */
export async function commitFenced(cluster: Cluster, lock: KeyLock, locations: readonly ShardLocation[], record: ObjectRecord, inline?: ReadonlyMap<number, Buffer>): Promise<CommitReport> {
  try {
    return await commitRecords(cluster, locations, record, recordQuorum(record.ec), { fences: lock.fences, ...(inline === undefined ? {} : { inline }) });
  } catch (error) {
    if (error instanceof TesseraError && error.details.fenced === true) throw lockConflict(record.bucket, record.key);
    throw error;
  }
}

/**
 * The RecordCommit of a conditional PutObject. Its version id was fixed before the body
 * streamed (the shards carry it), so a newer version found under the lock (an unconditional
 * write that landed meanwhile) makes it a conflict rather than a hidden older version.
 */
export function conditionalCommit(cluster: Cluster, placement: readonly ShardLocation[], condition: WriteCondition): RecordCommit {
  return (locations, record, inline) =>
    withKeyLock(cluster, record.bucket, record.key, placement, async (lock) => {
      const current = await readCurrent(cluster, record.bucket, record.key, placement);
      checkWriteCondition(condition, current, `${record.bucket}/${record.key}`);
      if (current !== undefined && current.versionId >= record.versionId) throw lockConflict(record.bucket, record.key);
      return commitFenced(cluster, lock, locations, record, inline);
    });
}
