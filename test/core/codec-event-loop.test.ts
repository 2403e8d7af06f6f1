/**
 * Small stripes are encoded on the event loop in JavaScript (core/codec.ts,
 * CODEC_EVENT_LOOP_STRIPE_BYTES_MAX): their parity must be byte for byte what the addon
 * computes, for every (k, m) the addon supports and every aligned chunk size class, from
 * unaligned views as well as aligned buffers. Replay a failure with TEST_SEED=<seed>.
 */
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import type * as ReedSolomon from "@ronomon/reed-solomon";
import { CODEC_EVENT_LOOP_STRIPE_BYTES_MAX, ErasureCodec } from "../../core/codec.js";
import { CHUNK_ALIGN_BYTES, EC_K_MAX, EC_M_MAX } from "../../core/limits.js";
import { Prng, seedFromEnv } from "../prng.js";

const require = createRequire(import.meta.url);
const addon = require("@ronomon/reed-solomon") as typeof ReedSolomon;
const SEED = seedFromEnv(0xe1e1);
/** Chunk sizes drawn per (k, m), besides the smallest and the largest under the limit. */
const RANDOM_CHUNK_SIZES = 3;

/** The addon's parity of `stripe` (k data chunks), through its threadpool. */
function addonParity(k: number, m: number, stripe: Buffer): Promise<Buffer> {
  const parity = Buffer.alloc((stripe.length / k) * m);
  const context = addon.create(k, m);
  const sources = (1 << k) - 1;
  const targets = ((1 << (k + m)) - 1) & ~sources;
  return new Promise((resolve, reject) => {
    addon.encode(context, sources, targets, stripe, 0, stripe.length, parity, 0, parity.length, (error) => (error ? reject(error) : resolve(parity)));
  });
}

describe(`codec parity on the event loop (seed ${SEED})`, () => {
  it("matches the addon for every (k, m) and chunk sizes up to the limit", async () => {
    const prng = new Prng(SEED);
    for (let k = 1; k <= EC_K_MAX; k++) {
      for (let m = 1; m <= EC_M_MAX; m++) {
        const codec = new ErasureCodec({ k, m });
        const unitsMax = Math.floor(CODEC_EVENT_LOOP_STRIPE_BYTES_MAX / (k * CHUNK_ALIGN_BYTES));
        const units = [1, unitsMax, ...Array.from({ length: RANDOM_CHUNK_SIZES }, () => prng.int(1, unitsMax))];
        for (const unit of units) {
          const chunkBytes = unit * CHUNK_ALIGN_BYTES;
          // Offset by an odd byte count inside a bigger buffer: the XOR must not assume alignment.
          const offset = prng.int(0, 1) * prng.int(1, 7);
          const stripe = prng.bytes(offset + k * chunkBytes).subarray(offset);
          const expected = await addonParity(k, m, Buffer.from(stripe));
          const got = await codec.encodeStripe(stripe);
          expect(got.equals(expected), `${k}+${m} chunk ${chunkBytes} offset ${offset} seed ${SEED}`).toBe(true);
        }
      }
    }
  });

  it("leaves the stripe as it was and fills a reused parity buffer completely", async () => {
    const prng = new Prng(SEED + 1);
    const codec = new ErasureCodec({ k: 4, m: 2 });
    const stripe = prng.bytes(4 * 1024);
    const before = Buffer.from(stripe);
    const parity = Buffer.alloc(2 * 1024, 0xa5);
    await codec.encodeStripe(stripe, parity);
    expect(stripe.equals(before)).toBe(true);
    expect(parity.equals(await addonParity(4, 2, stripe))).toBe(true);
  });
});
