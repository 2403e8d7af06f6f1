/**
 * ShardChecker (the storage node's write-path check, core/shard-stream.ts) against
 * ShardParser.forFile, differentially: for seeded shards of both checksum algorithms, cut in
 * random pieces, whole, with every single byte flipped and cut short, both accept the same
 * files and refuse the others with the same error code and message; run long, both refuse. The
 * same for runs of frames (ShardChecker.forFrames against ShardParser.forFrames), whose chunks
 * come out as the input's own pieces and equal the parser's. And RunningChecksum over pieces
 * equals the one-shot checksum.
 */
import { describe, expect, it } from "vitest";
import { ChecksumAlgorithm, RunningChecksum, computeChecksum } from "../../core/checksum.js";
import { TesseraError } from "../../core/errors.js";
import { frameOffset, shardLayout, type ShardHeader } from "../../core/shard-format.js";
import { ShardChecker, ShardParser, readFramePieces, writeShard } from "../../core/shard-stream.js";
import { Prng, seedFromEnv } from "../prng.js";

const seed = seedFromEnv(0x5eed_c4ec);
/** 4 chunks of 64 bytes per stripe: every byte of a small file can be flipped quickly. */
const BLOCK_BYTES = 4 * 64;

function header(prng: Prng, checksumAlgorithm: ChecksumAlgorithm): ShardHeader {
  return { checksumAlgorithm, k: 4, m: 2, shardIndex: 2, blockBytes: BLOCK_BYTES, partNumber: 0, objectLength: 3 * BLOCK_BYTES - 5, objectId: prng.bytes(16), versionId: prng.bytes(16) };
}

async function shardFile(prng: Prng, shard: ShardHeader): Promise<Buffer> {
  const chunks = Array.from({ length: 3 }, () => prng.bytes(64));
  const parts: Buffer[] = [];
  for await (const part of writeShard(shard, chunks)) parts.push(part);
  return Buffer.concat(parts);
}

function pieces(file: Buffer, prng: Prng): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < file.length; ) {
    const take = Math.min(file.length - at, prng.int(1, 90));
    out.push(file.subarray(at, at + take));
    at += take;
  }
  return out;
}

/** "ok" or "CODE: message" for a run of `push` over the pieces, then `end`. */
function verdict(run: { push(bytes: Buffer): unknown; end(): void }, parts: readonly Buffer[]): string {
  try {
    for (const part of parts) run.push(part);
    run.end();
    return "ok";
  } catch (error) {
    if (error instanceof TesseraError) return `${error.code}: ${error.message}`;
    throw error;
  }
}

function identity(shard: ShardHeader): Pick<ShardHeader, "objectId" | "versionId" | "shardIndex" | "partNumber"> {
  return { objectId: shard.objectId, versionId: shard.versionId, shardIndex: shard.shardIndex, partNumber: shard.partNumber };
}

describe(`ShardChecker agrees with ShardParser (seed ${seed})`, () => {
  for (const algorithm of [ChecksumAlgorithm.Crc32c, ChecksumAlgorithm.Xxh64]) {
    it(`algorithm ${algorithm}: whole, flipped bytes, short, long`, async () => {
      const prng = new Prng(seed + algorithm);
      const shard = header(prng, algorithm);
      const file = await shardFile(prng, shard);
      const both = (bytes: Buffer): void => {
        const parts = pieces(bytes, prng);
        expect(verdict(new ShardChecker(identity(shard)), parts)).toBe(verdict(ShardParser.forFile(identity(shard)), parts));
      };
      expect(verdict(new ShardChecker(identity(shard)), pieces(file, prng))).toBe("ok");
      both(file);
      for (let at = 0; at < file.length; at++) {
        const flipped = Buffer.from(file);
        flipped[at] = (flipped[at] as number) ^ (1 << prng.int(0, 7));
        both(flipped);
      }
      for (const cut of [0, 1, 79, 80, 81, 100, file.length - 1]) both(file.subarray(0, cut));
      // One byte too many: the parser notices at the end (a partial frame), the checker at once.
      const long = pieces(Buffer.concat([file, Buffer.from([1])]), prng);
      expect(verdict(new ShardChecker(identity(shard)), long)).toMatch(/^ERR_SHARD_TOO_LONG: /);
      expect(verdict(ShardParser.forFile(identity(shard)), long)).not.toBe("ok");
    });
  }

  for (const algorithm of [ChecksumAlgorithm.Crc32c, ChecksumAlgorithm.Xxh64]) {
    it(`algorithm ${algorithm}: runs of frames give the parser's chunks as the input's own pieces, and its verdicts`, async () => {
      const prng = new Prng(seed + 10 + algorithm);
      const shard = header(prng, algorithm);
      const layout = shardLayout(shard);
      const file = await shardFile(prng, shard);
      for (const [first, count] of [[0, 3], [1, 1], [2, 1], [1, 2], [0, 0]] as const) {
        const run = file.subarray(frameOffset(layout, first), frameOffset(layout, first + count));
        const parts = pieces(run, prng);
        const parsed: Buffer[] = [];
        const parser = ShardParser.forFrames(shard, first, count);
        for (const part of parts) for (const { chunk } of parser.push(part)) parsed.push(Buffer.from(chunk));
        parser.end();
        const checker = ShardChecker.forFrames(shard, first, count);
        const got: { stripe: number; pieces: readonly Buffer[] }[] = [];
        for (const part of parts) got.push(...checker.push(part));
        checker.end();
        expect(got.map((chunk) => chunk.stripe)).toEqual(Array.from({ length: count }, (_, index) => first + index));
        expect(got.map((chunk) => Buffer.concat(chunk.pieces))).toEqual(parsed);
        // Views of the input, not copies.
        for (const chunk of got) for (const piece of chunk.pieces) expect(parts.some((part) => part.buffer === piece.buffer)).toBe(true);
        const streamed: Buffer[] = [];
        for await (const chunk of readFramePieces((async function* () { yield* parts; })(), shard, first, count)) streamed.push(Buffer.concat(chunk.pieces));
        expect(streamed).toEqual(parsed);
        if (count === 0) continue;
        const both = (bytes: Buffer): void => {
          const cut = pieces(bytes, prng);
          expect(verdict(ShardChecker.forFrames(shard, first, count), cut)).toBe(verdict(ShardParser.forFrames(shard, first, count), cut));
        };
        for (let at = 0; at < run.length; at++) {
          const flipped = Buffer.from(run);
          flipped[at] = (flipped[at] as number) ^ (1 << prng.int(0, 7));
          both(flipped);
        }
        for (const cut of [0, 1, 64, layout.frameBytes, run.length - 1]) both(run.subarray(0, cut));
        expect(verdict(ShardChecker.forFrames(shard, first, count), [run, Buffer.from([1])])).toMatch(/^ERR_SHARD_TOO_LONG: /);
      }
    });
  }

  it("RunningChecksum over pieces equals the one-shot checksum", () => {
    const prng = new Prng(seed);
    for (const algorithm of [ChecksumAlgorithm.Crc32c, ChecksumAlgorithm.Xxh64]) {
      const data = prng.bytes(prng.int(1, 5000));
      const running = new RunningChecksum(algorithm);
      for (const part of pieces(data, prng)) running.update(part);
      expect(running.matches(computeChecksum(algorithm, data), 0)).toBe(true);
      running.reset();
      running.update(data);
      expect(running.matches(computeChecksum(algorithm, data), 0)).toBe(true);
    }
  });
});
