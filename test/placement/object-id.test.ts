import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { formatObjectId, objectId, objectIdHex, parseObjectId } from "../../placement/object-id.js";
import { Prng, seedFromEnv } from "../prng.js";

/**
 * Golden ids. These must never change: placement hashes the id, so a new value here means
 * every stored object would be looked for on the wrong disks.
 */
const GOLDEN: [bucket: string, key: string, hex: string][] = [
  ["photos", "2024/cat.jpg", "89c89a4ef0d0b487a0358fa66bbce8b0"],
  ["a", "b/c", "9cfdd97814ef4ed8742f593987aa638e"],
  ["a/b", "c", "22c75bdceecc0e4ab4e0a2fd4b525a7f"],
  ["bucket", "ключ/ü ☃", "1538fe9818c891d2a039a4e04f6d54d0"],
  ["logs", "x".repeat(1024), "59d368e2134c9eba9e251f34343d34a5"],
];

/** The documented encoding, written out independently of placement/object-id.ts. */
function specified(bucket: string, key: string): string {
  const prefixed = (text: string): Buffer => {
    const bytes = Buffer.from(text, "utf8");
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    return Buffer.concat([length, bytes]);
  };
  const input = Buffer.concat([Buffer.from("tessera/object-id/v1"), prefixed(bucket), prefixed(key)]);
  return createHash("sha256").update(input).digest("hex").slice(0, 32);
}

describe("objectId", () => {
  it.each(GOLDEN)("(%s, %s) has its golden id", (bucket, key, hex) => {
    expect(objectIdHex(bucket, key)).toBe(hex);
    expect(specified(bucket, key)).toBe(hex);
  });

  it("is 16 bytes and matches its 32-char lowercase hex form", () => {
    const id = objectId("photos", "2024/cat.jpg");
    expect(id).toHaveLength(16);
    expect(formatObjectId(id)).toBe("89c89a4ef0d0b487a0358fa66bbce8b0");
    expect(parseObjectId("89c89a4ef0d0b487a0358fa66bbce8b0").equals(id)).toBe(true);
  });

  it("keeps apart bucket/key splits that concatenate to the same text", () => {
    const seed = seedFromEnv(0x0b1ec7);
    const prng = new Prng(seed);
    for (let trial = 0; trial < 1000; trial++) {
      const text = prng.bytes(prng.int(2, 24)).toString("base64");
      const cut = prng.int(1, text.length - 1);
      const other = cut === 1 ? text.length - 1 : cut - 1;
      expect(objectIdHex(text.slice(0, cut), text.slice(cut)), `seed ${seed}, "${text}"`).not.toBe(
        objectIdHex(text.slice(0, other), text.slice(other)),
      );
    }
  });

  it("formats a subarray view correctly", () => {
    const backing = Buffer.alloc(40, 0xff);
    objectId("a", "b/c").copy(backing, 7);
    expect(formatObjectId(backing.subarray(7, 23))).toBe("9cfdd97814ef4ed8742f593987aa638e");
  });

  it("refuses bad arguments with their names", () => {
    expect(() => objectId("", "k")).toThrow("bucket: must be a non-empty string");
    expect(() => objectId("b", "")).toThrow("key: must be a non-empty string");
    expect(() => formatObjectId(Buffer.alloc(15))).toThrow("objectId: must be 16 bytes, got 15");
    expect(() => parseObjectId("89C89A4EF0D0B487A0358FA66BBCE8B0")).toThrow("objectId: must be 32 lowercase hex characters");
    expect(() => parseObjectId("89c89a4e")).toThrow("objectId: must be 32 lowercase hex characters");
  });
});
