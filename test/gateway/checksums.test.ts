import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Crc32, Crc32cJs, Crc64NvmeJs } from "@aws-sdk/checksums/crc";
import { describe, expect, it } from "vitest";
import {
  CHECKSUM_ALGORITHMS,
  type ChecksumAlgorithm,
  checksumBase64,
  checksumHeaderName,
  ChecksumVerifier,
  createChecksum,
  parseChecksumAlgorithm,
  parseChecksumValue,
  parseContentMd5,
  verifyContentMd5,
} from "../../gateway/s3/checksums.js";
import { S3Error } from "../../gateway/s3/errors.js";
import { Prng, seedFromEnv } from "../prng.js";

const CHECK_INPUT = Buffer.from("123456789");

/** The standard check values of each algorithm over "123456789". */
const CHECK_VALUES: Record<ChecksumAlgorithm, string> = {
  CRC32: "cbf43926",
  CRC32C: "e3069283",
  CRC64NVME: "ae8b14860a799888",
  SHA1: "f7c3bc1d808e04732adf679965ccc34ca7ae3441",
  SHA256: "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225",
};

async function sdkChecksum(algorithm: ChecksumAlgorithm, data: Buffer): Promise<string> {
  if (algorithm === "SHA1" || algorithm === "SHA256") return createHash(algorithm.toLowerCase()).update(data).digest("base64");
  const checksum = algorithm === "CRC32" ? new Crc32() : algorithm === "CRC32C" ? new Crc32cJs() : new Crc64NvmeJs();
  checksum.update(data);
  return Buffer.from(await checksum.digest()).toString("base64");
}

async function drain(source: AsyncIterable<Buffer>): Promise<void> {
  for await (const _chunk of source) void _chunk;
}

describe("checksum calculators", () => {
  it.each(CHECKSUM_ALGORITHMS)("%s matches its standard check value", (algorithm) => {
    expect(Buffer.from(checksumBase64(algorithm, CHECK_INPUT), "base64").toString("hex")).toBe(CHECK_VALUES[algorithm]);
  });

  it.each(CHECKSUM_ALGORITHMS)("%s matches the AWS SDK's implementation over seeded random data fed in random pieces", async (algorithm) => {
    const prng = new Prng(seedFromEnv(0xc0ffee));
    for (let round = 0; round < 20; round++) {
      const data = prng.bytes(prng.int(0, 5000));
      const calculator = createChecksum(algorithm);
      for (let offset = 0; offset < data.length; ) {
        const end = Math.min(data.length, offset + prng.int(1, 700));
        calculator.update(data.subarray(offset, end));
        offset = end;
      }
      expect(calculator.digest().toString("base64"), `seed ${prng.seed} round ${round}`).toBe(await sdkChecksum(algorithm, data));
    }
  });

  it("digest() may be read more than once without disturbing the state", () => {
    for (const algorithm of CHECKSUM_ALGORITHMS) {
      const calculator = createChecksum(algorithm);
      calculator.update(CHECK_INPUT.subarray(0, 4));
      calculator.digest();
      calculator.update(CHECK_INPUT.subarray(4));
      expect(calculator.digest().toString("hex")).toBe(CHECK_VALUES[algorithm]);
    }
  });

  it("names headers and parses algorithm names", () => {
    expect(checksumHeaderName("CRC64NVME")).toBe("x-amz-checksum-crc64nvme");
    expect(parseChecksumAlgorithm("x-amz-checksum-crc32c")).toBe("CRC32C");
    expect(parseChecksumAlgorithm("sha256")).toBe("SHA256");
    expect(parseChecksumAlgorithm("CRC32")).toBe("CRC32");
    expect(parseChecksumAlgorithm("md5")).toBeUndefined();
    expect(parseChecksumAlgorithm("x-amz-checksum-")).toBeUndefined();
  });
});

describe("checksum values from clients", () => {
  it("decodes well-formed values and rejects malformed ones with S3's InvalidRequest", () => {
    expect(parseChecksumValue("CRC32", "y/Q5Jg==").toString("hex")).toBe("cbf43926");
    for (const [algorithm, value] of [["CRC32", "y/Q5Jg"], ["CRC32", "AAAAAAAA"], ["SHA256", "y/Q5Jg=="], ["CRC32C", "!!!!"], ["CRC32", ""]] as const) {
      expect(() => parseChecksumValue(algorithm, value)).toThrow(new S3Error("InvalidRequest", `Value for ${checksumHeaderName(algorithm)} header is invalid.`));
    }
  });

  it("ChecksumVerifier passes matching bodies and fails mismatches with BadDigest at the end", async () => {
    const data = Buffer.from("hello, checksum");
    const good = new ChecksumVerifier("CRC32C", () => checksumBase64("CRC32C", data));
    await pipeline(Readable.from([data.subarray(0, 3), data.subarray(3)]), good, drain);
    expect(good.digest).toBe(checksumBase64("CRC32C", data));
    const late = new ChecksumVerifier("SHA1", async () => checksumBase64("SHA1", data));
    await pipeline(Readable.from([data]), late, drain);
    const skipped = new ChecksumVerifier("CRC32", () => undefined);
    await pipeline(Readable.from([data]), skipped, drain);
    expect(skipped.digest).toBe(checksumBase64("CRC32", data));
    const bad = new ChecksumVerifier("CRC32", () => checksumBase64("CRC32", Buffer.from("other")));
    await expect(pipeline(Readable.from([data]), bad, drain)).rejects.toMatchObject({ code: "BadDigest", message: "The CRC32 you specified did not match the calculated checksum." });
    const malformed = new ChecksumVerifier("CRC32", () => "nope");
    await expect(pipeline(Readable.from([data]), malformed, drain)).rejects.toMatchObject({ code: "InvalidRequest" });
  });
});

describe("Content-MD5", () => {
  const md5 = createHash("md5").update("body").digest();

  it("decodes a base64 MD5 and verifies it", () => {
    const parsed = parseContentMd5(md5.toString("base64"));
    expect(parsed.equals(md5)).toBe(true);
    verifyContentMd5(parsed, md5);
  });

  it("rejects malformed values with InvalidDigest and mismatches with BadDigest", () => {
    for (const value of ["", "abc", md5.toString("hex"), Buffer.alloc(15).toString("base64")]) {
      expect(() => parseContentMd5(value)).toThrow(new S3Error("InvalidDigest", "The Content-MD5 you specified is not valid."));
    }
    expect(() => verifyContentMd5(parseContentMd5(Buffer.alloc(16).toString("base64")), md5)).toThrow(
      new S3Error("BadDigest", "The Content-MD5 you specified did not match what we received."),
    );
  });
});
