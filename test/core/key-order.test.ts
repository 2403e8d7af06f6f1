import { describe, expect, it } from "vitest";
import { afterPrefix, compareKeys } from "../../core/key-order.js";
import { Prng, seedFromEnv } from "../prng.js";

const seed = seedFromEnv(0x5eed_0003);
const ALPHABET = ["a", "b", "/", "é", "\uffef", "\ue000", "😀", "\u{10ffff}", "0", " "];

describe(`key order (seed ${seed})`, () => {
  it("agrees with UTF-8 byte order on random keys, astral characters included", () => {
    const prng = new Prng(seed);
    for (let trial = 0; trial < 5000; trial++) {
      const make = () => Array.from({ length: prng.int(0, 5) }, () => ALPHABET[prng.int(0, ALPHABET.length - 1)]).join("");
      const a = make();
      const b = make();
      const bytes = Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b)));
      expect(Math.sign(compareKeys(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).toBe(bytes);
    }
  });

  it("puts afterPrefix above every key with that prefix", () => {
    for (const key of ["p/", "p/a", "p/\uffff", "p/😀😀", "p/\u{10ffff}"]) expect(compareKeys(afterPrefix("p/"), key)).toBeGreaterThan(0);
    expect(compareKeys(afterPrefix("p/"), "q")).toBeLessThan(0);
  });
});
