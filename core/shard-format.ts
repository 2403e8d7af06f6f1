/**
 * The shard file format: one shard (index i of k+m) of one object version or part.
 *
 *   header (SHARD_HEADER_BYTES, little-endian)
 *     0  magic "TSSH"              4
 *     4  format version   u16      2   (SHARD_FORMAT_VERSION)
 *     6  checksum algo    u8       1   (core/checksum.ts; 0 is invalid)
 *     7  k                u8       1
 *     8  m                u8       1
 *     9  shard index      u8       1   (0..k-1 data, k..k+m-1 parity)
 *    10  reserved         u16      2   (zero)
 *    12  block bytes      u32      4   (object bytes per stripe = k * chunk bytes)
 *    16  part number      u32      4   (0 for a plain PUT, 1..10000 for a multipart part)
 *    20  reserved         u32      4   (zero)
 *    24  object length    u64      8   (true bytes of the object or part, before padding)
 *    32  object id                16
 *    48  version id               16
 *    64  reserved                 12   (zero)
 *    76  header CRC32C    u32      4   (over bytes 0..75)
 *   then one frame per stripe s = 0..stripeCount-1:
 *     chunk s of this shard (chunk bytes; the last stripe is zero-padded)
 *     checksum of that chunk (4 bytes CRC32C or 8 bytes xxHash64)
 *
 * Every frame has the same size, so stripe s starts at HEADER + s * frameBytes: a range
 * read seeks straight to it, and any single chunk can be verified on its own.
 */
import { assert } from "./assert.js";
import { ChecksumAlgorithm, checksumBytes, checksumMatches, computeChecksum, isChecksumAlgorithm } from "./checksum.js";
import { crc32c } from "@node-rs/crc32";
import { TesseraError, requireArgument } from "./errors.js";
import {
  BLOCK_BYTES_MAX,
  CHUNK_ALIGN_BYTES,
  EC_K_MAX,
  EC_M_MAX,
  OBJECT_BYTES_MAX,
  OBJECT_ID_BYTES,
  PART_NUMBER_MAX,
  SHARD_HEADER_BYTES,
  VERSION_ID_BYTES,
} from "./limits.js";

export const SHARD_MAGIC = Buffer.from("TSSH", "latin1");
export const SHARD_FORMAT_VERSION = 1;
/** Bytes of the header covered by its own CRC32C. */
const HEADER_CHECKED_BYTES = SHARD_HEADER_BYTES - 4;

export interface ShardHeader {
  readonly checksumAlgorithm: ChecksumAlgorithm;
  readonly k: number;
  readonly m: number;
  readonly shardIndex: number;
  /** Object bytes per stripe: k chunks of blockBytes / k bytes each. */
  readonly blockBytes: number;
  readonly partNumber: number;
  readonly objectLength: number;
  readonly objectId: Buffer;
  readonly versionId: Buffer;
}

/** What a reader insists the header says, so a misplaced file is never served. */
export type ShardIdentity = Pick<ShardHeader, "objectId" | "versionId" | "shardIndex" | "partNumber">;

export interface ShardLayout {
  readonly chunkBytes: number;
  readonly checksumBytes: number;
  /** chunkBytes + checksumBytes. */
  readonly frameBytes: number;
  readonly stripeCount: number;
  /** Header plus every frame: the exact size of a complete shard file. */
  readonly fileBytes: number;
}

/**
 * Stripe size for an object of `objectLength` bytes: the cluster's block size, shrunk for
 * small objects so a 10 KiB object does not cost k+m padded 256 KiB chunks. Always a
 * multiple of k * 8, as the codec needs.
 */
export function chooseBlockBytes(objectLength: number, k: number, clusterBlockBytes: number): number {
  requireArgument(Number.isSafeInteger(objectLength) && objectLength >= 0, "objectLength", `must be a whole number >= 0, got ${objectLength}`);
  const unit = k * CHUNK_ALIGN_BYTES;
  assert(clusterBlockBytes % unit === 0, "cluster block size is validated to be a multiple of k * 8");
  const needed = Math.max(unit, Math.ceil(objectLength / unit) * unit);
  return Math.min(clusterBlockBytes, needed);
}

