/**
 * The healer's shard I/O: shard sets on storage nodes or inside records (small objects),
 * a whole-shard copy from one disk to another, and a whole-shard verification. Every byte
 * read goes through the bandwidth throttle and is counted; every shard read is verified
 * (header identity and every chunk's checksum) on the gateway as well as on the node.
 */
import { TesseraError } from "../../core/errors.js";
import { frameOffset, shardLayout, type ShardIdentity } from "../../core/shard-format.js";
import { ShardParser } from "../../core/shard-stream.js";
import type { ObjectRecord, ShardId, ShardLocation, StripeRange } from "../../core/storage-api.js";
import type { EncodeParams } from "../erasure/encode.js";
import type { Cluster } from "../objects/cluster.js";
import { encodeParamsOf } from "../objects/get-object.js";
import type { ShardSetIo } from "./rebuild.js";
import type { Throttle } from "./throttle.js";

/** One shard set of a record: the object itself (partNumber 0) or one multipart part. */
export interface ShardSet {
  readonly partNumber: number;
  /** The versionId of the object, or the part's partVersionId. */
  readonly versionId: string;
  readonly params: EncodeParams;
}

/** Byte counters the healer reports (bytes read from sources, bytes of shards written). */
export interface IoCounters {
  read(bytes: number): void;
  written(bytes: number): void;
}

export interface NodeIoContext {
  readonly cluster: Cluster;
  readonly throttle: Throttle;
  readonly counters: IoCounters;
}

/** Every shard set of a record: one for a plain object, one per part of a multipart one. */
export function shardSetsOf(record: ObjectRecord): ShardSet[] {
  if (record.parts.length === 0) return [{ partNumber: 0, versionId: record.versionId, params: encodeParamsOf(record) }];
  return record.parts.map((part) => ({
    partNumber: part.partNumber,
    versionId: part.partVersionId,
    params: encodeParamsOf(record, part.partNumber, part.partVersionId, part.size, part.blockBytes),
  }));
}

export function shardIdOf(record: ObjectRecord, set: ShardSet, shardIndex: number): ShardId {
  return { objectId: record.objectId, versionId: set.versionId, partNumber: set.partNumber, shardIndex };
}

export function identityOf(set: ShardSet, shardIndex: number): ShardIdentity {
  return { objectId: set.params.objectId, versionId: set.params.versionId, partNumber: set.partNumber, shardIndex };
}

function requireNode(cluster: Cluster, nodeId: string): NonNullable<ReturnType<Cluster["node"]>> {
  const node = cluster.node(nodeId);
  if (node === undefined) throw new TesseraError("ERR_NODE_UNAVAILABLE", `no client for node ${nodeId}`);
  return node;
}

/** A shard set on the nodes: shard i is read from `sources[i]` and written to `targets[i]`. */
export function nodeShardSetIo(context: NodeIoContext, record: ObjectRecord, set: ShardSet, sources: readonly ShardLocation[], targets: ReadonlyMap<number, ShardLocation>): ShardSetIo {
  return {
    params: set.params,
    read: (shardIndex, range, signal) => {
      const location = sources[shardIndex];
      if (location === undefined) return failing(new TesseraError("ERR_NOT_FOUND", `no source for shard ${shardIndex}`));
      const stream = requireNode(context.cluster, location.nodeId).readShard(location.diskId, shardIdOf(record, set, shardIndex), range, { signal });
      return context.throttle.pace(stream, (bytes) => context.counters.read(bytes));
    },
    write: async (shardIndex, body, declaredBytes) => {
      const location = targets.get(shardIndex);
      if (location === undefined) throw new TesseraError("ERR_NOT_FOUND", `no target for shard ${shardIndex}`);
      await requireNode(context.cluster, location.nodeId).writeShard(location.diskId, shardIdOf(record, set, shardIndex), counted(body, context.counters), declaredBytes);
    },
  };
}

async function* counted(body: AsyncIterable<Buffer>, counters: IoCounters): AsyncGenerator<Buffer> {
  for await (const piece of body) {
    counters.written(piece.length);
    yield piece;
  }
}

/** A small object's shard set inside its records: reads slice the held shard files, writes collect them. */
export function memoryShardSetIo(set: ShardSet, held: ReadonlyMap<number, Buffer>, into: Map<number, Buffer>): ShardSetIo {
  const layout = shardLayout({ ...set.params, shardIndex: 0 });
  return {
    params: set.params,
    read: (shardIndex: number, range: StripeRange) => {
      const shard = held.get(shardIndex);
      if (shard === undefined) return failing(new TesseraError("ERR_NOT_FOUND", `no inline shard ${shardIndex}`));
      return once(shard.subarray(frameOffset(layout, range.firstStripe), frameOffset(layout, range.firstStripe + range.stripeCount)));
    },
    write: async (shardIndex, body) => {
      const pieces: Buffer[] = [];
      for await (const piece of body) pieces.push(piece);
      into.set(shardIndex, Buffer.concat(pieces));
    },
  };
}

async function* once(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}

async function* failing(error: Error): AsyncGenerator<Buffer> {
  yield* [];
  throw error;
}

/** Passes a whole shard file through while verifying it; throws on any fault. */
async function* verified(source: AsyncIterable<Buffer>, identity: ShardIdentity): AsyncGenerator<Buffer> {
  const parser = ShardParser.forFile(identity);
  for await (const bytes of source) {
    parser.push(bytes);
    yield bytes;
  }
  parser.end();
}

/** Reads a whole shard and checks it (a scrub, or a returning disk's shard before reuse). */
export async function verifyShard(context: NodeIoContext, record: ObjectRecord, set: ShardSet, shardIndex: number, location: ShardLocation): Promise<void> {
  const node = requireNode(context.cluster, location.nodeId);
  const stream = context.throttle.pace(node.readShard(location.diskId, shardIdOf(record, set, shardIndex)), (bytes) => context.counters.read(bytes));
  for await (const _piece of verified(stream, identityOf(set, shardIndex))) {
    // Bytes are only checked.
  }
}

/** Copies a healthy shard as is (one read, one write, no decoding): a move. */
export async function copyShard(context: NodeIoContext, record: ObjectRecord, set: ShardSet, shardIndex: number, from: ShardLocation, to: ShardLocation): Promise<void> {
  const source = requireNode(context.cluster, from.nodeId);
  const target = requireNode(context.cluster, to.nodeId);
  const declared = shardLayout({ ...set.params, shardIndex }).fileBytes;
  const stream = context.throttle.pace(source.readShard(from.diskId, shardIdOf(record, set, shardIndex)), (bytes) => context.counters.read(bytes));
  await target.writeShard(to.diskId, shardIdOf(record, set, shardIndex), counted(verified(stream, identityOf(set, shardIndex)), context.counters), declared);
}

/** Checks a small object's shard held in a record; false if it is not shard `shardIndex` of `set` or fails a checksum. */
export function inlineShardValid(shard: Buffer, set: ShardSet, shardIndex: number): boolean {
  try {
    const parser = ShardParser.forFile(identityOf(set, shardIndex));
    parser.push(shard);
    parser.end();
    return true;
  } catch {
    return false;
  }
}
