/**
 * GET of a resolved version: streams bytes [start, end) through the degraded-read decoder,
 * from shard files on the nodes, or from the shards carried inline in the records. A
 * multipart object's record lists its parts; each part is its own shard set.
 */
import { assert } from "../../core/assert.js";
import { TesseraError } from "../../core/errors.js";
import { SHARD_HEADER_BYTES } from "../../core/limits.js";
import type { ObjectRecord, PartRecord, ShardId, StripeRange } from "../../core/storage-api.js";
import { decodeInline, decodeRange, type DecodeOptions, type ShardSource } from "../erasure/decode.js";
import type { EncodeParams } from "../erasure/encode.js";
import type { Cluster } from "./cluster.js";
import type { AvoidDisk, ResolvedVersion } from "./versions.js";

export function encodeParamsOf(record: ObjectRecord, partNumber = 0, versionId = record.versionId, length = record.size, blockBytes = record.ec.blockBytes): EncodeParams {
  return {
    checksumAlgorithm: record.ec.checksumAlgorithm,
    k: record.ec.k,
    m: record.ec.m,
    blockBytes,
    partNumber,
    objectLength: length,
    objectId: Buffer.from(record.objectId, "hex"),
    versionId: Buffer.from(versionId, "hex"),
  };
}

export interface ReadObjectOptions {
  /** A shard failed during the read: queue the object for repair. */
  readonly onShardFailure?: (shardIndex: number, error: unknown) => void;
  /** Disks the failure detector holds unusable (node suspect or down): their shards are read last. */
  readonly avoid?: AvoidDisk;
  /** The bytes feed a copy's encoder, which holds a share of the stripe budget already (DecodeOptions.nestedInHeldShare). */
  readonly forCopy?: boolean;
}

/** The bytes [start, end) of the resolved version, plain or multipart. */
export function readObject(cluster: Cluster, resolved: ResolvedVersion, start: number, end: number, options: ReadObjectOptions = {}): AsyncGenerator<Buffer> {
  const { record } = resolved;
  if (record.deleteMarker) throw new TesseraError("ERR_NOT_FOUND", "the newest version is a delete marker");
  assert(start >= 0 && start <= end && end <= record.size, "the range lies within the object");
  const decodeOptions: DecodeOptions = {
    skipShards: unansweredShards(resolved),
    ...(options.avoid === undefined ? {} : { deferShards: avoidedShards(record, options.avoid) }),
    ...(options.onShardFailure === undefined ? {} : { onShardFailure: options.onShardFailure }),
    ...(options.forCopy === true ? { nestedInHeldShare: true } : {}),
  };
  if (record.parts.length > 0) return readParts(cluster, record, start, end, decodeOptions);
  const params = encodeParamsOf(record);
  if (isInline(resolved)) return decodeInline(params, inlineFrames(resolved, params), start, end, { ...decodeOptions, skipShards: new Set() });
  return decodeRange(params, nodeSource(cluster, record, { partNumber: 0, versionId: record.versionId }), start, end, decodeOptions);
}

/** The version's shards travel inside its records (a small object); holders by index or disk. */
export function isInline(version: { readonly holders: ReadonlyMap<unknown, { readonly record: ObjectRecord }> }): boolean {
  return [...version.holders.values()].some((holder) => holder.record.inline !== undefined);
}

/** Shards on disks that did not answer the record read: known down, never tried. */
function unansweredShards(resolved: ResolvedVersion): Set<number> {
  const skip = new Set<number>();
  for (const location of resolved.record.placement) {
    if (!resolved.answered.has(`${location.nodeId}/${location.diskId}`)) skip.add(location.shardIndex);
  }
  return skip;
}

/** Shards on disks to avoid: read only if the others cannot give k (decode.ts, deferShards). */
function avoidedShards(record: ObjectRecord, avoid: AvoidDisk): Set<number> {
  const avoided = new Set<number>();
  for (const location of record.placement) if (avoid(location)) avoided.add(location.shardIndex);
  return avoided;
}

/** Where each part starts in the object: offsets[i] is the first byte of parts[i]. */
export function partOffsets(parts: readonly PartRecord[]): number[] {
  const offsets: number[] = [];
  let at = 0;
  for (const part of parts) {
    offsets.push(at);
    at += part.size;
  }
  return offsets;
}

/**
 * A multipart object: [start, end) mapped onto its parts, each part's slice decoded with its
 * own parameters (its id, length and stripe size), one part after another.
 */
async function* readParts(cluster: Cluster, record: ObjectRecord, start: number, end: number, options: DecodeOptions): AsyncGenerator<Buffer> {
  const offsets = partOffsets(record.parts);
  for (const [index, part] of record.parts.entries()) {
    const partStart = offsets[index] as number;
    const partEnd = partStart + part.size;
    if (partEnd <= start || part.size === 0) continue;
    if (partStart >= end) return;
    const params = encodeParamsOf(record, part.partNumber, part.partVersionId, part.size, part.blockBytes);
    const source = nodeSource(cluster, record, { partNumber: part.partNumber, versionId: part.partVersionId });
    yield* decodeRange(params, source, Math.max(start, partStart) - partStart, Math.min(end, partEnd) - partStart, options);
  }
}

function nodeSource(cluster: Cluster, record: ObjectRecord, shardOf: Pick<ShardId, "partNumber" | "versionId">): ShardSource {
  return (shardIndex: number, range: StripeRange, signal: AbortSignal) => {
    const location = record.placement[shardIndex];
    const node = location === undefined ? undefined : cluster.node(location.nodeId);
    if (location === undefined || node === undefined) return failing(new TesseraError("ERR_NODE_UNAVAILABLE", `no node for shard ${shardIndex}`));
    return node.readShard(location.diskId, { objectId: record.objectId, ...shardOf, shardIndex }, range, { signal });
  };
}

/** Each shard's frames (its inline bytes after the header), undefined where no holder gave it. */
function inlineFrames(resolved: ResolvedVersion, params: EncodeParams): (Buffer | undefined)[] {
  return Array.from({ length: params.k + params.m }, (_, shardIndex) => resolved.holders.get(shardIndex)?.record.inline?.subarray(SHARD_HEADER_BYTES));
}

async function* failing(error: Error): AsyncGenerator<Buffer> {
  yield* [];
  throw error;
}
