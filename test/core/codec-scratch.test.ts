/**
 * reconstruct with a reused scratch (createScratch): the same bytes as with fresh memory,
 * stripe after stripe, and a scratch of the wrong size or overlapping a chunk is refused.
 * reconstructInPlace (the caller fills the k sources' places itself): the same bytes, and bad
 * sources, targets or scratches refused.
 */
import { describe, expect, it } from "vitest";
import { ErasureCodec, splitChunks } from "../../core/codec.js";
import { Prng } from "../prng.js";

const CHUNK_BYTES = 4096;

async function stripeOf(codec: ErasureCodec, seed: number): Promise<Buffer[]> {
  const data = splitChunks(Buffer.from(new Prng(seed).bytes(codec.k * CHUNK_BYTES)), CHUNK_BYTES);
  return [...data, ...(await codec.encode(data))];
}

describe("reconstruct with a reused scratch", () => {
  it("gives the bytes a fresh reconstruct gives, for every loss pattern, stripe after stripe", async () => {
    const codec = new ErasureCodec({ k: 4, m: 2 });
    const scratch = codec.createScratch(CHUNK_BYTES);
    const lost = [[0], [3], [4], [0, 1], [1, 5], [2, 3], [4, 5], [0, 4]];
    for (const [round, missing] of lost.entries()) {
      const full = await stripeOf(codec, 100 + round);
      const damaged = full.map((chunk, index) => (missing.includes(index) ? undefined : chunk));
      const fresh = await codec.reconstruct(damaged);
      const reused = await codec.reconstruct(damaged, undefined, scratch);
      expect(reused.map((chunk) => chunk.toString("hex"))).toEqual(fresh.map((chunk) => chunk.toString("hex")));
      expect(reused.map((chunk) => chunk.toString("hex"))).toEqual(full.map((chunk) => chunk.toString("hex")));
      // Rebuilt chunks live in the scratch; present ones are returned as given.
      for (const index of missing) expect(reused[index]?.buffer === scratch.stripe.buffer || reused[index]?.buffer === scratch.parity.buffer).toBe(true);
      for (const index of [0, 1, 2, 3, 4, 5].filter((each) => !missing.includes(each))) expect(reused[index]).toBe(full[index]);
    }
  });

  it("refuses a scratch of another chunk size, or one a chunk lives in", async () => {
    const codec = new ErasureCodec({ k: 4, m: 2 });
    const full = await stripeOf(codec, 7);
    const damaged = [undefined, ...full.slice(1)];
    await expect(codec.reconstruct(damaged, [0], codec.createScratch(2 * CHUNK_BYTES))).rejects.toThrow(/scratch/);
    const scratch = codec.createScratch(CHUNK_BYTES);
    const inside = [undefined, scratch.stripe.subarray(0, CHUNK_BYTES), ...full.slice(2)];
    await expect(codec.reconstruct(inside, [0], scratch)).rejects.toThrow(/overlap/);
  });

  it("reconstructInPlace computes what reconstruct does from sources the caller placed, for every loss pattern", async () => {
    const prng = new Prng(55);
    for (const [k, m] of [[4, 2], [2, 1], [6, 3]] as const) {
      const codec = new ErasureCodec({ k, m });
      const scratch = codec.createScratch(CHUNK_BYTES);
      for (let round = 0; round < 12; round++) {
        const full = await stripeOf(codec, 200 + round);
        const missing = new Set<number>();
        while (missing.size < prng.int(1, m)) missing.add(prng.int(0, k + m - 1));
        const sources = [...full.keys()].filter((index) => !missing.has(index)).slice(0, k);
        scratch.stripe.fill(0xaa);
        scratch.parity.fill(0x55);
        for (const index of sources) (full[index] as Buffer).copy(codec.scratchChunk(scratch, index));
        await codec.reconstructInPlace(scratch, sources, [...missing]);
        for (const index of missing) expect(codec.scratchChunk(scratch, index).equals(full[index] as Buffer), `${k}+${m} lost ${[...missing].join(",")}`).toBe(true);
      }
    }
  });

  it("reconstructInPlace refuses sources that are not k distinct indexes, targets among them or too many, and a scratch of another layout", async () => {
    const codec = new ErasureCodec({ k: 4, m: 2 });
    const scratch = codec.createScratch(CHUNK_BYTES);
    await expect(codec.reconstructInPlace(scratch, [0, 1, 2], [3])).rejects.toThrow(/sources/);
    await expect(codec.reconstructInPlace(scratch, [0, 1, 2, 2], [3])).rejects.toThrow(/sources/);
    await expect(codec.reconstructInPlace(scratch, [0, 1, 2, 4], [4])).rejects.toThrow(/targets/);
    await expect(codec.reconstructInPlace(scratch, [0, 1, 2, 4], [3, 5, 5])).rejects.toThrow(/targets/);
    await expect(codec.reconstructInPlace(scratch, [0, 1, 2, 4], [9])).rejects.toThrow(/index/);
    await expect(codec.reconstructInPlace({ stripe: scratch.stripe, parity: scratch.parity.subarray(1) }, [0, 1, 2, 4], [3])).rejects.toThrow(/scratch/);
    expect(() => codec.scratchChunk(scratch, 6)).toThrow(/index/);
  });
});
