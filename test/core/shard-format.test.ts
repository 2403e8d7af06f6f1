import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, expect, it } from "vitest";
import { ChecksumAlgorithm } from "../../core/checksum.js";
import { TesseraError, type ErrorCode } from "../../core/errors.js";
import { SHARD_HEADER_BYTES } from "../../core/limits.js";
import {
  chooseBlockBytes,
  decodeShardHeader,
  encodeShardHeader,
  frameOffset,
  shardLayout,
  type ShardHeader,
} from "../../core/shard-format.js";
import { createShardVerifier, readFramePieces, readShard, writeShard, ShardParser } from "../../core/shard-stream.js";
import { Prng, seedFromEnv } from "../prng.js";

const seed = seedFromEnv(0x5eed_0002);
const K = 4;
const M = 2;
/** Small stripes keep the exhaustive byte-flip tests fast: 4 chunks of 64 bytes. */
const SMALL_BLOCK_BYTES = K * 64;

function makeHeader(prng: Prng, overrides: Partial<ShardHeader> = {}): ShardHeader {
  return {
    checksumAlgorithm: ChecksumAlgorithm.Crc32c,
    k: K,
    m: M,
    shardIndex: 1,
    blockBytes: SMALL_BLOCK_BYTES,
    partNumber: 0,
    objectLength: 3 * SMALL_BLOCK_BYTES - 17,
    objectId: prng.bytes(16),
    versionId: prng.bytes(16),
    ...overrides,
  };
}

/** The data chunks of shard `index` of `data`, zero-padded on the last stripe. */
function dataChunks(data: Buffer, header: ShardHeader): Buffer[] {
  const { chunkBytes, stripeCount } = shardLayout(header);
  const chunks: Buffer[] = [];
  for (let stripe = 0; stripe < stripeCount; stripe++) {
    const start = stripe * header.blockBytes + header.shardIndex * chunkBytes;
    const chunk = Buffer.alloc(chunkBytes);
    data.copy(chunk, 0, Math.min(start, data.length), Math.min(start + chunkBytes, data.length));
    chunks.push(chunk);
  }
  return chunks;
}

async function serialize(header: ShardHeader, chunks: Buffer[]): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of writeShard(header, chunks)) parts.push(part);
  return Buffer.concat(parts);
}

/** Feeds `file` to a parser in seeded random pieces; returns the chunks or the error. */
function parseInPieces(file: Buffer, prng: Prng, parser: ShardParser): Buffer[] {
  const chunks: Buffer[] = [];
  let offset = 0;
  while (offset < file.length) {
    const size = prng.int(1, 200);
    for (const { chunk } of parser.push(file.subarray(offset, offset + size))) chunks.push(Buffer.from(chunk));
    offset += size;
  }
  parser.end();
  return chunks;
}

function codeOf(run: () => unknown): ErrorCode | "none" {
  try {
    run();
    return "none";
  } catch (error) {
    if (error instanceof TesseraError) return error.code;
    throw error;
  }
}

function caught(run: () => unknown): TesseraError {
  try {
    run();
  } catch (error) {
    if (error instanceof TesseraError) return error;
    throw error;
  }
  throw new Error("expected a TesseraError");
}