export function validateShardHeader(header: ShardHeader): void {
  const { k, m } = header;
  requireArgument(isChecksumAlgorithm(header.checksumAlgorithm), "checksumAlgorithm", `unknown algorithm ${header.checksumAlgorithm}`);
  requireArgument(Number.isInteger(k) && k >= 1 && k <= EC_K_MAX, "k", `must be an integer in 1..${EC_K_MAX}, got ${k}`);
  requireArgument(Number.isInteger(m) && m >= 0 && m <= EC_M_MAX, "m", `must be an integer in 0..${EC_M_MAX}, got ${m}`);
  requireArgument(Number.isInteger(header.shardIndex) && header.shardIndex >= 0 && header.shardIndex < k + m, "shardIndex", `must be an integer in 0..${k + m - 1}, got ${header.shardIndex}`);
  const unit = k * CHUNK_ALIGN_BYTES;
  requireArgument(
    Number.isInteger(header.blockBytes) && header.blockBytes > 0 && header.blockBytes <= BLOCK_BYTES_MAX && header.blockBytes % unit === 0,
    "blockBytes",
    `must be a positive multiple of k * ${CHUNK_ALIGN_BYTES} = ${unit} up to ${BLOCK_BYTES_MAX}, got ${header.blockBytes}`,
  );
  requireArgument(Number.isInteger(header.partNumber) && header.partNumber >= 0 && header.partNumber <= PART_NUMBER_MAX, "partNumber", `must be an integer in 0..${PART_NUMBER_MAX}, got ${header.partNumber}`);
  requireArgument(Number.isSafeInteger(header.objectLength) && header.objectLength >= 0 && header.objectLength <= OBJECT_BYTES_MAX, "objectLength", `must be an integer in 0..${OBJECT_BYTES_MAX}, got ${header.objectLength}`);
  requireArgument(header.objectId.length === OBJECT_ID_BYTES, "objectId", `must be ${OBJECT_ID_BYTES} bytes, got ${header.objectId.length}`);
  requireArgument(header.versionId.length === VERSION_ID_BYTES, "versionId", `must be ${VERSION_ID_BYTES} bytes, got ${header.versionId.length}`);
}

export function shardLayout(header: ShardHeader): ShardLayout {
  const chunkBytes = header.blockBytes / header.k;
  const sumBytes = checksumBytes(header.checksumAlgorithm);
  const frameBytes = chunkBytes + sumBytes;
  const stripeCount = Math.ceil(header.objectLength / header.blockBytes);
  return { chunkBytes, checksumBytes: sumBytes, frameBytes, stripeCount, fileBytes: SHARD_HEADER_BYTES + stripeCount * frameBytes };
}

/** Byte offset of stripe `stripe`'s frame in a shard file. */
export function frameOffset(layout: ShardLayout, stripe: number): number {
  assert(Number.isInteger(stripe) && stripe >= 0 && stripe <= layout.stripeCount, "stripe index within the shard");
  return SHARD_HEADER_BYTES + stripe * layout.frameBytes;
}

export function encodeShardHeader(header: ShardHeader): Buffer {
  validateShardHeader(header);
  const out = Buffer.alloc(SHARD_HEADER_BYTES);
  SHARD_MAGIC.copy(out, 0);
  out.writeUInt16LE(SHARD_FORMAT_VERSION, 4);
  out.writeUInt8(header.checksumAlgorithm, 6);
  out.writeUInt8(header.k, 7);
  out.writeUInt8(header.m, 8);
  out.writeUInt8(header.shardIndex, 9);
  out.writeUInt32LE(header.blockBytes, 12);
  out.writeUInt32LE(header.partNumber, 16);
  out.writeBigUInt64LE(BigInt(header.objectLength), 24);
  header.objectId.copy(out, 32);
  header.versionId.copy(out, 48);
  out.writeUInt32LE(crc32c(out.subarray(0, HEADER_CHECKED_BYTES)), HEADER_CHECKED_BYTES);
  return out;
}

