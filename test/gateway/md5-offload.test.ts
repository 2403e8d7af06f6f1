/**
 * The offloaded MD5 (gateway/objects/md5-offload.ts) equals node:crypto's MD5 for bodies
 * that stay on the event loop (under one batch) and bodies hashed in a worker, in any piece
 * sizes, with backpressure awaited; a dropped body leaves nothing behind for the next one.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { MD5_BATCH_BYTES, MD5_IN_FLIGHT_BYTES_MAX, MD5_POOL_IDLE_MS, md5PooledBuffers, OffloadedMd5, trimIdleMd5Pool } from "../../gateway/objects/md5-offload.js";
import { Prng, seedFromEnv } from "../prng.js";

const seed = seedFromEnv(0x3d5_0ff1);

async function offloaded(data: Buffer, prng: Prng, pieceMax: number): Promise<Buffer> {
  const md5 = new OffloadedMd5();
  for (let at = 0; at < data.length; ) {
    const take = Math.min(data.length - at, prng.int(1, pieceMax));
    const waited = md5.update(data.subarray(at, at + take));
    if (waited !== undefined) await waited;
    at += take;
  }
  return md5.digest();
}

describe(`offloaded MD5 (seed ${seed})`, () => {
  const prng = new Prng(seed);
  const sizes = [0, 1, 4096, MD5_BATCH_BYTES - 1, MD5_BATCH_BYTES, MD5_BATCH_BYTES + 1, 3 * MD5_IN_FLIGHT_BYTES_MAX + 12_345];
  for (const size of sizes) {
    it(`matches node:crypto for ${size} bytes`, async () => {
      const data = prng.bytes(size);
      const expected = createHash("md5").update(data).digest();
      expect((await offloaded(data, prng, 256 * 1024)).equals(expected)).toBe(true);
      expect((await offloaded(data, prng, 3 * MD5_BATCH_BYTES)).equals(expected)).toBe(true);
    });
  }

  it("hashes many bodies at once, each its own", async () => {
    const bodies = Array.from({ length: 8 }, (_, index) => prng.bytes(MD5_BATCH_BYTES * 2 + index));
    const digests = await Promise.all(bodies.map((body) => offloaded(body, new Prng(seed + body.length), 128 * 1024)));
    digests.forEach((digest, index) => expect(digest.equals(createHash("md5").update(bodies[index] as Buffer).digest())).toBe(true));
  });

  it("keeps its batch buffers for the next bodies, and empties the pool once none was taken for MD5_POOL_IDLE_MS", async () => {
    const bodies = Array.from({ length: 4 }, () => prng.bytes(3 * MD5_BATCH_BYTES));
    await Promise.all(bodies.map((body) => offloaded(body, prng, 256 * 1024)));
    const pooled = md5PooledBuffers();
    expect(pooled).toBeGreaterThan(0);
    const taken = Date.now();
    expect(trimIdleMd5Pool(taken + MD5_POOL_IDLE_MS / 2)).toBe(0);
    expect(md5PooledBuffers()).toBe(pooled);
    expect(trimIdleMd5Pool(taken + MD5_POOL_IDLE_MS + 1)).toBe(pooled);
    expect(md5PooledBuffers()).toBe(0);
    // Hashing goes on after a trim, with fresh buffers.
    const data = prng.bytes(2 * MD5_BATCH_BYTES + 3);
    expect((await offloaded(data, prng, 512 * 1024)).equals(createHash("md5").update(data).digest())).toBe(true);
    expect(md5PooledBuffers()).toBeGreaterThan(0);
  });

  it("forgets a dropped body", async () => {
    const dropped = new OffloadedMd5();
    dropped.update(prng.bytes(2 * MD5_BATCH_BYTES));
    dropped.drop();
    const data = prng.bytes(MD5_BATCH_BYTES + 7);
    expect((await offloaded(data, prng, 64 * 1024)).equals(createHash("md5").update(data).digest())).toBe(true);
  });
});
