/**
 * Per-chunk checksums of the shard format. CRC32C is the default: hardware-accelerated
 * (SSE4.2 / ARMv8 CRC) at about 14 GB/s per core here, 4 bytes per chunk, and it detects
 * every burst error up to 32 bits — the standard choice for bitrot detection in storage
 * (ext4 metadata, iSCSI, Ceph BlueStore). xxHash64 measured the same speed at twice the
 * bytes; it stays available for formats that want a 64-bit check. Numbers: bench/checksum.ts.
 */
import { crc32c } from "@node-rs/crc32";
import { Xxh64, xxh64 } from "@node-rs/xxhash";

/** Checksum algorithm ids as stored in a shard header. Zero is never valid. */
export const ChecksumAlgorithm = {
  Crc32c: 1,
  Xxh64: 2,
} as const;
export type ChecksumAlgorithm = (typeof ChecksumAlgorithm)[keyof typeof ChecksumAlgorithm];

export const CHECKSUM_ALGORITHM_DEFAULT: ChecksumAlgorithm = ChecksumAlgorithm.Crc32c;

export function isChecksumAlgorithm(value: number): value is ChecksumAlgorithm {
  return value === ChecksumAlgorithm.Crc32c || value === ChecksumAlgorithm.Xxh64;
}

/** Bytes a checksum of this algorithm occupies after each chunk. */
export function checksumBytes(algorithm: ChecksumAlgorithm): number {
  return algorithm === ChecksumAlgorithm.Crc32c ? 4 : 8;
}

/** Writes the checksum of `data` into `target` at `offset` (little-endian). */
export function writeChecksum(algorithm: ChecksumAlgorithm, data: Uint8Array, target: Buffer, offset: number): void {
  if (algorithm === ChecksumAlgorithm.Crc32c) target.writeUInt32LE(crc32c(data), offset);
  else target.writeBigUInt64LE(xxh64(data), offset);
}

/** The checksum of `data` as a new buffer of checksumBytes(algorithm). */
export function computeChecksum(algorithm: ChecksumAlgorithm, data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(checksumBytes(algorithm));
  writeChecksum(algorithm, data, out, 0);
  return out;
}

/** True when `stored` (at `offset`) is the checksum of `data`. */
export function checksumMatches(algorithm: ChecksumAlgorithm, data: Uint8Array, stored: Buffer, offset: number): boolean {
  if (algorithm === ChecksumAlgorithm.Crc32c) return stored.readUInt32LE(offset) === crc32c(data);
  return stored.readBigUInt64LE(offset) === xxh64(data);
}

/**
 * A checksum over data that arrives in pieces (a chunk split across network reads), equal to
 * the one-shot checksum of the pieces joined: the storage node checks chunks without joining them.
 */
export class RunningChecksum {
  readonly #algorithm: ChecksumAlgorithm;
  #crc = 0;
  #xxh: Xxh64 | undefined;

  constructor(algorithm: ChecksumAlgorithm) {
    this.#algorithm = algorithm;
    this.reset();
  }

  update(data: Uint8Array): void {
    if (this.#xxh !== undefined) this.#xxh.update(data);
    else this.#crc = crc32c(data, this.#crc);
  }

  /** True when `stored` (at `offset`) is the checksum of everything fed since the last reset. */
  matches(stored: Buffer, offset: number): boolean {
    if (this.#xxh !== undefined) return stored.readBigUInt64LE(offset) === this.#xxh.digest();
    return stored.readUInt32LE(offset) === this.#crc;
  }

  reset(): void {
    this.#crc = 0;
    this.#xxh = this.#algorithm === ChecksumAlgorithm.Xxh64 ? new Xxh64() : undefined;
  }
}
