/**
 * GET of a resolved version: streams bytes [start, end) through the degraded-read decoder,
 * from shard files on the nodes, or from the shards carried inline in the records.
 */
import { TesseraError } from "../../core/errors.js";
import { frameOffset, shardLayout } from "../../core/shard-format.js";
import type { ObjectRecord, StripeRange } from "../../core/storage-api.js";
import { decodeRange, type ShardSource } from "../erasure/decode.js";
import type { EncodeParams } from "../erasure/encode.js";
import type { Cluster } from "./cluster.js";
import type { ResolvedVersion } from "./versions.js";

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
}

/** The bytes [start, end) of the resolved version (a single-part object). */
export function readObject(cluster: Cluster, resolved: ResolvedVersion, start: number, end: number, options: ReadObjectOptions = {}): AsyncGenerator<Buffer> {
  const { record } = resolved;
  if (record.deleteMarker) throw new TesseraError("ERR_NOT_FOUND", "the newest version is a delete marker");
  const params = encodeParamsOf(record);
  const inline = [...resolved.holders.values()].some((holder) => holder.record.inline !== undefined);
  const source = inline ? inlineSource(resolved, params) : nodeSource(cluster, record);
  const skipShards = new Set<number>();
  if (!inline) {
    for (const location of record.placement) {
      if (!resolved.answered.has(`${location.nodeId}/${location.diskId}`)) skipShards.add(location.shardIndex);
    }
  }
  return decodeRange(params, source, start, end, { skipShards, ...(options.onShardFailure === undefined ? {} : { onShardFailure: options.onShardFailure }) });
}

function nodeSource(cluster: Cluster, record: ObjectRecord): ShardSource {
  return (shardIndex: number, range: StripeRange, signal: AbortSignal) => {
    const location = record.placement[shardIndex];
    const node = location === undefined ? undefined : cluster.node(location.nodeId);
    if (location === undefined || node === undefined) return failing(new TesseraError("ERR_NODE_UNAVAILABLE", `no node for shard ${shardIndex}`));
    return node.readShard(location.diskId, { objectId: record.objectId, versionId: record.versionId, partNumber: 0, shardIndex }, range, { signal });
  };
}

function inlineSource(resolved: ResolvedVersion, params: EncodeParams): ShardSource {
  const layout = shardLayout({ ...params, shardIndex: 0 });
  return (shardIndex: number, range: StripeRange) => {
    const shard = resolved.holders.get(shardIndex)?.record.inline;
    if (shard === undefined) return failing(new TesseraError("ERR_NOT_FOUND", `no inline shard ${shardIndex}`));
    return once(shard.subarray(frameOffset(layout, range.firstStripe), frameOffset(layout, range.firstStripe + range.stripeCount)));
  };
}

async function* once(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}

async function* failing(error: Error): AsyncGenerator<Buffer> {
  yield* [];
  throw error;
}
