/**
 * Test shards: valid shard files of seeded random chunks (a storage node never decodes, so
 * the chunks need not be real erasure-coded data), and helpers to read streams back.
 */
import { ChecksumAlgorithm } from "../../core/checksum.js";
import { shardLayout, type ShardHeader } from "../../core/shard-format.js";
import { writeShard } from "../../core/shard-stream.js";
import type { ShardId } from "../../core/storage-api.js";
import type { Prng } from "../prng.js";

export const TEST_K = 4;
export const TEST_M = 2;

export interface TestShard {
  readonly id: ShardId;
  readonly header: ShardHeader;
  /** The whole shard file, as sent and as it must read back. */
  readonly file: Buffer;
}

export interface ShardShape {
  /** Bytes of the (pretend) object: the shard holds about 1/k of it. */
  readonly objectLength: number;
  /** Object bytes per stripe (a multiple of k * 8). */
  readonly blockBytes: number;
  readonly shardIndex?: number;
}

export function hexId(prng: Prng): string {
  return prng.bytes(16).toString("hex");
}

export async function makeShard(prng: Prng, shape: ShardShape): Promise<TestShard> {
  const id: ShardId = { objectId: hexId(prng), versionId: hexId(prng), partNumber: 0, shardIndex: shape.shardIndex ?? prng.int(0, TEST_K + TEST_M - 1) };
  const header: ShardHeader = {
    checksumAlgorithm: ChecksumAlgorithm.Crc32c,
    k: TEST_K,
    m: TEST_M,
    shardIndex: id.shardIndex,
    blockBytes: shape.blockBytes,
    partNumber: 0,
    objectLength: shape.objectLength,
    objectId: Buffer.from(id.objectId, "hex"),
    versionId: Buffer.from(id.versionId, "hex"),
  };
  const { chunkBytes, stripeCount } = shardLayout(header);
  const chunks = Array.from({ length: stripeCount }, () => prng.bytes(chunkBytes));
  return { id, header, file: await shardFile(header, chunks) };
}

/**
 * `template`'s shard again with `chunks`, as the shard of another object (`objectId`, 16
 * bytes): what a node receives from a PUT of a new key. Its header names that object, as a
 * node checks.
 */
export async function shardOfObject(template: TestShard, objectId: Buffer, chunks: readonly Buffer[]): Promise<TestShard> {
  const header = { ...template.header, objectId };
  return { id: { ...template.id, objectId: objectId.toString("hex") }, header, file: await shardFile(header, chunks) };
}

/** The shard file of `header` holding `chunks` (one per stripe), as one Buffer. */
export async function shardFile(header: ShardHeader, chunks: readonly Buffer[]): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of writeShard(header, chunks)) pieces.push(piece);
  return Buffer.concat(pieces);
}

/** Yields `bytes` in pieces of at most `pieceBytes`, as a network body would arrive. */
export async function* inPieces(bytes: Buffer, pieceBytes: number): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < bytes.length; offset += pieceBytes) yield bytes.subarray(offset, offset + pieceBytes);
}

export async function readAll(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of source) pieces.push(piece);
  return Buffer.concat(pieces);
}

/** Reads a stream to its end or its error; never throws. */
export async function readOutcome(source: AsyncIterable<Buffer>): Promise<{ bytes: Buffer; error?: unknown }> {
  const pieces: Buffer[] = [];
  try {
    for await (const piece of source) pieces.push(piece);
    return { bytes: Buffer.concat(pieces) };
  } catch (error) {
    return { bytes: Buffer.concat(pieces), error };
  }
}
