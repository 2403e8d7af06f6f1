/**
 * S3's additional checksums (x-amz-checksum-crc32, -crc32c, -crc64nvme, -sha1, -sha256) as
 * streaming calculators, their base64 wire form, and Content-MD5 checks. CRC32/CRC32C use
 * @node-rs/crc32 (hardware, incremental state); SHA uses node:crypto; CRC64/NVME is a
 * table-driven implementation on two 32-bit halves (no BigInt on the hot path).
 */
import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { crc32, crc32c } from "@node-rs/crc32";
import { S3Error } from "./errors.js";

export const CHECKSUM_ALGORITHMS = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

/** Digest sizes in bytes: a base64 value of any other length is malformed. */
const DIGEST_BYTES: Readonly<Record<ChecksumAlgorithm, number>> = { CRC32: 4, CRC32C: 4, CRC64NVME: 8, SHA1: 20, SHA256: 32 };
const MD5_BYTES = 16;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export interface ChecksumCalculator {
  readonly algorithm: ChecksumAlgorithm;
  update(data: Uint8Array): void;
  /** The digest, big-endian for CRCs, as S3 encodes it before base64. */
  digest(): Buffer;
}

/** `x-amz-checksum-crc32` for CRC32, and so on. */
export function checksumHeaderName(algorithm: ChecksumAlgorithm): string {
  return `x-amz-checksum-${algorithm.toLowerCase()}`;
}

/** The algorithm named by `x-amz-checksum-<name>`, or by a bare name like `crc32c` (any case). */
export function parseChecksumAlgorithm(name: string): ChecksumAlgorithm | undefined {
  const bare = name.toLowerCase().replace(/^x-amz-checksum-/, "").toUpperCase();
  return (CHECKSUM_ALGORITHMS as readonly string[]).includes(bare) ? (bare as ChecksumAlgorithm) : undefined;
}

class Crc32Calculator implements ChecksumCalculator {
  readonly algorithm: "CRC32" | "CRC32C";
  #state = 0;
  readonly #update: (input: Uint8Array, state: number) => number;

  constructor(algorithm: "CRC32" | "CRC32C") {
    this.algorithm = algorithm;
    this.#update = algorithm === "CRC32" ? crc32 : crc32c;
  }

  update(data: Uint8Array): void {
    this.#state = this.#update(data, this.#state);
  }

  digest(): Buffer {
    const out = Buffer.allocUnsafe(4);
    out.writeUInt32BE(this.#state >>> 0, 0);
    return out;
  }
}

class ShaCalculator implements ChecksumCalculator {
  readonly algorithm: "SHA1" | "SHA256";
  readonly #hash: Hash;

  constructor(algorithm: "SHA1" | "SHA256") {
    this.algorithm = algorithm;
    this.#hash = createHash(algorithm === "SHA1" ? "sha1" : "sha256");
  }

  update(data: Uint8Array): void {
    this.#hash.update(data);
  }

  digest(): Buffer {
    return this.#hash.copy().digest();
  }
}

/** Reflected CRC-64/NVME polynomial (0xAD93D23594C93659 bit-reversed), split in 32-bit halves. */
const CRC64_POLY_HIGH = 0x9a6c9329;
const CRC64_POLY_LOW = 0xac4bc9b5;
const [CRC64_TABLE_HIGH, CRC64_TABLE_LOW] = buildCrc64Tables();

function buildCrc64Tables(): [Uint32Array, Uint32Array] {
  const high = new Uint32Array(256);
  const low = new Uint32Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let h = 0;
    let l = byte;
    for (let bit = 0; bit < 8; bit++) {
      const carry = l & 1;
      l = ((l >>> 1) | ((h & 1) << 31)) >>> 0;
      h = h >>> 1;
      if (carry) {
        h = (h ^ CRC64_POLY_HIGH) >>> 0;
        l = (l ^ CRC64_POLY_LOW) >>> 0;
      }
    }
    high[byte] = h;
    low[byte] = l;
  }
  return [high, low];
}

class Crc64NvmeCalculator implements ChecksumCalculator {
  readonly algorithm = "CRC64NVME";
  // The register holds the complemented CRC (init and final xor are all ones).
  #high = 0xffffffff;
  #low = 0xffffffff;