describe(`shard format (seed ${seed})`, () => {
  it("round-trips 0 B, 1 B, exact stripe multiples and odd sizes, for every data shard", async () => {
    const prng = new Prng(seed);
    const sizes = [0, 1, 7, 8, SMALL_BLOCK_BYTES - 1, SMALL_BLOCK_BYTES, SMALL_BLOCK_BYTES + 1, 5 * SMALL_BLOCK_BYTES, 5 * SMALL_BLOCK_BYTES + 131];
    for (const size of sizes) {
      const data = prng.bytes(size);
      const rebuilt = Buffer.alloc(shardLayout(makeHeader(prng, { objectLength: size })).stripeCount * SMALL_BLOCK_BYTES);
      const base = makeHeader(prng, { objectLength: size });
      for (let shardIndex = 0; shardIndex < K; shardIndex++) {
        const header = { ...base, shardIndex };
        const file = await serialize(header, dataChunks(data, header));
        expect(file.length, `size ${size}`).toBe(shardLayout(header).fileBytes);
        const chunks: Buffer[] = [];
        const reader = readShard(Readable.from([file]), header);
        let result = await reader.next();
        while (result.done !== true) {
          chunks.push(Buffer.from(result.value.chunk));
          result = await reader.next();
        }
        expect(result.value.objectLength).toBe(size);
        chunks.forEach((chunk, stripe) => chunk.copy(rebuilt, stripe * SMALL_BLOCK_BYTES + shardIndex * chunk.length));
      }
      expect(rebuilt.subarray(0, size).equals(data), `size ${size}, seed ${seed}`).toBe(true);
    }
  });

  it("parses the same whatever the input piece boundaries", async () => {
    const prng = new Prng(seed + 1);
    const header = makeHeader(prng, { objectLength: 7 * SMALL_BLOCK_BYTES + 5 });
    const chunks = dataChunks(prng.bytes(header.objectLength), header);
    const file = await serialize(header, chunks);
    for (let trial = 0; trial < 20; trial++) {
      const parsed = parseInPieces(file, prng, ShardParser.forFile(header));
      expect(Buffer.concat(parsed).equals(Buffer.concat(chunks)), `trial ${trial}, seed ${seed}`).toBe(true);
    }
  });

  it("detects a flipped byte anywhere and pins a chunk's flip to that chunk", async () => {
    const prng = new Prng(seed + 2);
    for (const checksumAlgorithm of [ChecksumAlgorithm.Crc32c, ChecksumAlgorithm.Xxh64]) {
      const header = makeHeader(prng, { checksumAlgorithm });
      const layout = shardLayout(header);
      const file = await serialize(header, dataChunks(prng.bytes(header.objectLength), header));
      for (let position = 0; position < file.length; position++) {
        const bad = Buffer.from(file);
        bad[position] = (bad[position] ?? 0) ^ (1 << prng.int(0, 7));
        const error = caught(() => parseInPieces(bad, prng, ShardParser.forFile()));
        if (position < SHARD_HEADER_BYTES) {
          expect(error.code, `header byte ${position}`).toBe("ERR_SHARD_HEADER");
        } else {
          const stripe = Math.floor((position - SHARD_HEADER_BYTES) / layout.frameBytes);
          expect(error.code, `byte ${position}`).toBe("ERR_SHARD_CHECKSUM");
          expect(error.details, `byte ${position}`).toEqual({ shardIndex: header.shardIndex, chunkIndex: stripe });
        }
      }
    }
  });

  it("detects every truncation and any trailing bytes", async () => {
    const prng = new Prng(seed + 3);
    const header = makeHeader(prng);
    const file = await serialize(header, dataChunks(prng.bytes(header.objectLength), header));
    for (let length = 0; length < file.length; length++) {
      expect(codeOf(() => parseInPieces(file.subarray(0, length), prng, ShardParser.forFile(header))), `length ${length}`).toBe("ERR_SHARD_TRUNCATED");
    }
    const longer = Buffer.concat([file, Buffer.alloc(shardLayout(header).frameBytes)]);
    expect(codeOf(() => parseInPieces(longer, prng, ShardParser.forFile(header)))).toBe("ERR_SHARD_TOO_LONG");
    expect(codeOf(() => parseInPieces(Buffer.concat([file, Buffer.alloc(1)]), prng, ShardParser.forFile(header)))).toBe("ERR_SHARD_TRUNCATED");
  });

  it("refuses a header of another object, version, part or shard index", async () => {
    const prng = new Prng(seed + 4);
    const header = makeHeader(prng);
    const bytes = encodeShardHeader(header);
    expect(decodeShardHeader(bytes, header)).toEqual(header);
    const others: [Partial<ShardHeader>, string][] = [
      [{ objectId: prng.bytes(16) }, "shard header: belongs to another object"],
      [{ versionId: prng.bytes(16) }, "shard header: belongs to another version"],
      [{ partNumber: 3 }, "shard header: belongs to part 0, not 3"],
      [{ shardIndex: 0 }, "shard header: is shard 1, not 0"],
    ];
    for (const [change, message] of others) {
      const error = caught(() => decodeShardHeader(bytes, { ...header, ...change }));
      expect(error.code).toBe("ERR_SHARD_HEADER");
      expect(error.message).toBe(message);
    }
    expect(caught(() => decodeShardHeader(Buffer.concat([Buffer.from("NOPE"), bytes.subarray(4)]))).message).toBe(
      "shard header: bad magic (not a Tessera shard file)",
    );
  });

  it("range-reads frames straight from their offsets", async () => {
    const prng = new Prng(seed + 5);
    const header = makeHeader(prng, { objectLength: 9 * SMALL_BLOCK_BYTES });
    const layout = shardLayout(header);
    const chunks = dataChunks(prng.bytes(header.objectLength), header);
    const file = await serialize(header, chunks);
    for (const [first, count] of [[0, 1], [3, 4], [8, 1], [0, 9], [5, 0]] as const) {
      const slice = file.subarray(frameOffset(layout, first), frameOffset(layout, first + count));
      const got: number[] = [];
      for await (const { stripe, pieces } of readFramePieces(Readable.from([slice]), header, first, count)) {
        expect(Buffer.concat(pieces).equals(chunks[stripe] ?? Buffer.alloc(0))).toBe(true);
        got.push(stripe);
      }
      expect(got).toEqual(Array.from({ length: count }, (_, i) => first + i));
    }
  });

  it("verifies in a stream pipeline and passes bytes through unchanged", async () => {
    const prng = new Prng(seed + 6);
    const header = makeHeader(prng, { objectLength: 4 * SMALL_BLOCK_BYTES + 9 });
    const file = await serialize(header, dataChunks(prng.bytes(header.objectLength), header));
    const sink = (out: Buffer[]) => new Writable({ write: (chunk: Buffer, _e, done) => { out.push(chunk); done(); } });
    const passed: Buffer[] = [];
    await pipeline(Readable.from([file.subarray(0, 100), file.subarray(100)]), createShardVerifier(header), sink(passed));
    expect(Buffer.concat(passed).equals(file)).toBe(true);
    const bad = Buffer.from(file);
    bad[SHARD_HEADER_BYTES + 3] = (bad[SHARD_HEADER_BYTES + 3] ?? 0) ^ 0xff;
    await expect(pipeline(Readable.from([bad]), createShardVerifier(header), sink([]))).rejects.toMatchObject({ code: "ERR_SHARD_CHECKSUM" });
    await expect(pipeline(Readable.from([file.subarray(0, file.length - 1)]), createShardVerifier(header), sink([]))).rejects.toMatchObject({
      code: "ERR_SHARD_TRUNCATED",
    });
  });

  it("writer refuses too few or too many chunks", async () => {
    const prng = new Prng(seed + 7);
    const header = makeHeader(prng);
    const chunks = dataChunks(prng.bytes(header.objectLength), header);
    await expect(serialize(header, chunks.slice(1))).rejects.toMatchObject({ code: "ERR_SHARD_TRUNCATED" });
    await expect(serialize(header, [...chunks, chunks[0] ?? Buffer.alloc(0)])).rejects.toMatchObject({ code: "ERR_SHARD_TOO_LONG" });
  });

  it("validates every header field with a message naming it", () => {
    const prng = new Prng(seed + 8);
    const cases: [Partial<ShardHeader>, string][] = [
      [{ checksumAlgorithm: 0 as ChecksumAlgorithm }, "checksumAlgorithm: unknown algorithm 0"],
      [{ k: 0 }, "k: must be an integer in 1..24, got 0"],
      [{ m: 7 }, "m: must be an integer in 0..6, got 7"],
      [{ shardIndex: 6 }, "shardIndex: must be an integer in 0..5, got 6"],
      [{ blockBytes: 100 }, "blockBytes: must be a positive multiple of k * 8 = 32 up to 16777216, got 100"],
      [{ partNumber: 10_001 }, "partNumber: must be an integer in 0..10000, got 10001"],
      [{ objectLength: -1 }, "objectLength: must be an integer in 0..5497558138880, got -1"],
      [{ objectId: Buffer.alloc(3) }, "objectId: must be 16 bytes, got 3"],
      [{ versionId: Buffer.alloc(17) }, "versionId: must be 16 bytes, got 17"],
    ];
    for (const [change, message] of cases) {
      const error = caught(() => encodeShardHeader(makeHeader(prng, change)));
      expect(error.code).toBe("ERR_INVALID_ARGUMENT");
      expect(error.message).toBe(message);
    }
  });

  it("shrinks the stripe for small objects, never below k * 8 nor above the cluster's", () => {
    const block = 1024 * 1024;
    expect(chooseBlockBytes(0, 4, block)).toBe(32);
    expect(chooseBlockBytes(1, 4, block)).toBe(32);
    expect(chooseBlockBytes(33, 4, block)).toBe(64);
    expect(chooseBlockBytes(100_000, 4, block)).toBe(100_000);
    expect(chooseBlockBytes(100_001, 4, block)).toBe(100_032);
    expect(chooseBlockBytes(50 * block, 4, block)).toBe(block);
    expect(chooseBlockBytes(10, 6, 6 * 8 * 1000)).toBe(48);
  });
});
