import { describe, expect, it } from "vitest";
import { RANDOM_POOL_BYTES, randomHex, randomPooled } from "../../core/random-pool.js";

describe("random pool", () => {
  it("hands out fresh bytes across pool refills, never the same ones twice", () => {
    const draws = Array.from({ length: (3 * RANDOM_POOL_BYTES) / 16 + 7 }, () => randomHex(16));
    expect(new Set(draws).size).toBe(draws.length);
    expect(draws.every((hex) => /^[0-9a-f]{32}$/.test(hex))).toBe(true);
  });

  it("returns copies: changing one does not change the next", () => {
    const first = randomPooled(8);
    const copy = Buffer.from(first);
    first.fill(0);
    expect(randomPooled(8).equals(copy)).toBe(false);
  });

  it("refuses counts outside 1..RANDOM_POOL_BYTES", () => {
    for (const bad of [0, -1, 1.5, RANDOM_POOL_BYTES + 1]) expect(() => randomPooled(bad)).toThrow(/count/);
  });
});