  update(data: Uint8Array): void {
    let high = this.#high;
    let low = this.#low;
    for (let i = 0; i < data.length; i++) {
      const index = (low ^ (data[i] as number)) & 0xff;
      low = ((low >>> 8) | (high << 24)) ^ (CRC64_TABLE_LOW[index] as number);
      high = (high >>> 8) ^ (CRC64_TABLE_HIGH[index] as number);
    }
    this.#high = high >>> 0;
    this.#low = low >>> 0;
  }

  digest(): Buffer {
    const out = Buffer.allocUnsafe(8);
    out.writeUInt32BE(~this.#high >>> 0, 0);
    out.writeUInt32BE(~this.#low >>> 0, 4);
    return out;
  }
}

export function createChecksum(algorithm: ChecksumAlgorithm): ChecksumCalculator {
  switch (algorithm) {
    case "CRC32":
    case "CRC32C":
      return new Crc32Calculator(algorithm);
    case "SHA1":
    case "SHA256":
      return new ShaCalculator(algorithm);
    case "CRC64NVME":
      return new Crc64NvmeCalculator();
  }
}

/** The base64 checksum of a whole buffer, as S3 returns it in x-amz-checksum-*. */
export function checksumBase64(algorithm: ChecksumAlgorithm, data: Uint8Array): string {
  const calculator = createChecksum(algorithm);
  calculator.update(data);
  return calculator.digest().toString("base64");
}

function decodeBase64Digest(value: string, bytes: number): Buffer | undefined {
  const trimmed = value.trim();
  if (!BASE64.test(trimmed) || trimmed.length % 4 !== 0) return undefined;
  const decoded = Buffer.from(trimmed, "base64");
  return decoded.length === bytes ? decoded : undefined;
}

/** Decodes a client's x-amz-checksum-* value; malformed: InvalidRequest as S3 answers. */
export function parseChecksumValue(algorithm: ChecksumAlgorithm, value: string): Buffer {
  const decoded = decodeBase64Digest(value, DIGEST_BYTES[algorithm]);
  if (decoded === undefined) {
    throw new S3Error("InvalidRequest", `Value for ${checksumHeaderName(algorithm)} header is invalid.`);
  }
  return decoded;
}

/** The BadDigest S3 answers when a checksum the client sent does not match the body. */
export function checksumMismatch(algorithm: ChecksumAlgorithm): S3Error {
  return new S3Error("BadDigest", `The ${algorithm} you specified did not match the calculated checksum.`);
}

/**
 * A pass-through stream that computes `algorithm` over the body and, at its end, compares it
 * with `expected()` (called then, so a trailer that arrives after the data can supply it).
 * `expected()` returning undefined skips the comparison; `digest` is set once the body ended.
 */
export class ChecksumVerifier extends Transform {
  readonly #calculator: ChecksumCalculator;
  readonly #expected: () => string | undefined | Promise<string | undefined>;
  /** The body's checksum, base64, available after 'end'. */
  digest: string | undefined;

  constructor(algorithm: ChecksumAlgorithm, expected: () => string | undefined | Promise<string | undefined>) {
    super();
    this.#calculator = createChecksum(algorithm);
    this.#expected = expected;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#calculator.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    const computed = this.#calculator.digest();
    this.digest = computed.toString("base64");
    Promise.resolve()
      .then(() => this.#expected())
      .then((expected) => {
        if (expected === undefined) return callback();
        const claimed = parseChecksumValue(this.#calculator.algorithm, expected);
        callback(claimed.equals(computed) ? null : checksumMismatch(this.#calculator.algorithm));
      })
      .catch((error: unknown) => callback(error as Error));
  }
}

/** Decodes a Content-MD5 header: 16 bytes in base64, else InvalidDigest. */
export function parseContentMd5(value: string): Buffer {
  const decoded = decodeBase64Digest(value, MD5_BYTES);
  if (decoded === undefined) throw new S3Error("InvalidDigest");
  return decoded;
}

/** Throws BadDigest when the body's MD5 (computed anyway for the ETag) differs from Content-MD5. */
export function verifyContentMd5(expected: Buffer, computed: Buffer): void {
  if (!expected.equals(computed)) throw new S3Error("BadDigest");
}
