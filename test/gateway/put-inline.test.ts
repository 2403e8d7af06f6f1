/**
 * Small objects' shards are built in memory in one pass (gateway/objects/put-object.ts,
 * encodeInline): they must be byte for byte what the streaming encoder writes, whatever the
 * code, size and checksum algorithm, with the same MD5, and a body of the wrong length must
 * be refused with the streaming encoder's error. Replay a failure with TEST_SEED=<seed>.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ChecksumAlgorithm } from "../../core/checksum.js";
import { isTesseraError } from "../../core/errors.js";
import { chooseBlockBytes } from "../../core/shard-format.js";
import { encodeObject, type EncodeParams } from "../../gateway/erasure/encode.js";
import { encodeInline } from "../../gateway/objects/put-object.js";
import { INLINE_OBJECT_BYTES_MAX } from "../../gateway/objects/small-objects.js";
import { Prng, seedFromEnv } from "../prng.js";

const SEED = seedFromEnv(0x1a11e);
/** The cluster's stripe size per data chunk: k * 64 KiB stripes (a multiple of k * 8), so an inline object is one stripe. */
const CLUSTER_CHUNK_BYTES = 64 * 1024;
/** Random sizes tried per code, besides the edges. */
const RANDOM_SIZES = 4;

function paramsFor(prng: Prng, k: number, m: number, objectLength: number, checksumAlgorithm: ChecksumAlgorithm): EncodeParams {
  return { checksumAlgorithm, k, m, blockBytes: chooseBlockBytes(objectLength, k, k * CLUSTER_CHUNK_BYTES), partNumber: 0, objectLength, objectId: prng.bytes(16), versionId: prng.bytes(16) };
}

async function* pieces(data: Buffer, prng: Prng): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < data.length; ) {
    const size = prng.int(1, 5000);
    yield data.subarray(offset, offset + size);
    offset += size;
  }
}

async function streamed(params: EncodeParams, data: Buffer, prng: Prng): Promise<Map<number, Buffer>> {
  const store = new Map<number, Buffer>();
  await encodeObject(pieces(data, prng), params, async (shardIndex, body) => {
    const parts: Buffer[] = [];
    for await (const part of body) parts.push(Buffer.from(part));
    store.set(shardIndex, Buffer.concat(parts));
  }, { writeQuorum: params.k + params.m });
  return store;
}

describe(`inline PUT encoding (seed ${SEED})`, () => {
  it("writes the streaming encoder's exact shard bytes and MD5", async () => {
    const prng = new Prng(SEED);
    for (const [k, m] of [[4, 2], [2, 1], [6, 3], [1, 2], [1, 0], [12, 4], [24, 6]] as const) {
      const sizes = [0, 1, 8, k * 8, k * 8 + 1, 4096, 16 * 1024 + 8, INLINE_OBJECT_BYTES_MAX, ...Array.from({ length: RANDOM_SIZES }, () => prng.int(1, INLINE_OBJECT_BYTES_MAX))];
      for (const size of sizes) {
        const algorithm = prng.int(0, 1) === 0 ? ChecksumAlgorithm.Crc32c : ChecksumAlgorithm.Xxh64;
        const params = paramsFor(prng, k, m, size, algorithm);
        const data = prng.bytes(size);
        const expected = await streamed(params, data, prng);
        const seen: Buffer[] = [];
        const got = await encodeInline(params, pieces(data, prng), (piece) => seen.push(Buffer.from(piece)));
        const what = `${k}+${m} size ${size} algorithm ${algorithm} seed ${SEED}`;
        expect(got.digest.equals(createHash("md5").update(data).digest()), what).toBe(true);
        expect(Buffer.concat(seen).equals(data), what).toBe(true);
        expect(got.inline.size, what).toBe(k + m);
        for (let index = 0; index < k + m; index++) expect((got.inline.get(index) as Buffer).equals(expected.get(index) as Buffer), `${what} shard ${index}`).toBe(true);
      }
    }
  });

  it("refuses a body longer or shorter than declared with ERR_INCOMPLETE_BODY", async () => {
    const prng = new Prng(SEED + 1);
    const params = paramsFor(prng, 4, 2, 4096, ChecksumAlgorithm.Crc32c);
    for (const length of [4095, 4097, 0]) {
      const error = await encodeInline(params, pieces(prng.bytes(length), prng)).catch((caught: unknown) => caught);
      expect(isTesseraError(error, "ERR_INCOMPLETE_BODY"), `body of ${length} bytes`).toBe(true);
    }
  });
});