function headerError(message: string, details: Record<string, unknown> = {}): TesseraError {
  return new TesseraError("ERR_SHARD_HEADER", `shard header: ${message}`, details);
}

/**
 * Parses and checks a header. With `expect`, a header of another object, version, part or
 * shard index is refused: a file in the wrong place must never be served as this shard.
 */
export function decodeShardHeader(bytes: Buffer, expect?: ShardIdentity): ShardHeader {
  if (bytes.length < SHARD_HEADER_BYTES) {
    throw new TesseraError("ERR_SHARD_TRUNCATED", `shard header: ${bytes.length} of ${SHARD_HEADER_BYTES} bytes`, { receivedBytes: bytes.length });
  }
  if (!bytes.subarray(0, 4).equals(SHARD_MAGIC)) throw headerError("bad magic (not a Tessera shard file)");
  const version = bytes.readUInt16LE(4);
  if (version !== SHARD_FORMAT_VERSION) throw headerError(`unsupported format version ${version}`, { version });
  if (bytes.readUInt32LE(HEADER_CHECKED_BYTES) !== crc32c(bytes.subarray(0, HEADER_CHECKED_BYTES))) {
    throw headerError("header checksum mismatch");
  }
  const objectLength = bytes.readBigUInt64LE(24);
  if (objectLength > BigInt(OBJECT_BYTES_MAX)) throw headerError(`object length ${objectLength} over the limit`);
  const header: ShardHeader = {
    checksumAlgorithm: bytes.readUInt8(6) as ChecksumAlgorithm,
    k: bytes.readUInt8(7),
    m: bytes.readUInt8(8),
    shardIndex: bytes.readUInt8(9),
    blockBytes: bytes.readUInt32LE(12),
    partNumber: bytes.readUInt32LE(16),
    objectLength: Number(objectLength),
    objectId: Buffer.from(bytes.subarray(32, 48)),
    versionId: Buffer.from(bytes.subarray(48, 64)),
  };
  try {
    validateShardHeader(header);
  } catch (error) {
    throw headerError(error instanceof Error ? error.message : String(error));
  }
  if (expect !== undefined) checkIdentity(header, expect);
  return header;
}

function checkIdentity(header: ShardHeader, expect: ShardIdentity): void {
  if (!header.objectId.equals(expect.objectId)) throw headerError("belongs to another object", { objectId: header.objectId.toString("hex") });
  if (!header.versionId.equals(expect.versionId)) throw headerError("belongs to another version", { versionId: header.versionId.toString("hex") });
  if (header.partNumber !== expect.partNumber) throw headerError(`belongs to part ${header.partNumber}, not ${expect.partNumber}`);
  if (header.shardIndex !== expect.shardIndex) throw headerError(`is shard ${header.shardIndex}, not ${expect.shardIndex}`);
}

/** The checksum trailer of one chunk; the writer sends chunk then trailer, no copy. */
export function chunkTrailer(header: Pick<ShardHeader, "checksumAlgorithm">, chunk: Uint8Array): Buffer {
  return computeChecksum(header.checksumAlgorithm, chunk);
}

export function chunkChecksumError(shardIndex: number, stripe: number): TesseraError {
  return new TesseraError("ERR_SHARD_CHECKSUM", `shard ${shardIndex}: chunk ${stripe} failed its checksum`, { shardIndex, chunkIndex: stripe });
}

/** Verifies one frame (chunk + trailer) and returns the chunk as a view of `frame`. */
export function verifyFrame(header: ShardHeader, layout: ShardLayout, frame: Buffer, stripe: number): Buffer {
  assert(frame.length === layout.frameBytes, "a frame is exactly frameBytes long");
  const chunk = frame.subarray(0, layout.chunkBytes);
  if (!checksumMatches(header.checksumAlgorithm, chunk, frame, layout.chunkBytes)) throw chunkChecksumError(header.shardIndex, stripe);
  return chunk;
}
