/**
 * The erasure codec: every set of up to m lost chunks round-trips for the common (k, m);
 * every bad argument fails with its exact message; the golden-vector self-test passes and
 * catches a tampered vector. Replay a failure with TEST_SEED=<seed printed in the message>.
 */
import { describe, expect, it } from "vitest";
import { CODEC_CHUNK_BYTES_MAX, ErasureCodec, splitChunks } from "../../core/codec.js";
import { codecSelfTest, loadCodecVectors } from "../../core/codec-self-test.js";
import type { CodecVector, CodecVectors } from "../../core/codec-self-test.js";
import { TesseraError } from "../../core/errors.js";
import { EC_K_DEFAULT, EC_M_DEFAULT } from "../../core/limits.js";
import { Prng, seedFromEnv } from "../prng.js";

const SEED = seedFromEnv(0xc0dec);
/** Chunk sizes drawn per configuration: small keeps ~13,000 reconstructs to about a second. */
const CHUNK_ALIGNED_UNITS_MAX = 16;
/** Reconstructs in flight at once: keeps the libuv threadpool (4 threads) busy. */
const BATCH_SIZE = 64;
/** Random loss sets tried where trying every one would take too long (24+6: ~800,000). */
const SAMPLED_LOSS_SETS = 300;
const KiB = 1024;
/** The vectors file stays small enough to read in review. */
const VECTORS_FILE_BYTES_MAX = 100 * KiB;
const SHA256_HEX_CHARS = 64;

/** (k, m, number of loss sets of size 0..m = sum of C(k+m, i)). */
const EXHAUSTIVE: readonly (readonly [k: number, m: number, lossSets: number])[] = [
  [4, 2, 22],
  [6, 3, 130],
  [8, 3, 232],
  [10, 4, 1471],
  [12, 4, 2517],
];

function combinations(n: number, size: number, start = 0): number[][] {
  if (size === 0) return [[]];
  const result: number[][] = [];
  for (let first = start; first <= n - size; first++) {
    for (const rest of combinations(n, size - 1, first + 1)) result.push([first, ...rest]);
  }
  return result;
}

function lossSetsUpTo(n: number, lostMax: number): number[][] {
  return Array.from({ length: lostMax + 1 }, (_, size) => combinations(n, size)).flat();
}

function randomLossSet(prng: Prng, n: number, lostMax: number): number[] {
  const lost = new Set<number>();
  const size = prng.int(0, lostMax);
  while (lost.size < size) lost.add(prng.int(0, n - 1));
  return [...lost].sort((a, b) => a - b);
}

interface Stripe {
  readonly codec: ErasureCodec;
  /** The k data then m parity chunks, as views of the encoded stripe. */
  readonly shards: readonly Buffer[];
  /** Independent copies of `shards`, to catch the codec writing into its inputs. */
  readonly pristine: readonly Buffer[];
}

async function encodedStripe(k: number, m: number, chunkBytes: number, prng: Prng): Promise<Stripe> {
  const codec = new ErasureCodec({ k, m });
  const data = prng.bytes(k * chunkBytes);
  const parity = await codec.encodeStripe(data);
  const shards = [...splitChunks(data, chunkBytes), ...splitChunks(parity, chunkBytes)];
  return { codec, shards, pristine: shards.map((shard) => Buffer.from(shard)) };
}

/**
 * The `want` lists tried for one loss set: everything (the default), the data chunks only
 * (a degraded read) and the last lost chunk alone (the healer rebuilding one shard; the
 * addon then has missing chunks that are neither sources nor targets).
 */
function wantsFor(lost: readonly number[], k: number): (number[] | undefined)[] {
  const last = lost[lost.length - 1];
  return [undefined, Array.from({ length: k }, (_, index) => index), ...(last === undefined ? [] : [[last]])];
}

async function wrongChunks(stripe: Stripe, lost: readonly number[], want: number[] | undefined): Promise<number[]> {
  const damaged = stripe.shards.map((shard, index) => (lost.includes(index) ? undefined : shard));
  const rebuilt = await stripe.codec.reconstruct(damaged, want);
  const indexes = want ?? stripe.shards.map((_, index) => index);
  expect(rebuilt).toHaveLength(indexes.length);
  return indexes.filter((index, position) => !rebuilt[position]?.equals(stripe.pristine[index] ?? Buffer.alloc(0)));
}

/** Reconstructs every loss set in concurrent batches; returns a description of each failure. */
async function roundTripFailures(stripe: Stripe, lossSets: readonly number[][]): Promise<string[]> {
  const failures: string[] = [];
  const cases = lossSets.flatMap((lost) => wantsFor(lost, stripe.codec.k).map((want) => ({ lost, want })));
  for (let start = 0; start < cases.length; start += BATCH_SIZE) {
    await Promise.all(
      cases.slice(start, start + BATCH_SIZE).map(async ({ lost, want }) => {
        const wrong = await wrongChunks(stripe, lost, want);
        if (wrong.length > 0) {
          failures.push(`lost [${lost.join(", ")}], want ${want ? `[${want.join(", ")}]` : "all"} -> wrong [${wrong.join(", ")}]`);
        }
      }),
    );
  }
  return failures;
}

/** Runs `action` and returns the TesseraError it threw or rejected with. */
async function caught(action: () => unknown): Promise<TesseraError> {
  try {
    await action();
  } catch (error) {
    if (error instanceof TesseraError) return error;
    throw error;
  }
  throw new Error("expected a TesseraError, but nothing was thrown");
}

async function expectInvalid(action: () => unknown, message: string): Promise<void> {
  const error = await caught(action);
  expect(error.code).toBe("ERR_INVALID_ARGUMENT");
  expect(error.message).toBe(message);
}

/** Bypasses the types to pass what a JavaScript caller or a bad config could. */
function loose<T>(value: unknown): T {
  return value as T;
}

const chunk64 = (): Buffer => Buffer.alloc(64);
const fourByTwo = new ErasureCodec({ k: 4, m: 2 });

describe("ErasureCodec round trips", () => {
  it.each(EXHAUSTIVE)("%i+%i: every set of up to m lost chunks is rebuilt exactly", async (k, m, expectedSets) => {
    const prng = new Prng(SEED);
    const chunkBytes = 8 * prng.int(1, CHUNK_ALIGNED_UNITS_MAX);
    const stripe = await encodedStripe(k, m, chunkBytes, prng);
    const lossSets = lossSetsUpTo(k + m, m);
    expect(lossSets.length).toBe(expectedSets);
    const failures = await roundTripFailures(stripe, lossSets);
    expect(failures, `seed ${SEED}, ${k}+${m}, ${chunkBytes}-byte chunks`).toEqual([]);
    expect(stripe.shards, `seed ${SEED}: inputs untouched`).toEqual(stripe.pristine);
  });

  it.each([
    [1, 2, 64],
    [3, 1, 64],
    [24, 6, 64],
    [EC_K_DEFAULT, EC_M_DEFAULT, 256 * KiB],
    [12, 4, 64 * KiB],
    [24, 6, 64 * KiB],
  ])("%i+%i with %i-byte chunks: random sets of up to m lost chunks are rebuilt", async (k, m, chunkBytes) => {
    const prng = new Prng(SEED);
    const stripe = await encodedStripe(k, m, chunkBytes, prng);
    const sets = chunkBytes > 64 ? SAMPLED_LOSS_SETS / 10 : SAMPLED_LOSS_SETS;
    const lossSets = Array.from({ length: sets }, () => randomLossSet(prng, k + m, m));
    const failures = await roundTripFailures(stripe, lossSets);
    expect(failures, `seed ${SEED}, ${k}+${m}, ${chunkBytes}-byte chunks`).toEqual([]);
  });

  it.each(EXHAUSTIVE)("%i+%i: encode, encode of copies and encodeStripe agree", async (k, m) => {
    const prng = new Prng(SEED);
    const codec = new ErasureCodec({ k, m });
    const chunkBytes = 8 * prng.int(1, CHUNK_ALIGNED_UNITS_MAX);
    const stripe = prng.bytes(k * chunkBytes);
    const fromStripe = await codec.encodeStripe(stripe);
    const fromViews = await codec.encode(splitChunks(stripe, chunkBytes));
    const fromCopies = await codec.encode(splitChunks(stripe, chunkBytes).map((chunk) => Buffer.from(chunk)));
    expect(fromViews.length, `seed ${SEED}`).toBe(m);
    expect(Buffer.concat(fromViews).equals(fromStripe), `seed ${SEED}: views`).toBe(true);
    expect(Buffer.concat(fromCopies).equals(fromStripe), `seed ${SEED}: copies`).toBe(true);
    expect(fromViews.every((chunk) => chunk.length === chunkBytes)).toBe(true);
  });

  it("encodeStripe writes into a given parity buffer and returns it", async () => {
    const prng = new Prng(SEED);
    const stripe = prng.bytes(4 * 64);
    const expected = await fourByTwo.encodeStripe(stripe);
    const pool = Buffer.alloc(3 * 64 * 2);
    const parity = pool.subarray(64, 64 + 2 * 64); // An offset view, as a reused pool slot would be.
    expect(await fourByTwo.encodeStripe(stripe, parity)).toBe(parity);
    expect(parity.equals(expected), `seed ${SEED}`).toBe(true);
    expect(pool.subarray(0, 64).equals(Buffer.alloc(64)), "bytes before the view untouched").toBe(true);
  });

  it("m = 0: encode returns no parity and reconstruct returns the chunks as given", async () => {
    const codec = new ErasureCodec({ k: 3, m: 0 });
    const chunks = [chunk64(), chunk64(), chunk64()];
    expect(await codec.encode(chunks)).toEqual([]);
    expect((await codec.encodeStripe(Buffer.alloc(3 * 64))).length).toBe(0);
    const rebuilt = await codec.reconstruct(chunks);
    rebuilt.forEach((chunk, index) => expect(chunk).toBe(chunks[index]));
    await expectInvalid(
      () => codec.reconstruct([chunk64(), undefined, chunk64()]),
      "chunks: 1 missing (indexes 1) but a 3+0 code recovers at most 0",
    );
  });

  it("reconstruct with `want` returns only those chunks, in that order, and leaves its input alone", async () => {
    const stripe = await encodedStripe(4, 2, 64, new Prng(SEED));
    const damaged = stripe.shards.map((shard, index) => (index === 2 || index === 5 ? undefined : shard));
    const before = [...damaged];

    const only = await fourByTwo.reconstruct(damaged, [2]);
    expect(only).toHaveLength(1);
    expect(only[0]?.equals(stripe.pristine[2] ?? Buffer.alloc(0)), `seed ${SEED}`).toBe(true);
    expect(damaged).toEqual(before);

    const mixed = await fourByTwo.reconstruct(damaged, [5, 0, 2]);
    expect(mixed[0]?.equals(stripe.pristine[5] ?? Buffer.alloc(0)), `seed ${SEED}`).toBe(true);
    expect(mixed[1]).toBe(damaged[0]); // Present chunks come back as given, not copied.
    expect(mixed[2]?.equals(stripe.pristine[2] ?? Buffer.alloc(0)), `seed ${SEED}`).toBe(true);

    expect(await fourByTwo.reconstruct(damaged, [])).toEqual([]);
    expect(await fourByTwo.reconstruct(damaged, [1, 3])).toEqual([damaged[1], damaged[3]]);
  });

  it("refuses more than m missing chunks", async () => {
    const shards = Array.from({ length: 6 }, chunk64);
    await expectInvalid(
      () => fourByTwo.reconstruct([undefined, shards[1], undefined, shards[3], shards[4], undefined]),
      "chunks: 3 missing (indexes 0, 2, 5) but a 4+2 code recovers at most 2",
    );
    await expectInvalid(
      () => fourByTwo.reconstruct(Array.from({ length: 6 }, () => undefined), [0]),
      "chunks: 6 missing (indexes 0, 1, 2, 3, 4, 5) but a 4+2 code recovers at most 2",
    );
  });
});

describe("ErasureCodec bad arguments", () => {
  it.each([
    [undefined, "options: expected an object {k, m}, got undefined"],
    [null, "options: expected an object {k, m}, got null"],
    [{ k: 0, m: 2 }, "k: expected an integer in [1, 24], got 0"],
    [{ k: 25, m: 2 }, "k: expected an integer in [1, 24], got 25"],
    [{ k: 4.5, m: 2 }, "k: expected an integer in [1, 24], got 4.5"],
    [{ k: Number.NaN, m: 2 }, "k: expected an integer in [1, 24], got NaN"],
    [{ k: "4", m: 2 }, 'k: expected an integer in [1, 24], got "4"'],
    [{ m: 2 }, "k: expected an integer in [1, 24], got undefined"],
    [{ k: 4, m: -1 }, "m: expected an integer in [0, 6], got -1"],
    [{ k: 4, m: 7 }, "m: expected an integer in [0, 6], got 7"],
    [{ k: 4, m: 1.5 }, "m: expected an integer in [0, 6], got 1.5"],
    [{ k: 4 }, "m: expected an integer in [0, 6], got undefined"],
  ])("constructor(%o) throws %s", async (options, message) => {
    await expectInvalid(() => new ErasureCodec(loose(options)), message);
  });

  it.each([
    ["not an array", () => Buffer.alloc(64), "data: expected an array of chunks, got a Buffer"],
    ["too few chunks", () => [chunk64(), chunk64(), chunk64()], "data: expected k = 4 chunks, got 3"],
    ["too many chunks", () => Array.from({ length: 5 }, chunk64), "data: expected k = 4 chunks, got 5"],
    ["a missing chunk", () => [chunk64(), undefined, chunk64(), chunk64()], "data[1]: expected a Buffer, got undefined"],
    ["a string chunk", () => [chunk64(), "abc", chunk64(), chunk64()], 'data[1]: expected a Buffer, got "abc"'],
    ["a non-Buffer view", () => [chunk64(), chunk64(), new Uint8Array(64), chunk64()], "data[2]: expected a Buffer, got object"],
    ["empty chunks", () => Array.from({ length: 4 }, () => Buffer.alloc(0)), "data[0]: expected a non-empty chunk"],
    ["unaligned chunks", () => Array.from({ length: 4 }, () => Buffer.alloc(60)), "data[0]: expected a multiple of 8 bytes, got 60"],
    [
      "unequal chunks",
      () => [chunk64(), chunk64(), Buffer.alloc(56), chunk64()],
      "data[2]: expected 64 bytes like data[0], got 56",
    ],
  ])("encode with %s", async (_case, data, message) => {
    await expectInvalid(() => fourByTwo.encode(loose(data())), message);
  });

  it("encode and encodeStripe refuse chunks over CODEC_CHUNK_BYTES_MAX", async () => {
    const codec = new ErasureCodec({ k: 1, m: 1 });
    const tooLarge = Buffer.alloc(CODEC_CHUNK_BYTES_MAX + 8);
    await expectInvalid(() => codec.encode([tooLarge]), `data[0]: expected at most ${CODEC_CHUNK_BYTES_MAX} bytes, got ${CODEC_CHUNK_BYTES_MAX + 8}`);
    await expectInvalid(
      () => codec.encodeStripe(tooLarge),
      `stripe: expected at most k * ${CODEC_CHUNK_BYTES_MAX} = ${CODEC_CHUNK_BYTES_MAX} bytes, got ${CODEC_CHUNK_BYTES_MAX + 8}`,
    );
  });

  it.each([
    ["no stripe", undefined, undefined, "stripe: expected a Buffer, got undefined"],
    ["an empty stripe", Buffer.alloc(0), undefined, "stripe: expected a non-zero multiple of k * 8 = 32 bytes, got 0"],
    ["an unaligned stripe", Buffer.alloc(100), undefined, "stripe: expected a non-zero multiple of k * 8 = 32 bytes, got 100"],
    ["a string parity", Buffer.alloc(256), "x", 'parity: expected a Buffer, got "x"'],
    ["a short parity", Buffer.alloc(256), Buffer.alloc(64), "parity: expected m * chunkBytes = 128 bytes, got 64"],
    ["a long parity", Buffer.alloc(256), Buffer.alloc(136), "parity: expected m * chunkBytes = 128 bytes, got 136"],
  ])("encodeStripe with %s", async (_case, stripe, parity, message) => {
    await expectInvalid(() => fourByTwo.encodeStripe(loose(stripe), loose(parity)), message);
  });

  it("encodeStripe refuses a parity buffer that overlaps the stripe", async () => {
    const memory = Buffer.alloc(6 * 64);
    const stripe = memory.subarray(0, 4 * 64);
    await expectInvalid(() => fourByTwo.encodeStripe(stripe, memory.subarray(3 * 64, 5 * 64)), "parity: must not overlap stripe");
    await expect(fourByTwo.encodeStripe(stripe, memory.subarray(4 * 64))).resolves.toBeInstanceOf(Buffer);
  });

  it.each([
    ["no array", () => undefined, undefined, "chunks: expected an array of chunks, got undefined"],
    ["too few entries", () => Array.from({ length: 5 }, chunk64), undefined, "chunks: expected k + m = 6 entries, got 5"],
    ["too many entries", () => Array.from({ length: 7 }, chunk64), undefined, "chunks: expected k + m = 6 entries, got 7"],
    [
      "a number entry",
      () => [chunk64(), chunk64(), chunk64(), 42, chunk64(), chunk64()],
      undefined,
      "chunks[3]: expected a Buffer, got 42",
    ],
    [
      "a null entry",
      () => [chunk64(), chunk64(), chunk64(), chunk64(), null, chunk64()],
      undefined,
      "chunks[4]: expected a Buffer, got null",
    ],
    [
      "unequal chunks after a missing one",
      () => [undefined, chunk64(), chunk64(), chunk64(), Buffer.alloc(72), chunk64()],
      undefined,
      "chunks[4]: expected 64 bytes like chunks[1], got 72",
    ],
    [
      "unaligned chunks",
      () => Array.from({ length: 6 }, () => Buffer.alloc(12)),
      undefined,
      "chunks[0]: expected a multiple of 8 bytes, got 12",
    ],
    ["empty chunks", () => Array.from({ length: 6 }, () => Buffer.alloc(0)), undefined, "chunks[0]: expected a non-empty chunk"],
    ["want not an array", () => Array.from({ length: 6 }, chunk64), 3, "want: expected an array of shard indexes, got 3"],
    ["want out of range", () => Array.from({ length: 6 }, chunk64), [0, 6], "want[1]: expected an integer in [0, 5], got 6"],
    ["want negative", () => Array.from({ length: 6 }, chunk64), [-1], "want[0]: expected an integer in [0, 5], got -1"],
    ["want fractional", () => Array.from({ length: 6 }, chunk64), [1.5], "want[0]: expected an integer in [0, 5], got 1.5"],
    ["want a string", () => Array.from({ length: 6 }, chunk64), ["1"], 'want[0]: expected an integer in [0, 5], got "1"'],
    ["want duplicates", () => Array.from({ length: 6 }, chunk64), [1, 0, 1], "want[2]: duplicate shard index 1"],
  ])("reconstruct with %s", async (_case, chunks, want, message) => {
    await expectInvalid(() => fourByTwo.reconstruct(loose(chunks()), loose(want)), message);
  });

  it.each([
    ["no buffer", null, 64, "buffer: expected a Buffer, got null"],
    ["a zero chunk size", Buffer.alloc(64), 0, "chunkBytes: expected a positive integer, got 0"],
    ["a fractional chunk size", Buffer.alloc(64), 2.5, "chunkBytes: expected a positive integer, got 2.5"],
    ["a partial last chunk", Buffer.alloc(100), 64, "buffer: expected a multiple of chunkBytes = 64 bytes, got 100"],
  ])("splitChunks with %s", async (_case, buffer, chunkBytes, message) => {
    await expectInvalid(() => splitChunks(loose(buffer), chunkBytes), message);
  });

  it("splitChunks returns views, not copies", () => {
    const buffer = Buffer.alloc(3 * 16);
    const chunks = splitChunks(buffer, 16);
    expect(chunks).toHaveLength(3);
    chunks[1]?.fill(7);
    expect(buffer[16]).toBe(7);
    expect(splitChunks(Buffer.alloc(0), 16)).toEqual([]);
  });
});

describe("codecSelfTest", () => {
  /** A deep copy of the checked-in vectors with one vector changed by `edit`. */
  function tampered(edit: (vector: Record<string, unknown>) => void, index = 3): CodecVectors {
    const vectors = structuredClone(loadCodecVectors());
    const vector: CodecVector | undefined = vectors.vectors[index];
    if (vector === undefined) throw new Error(`no vector ${index}`);
    edit(loose(vector));
    return vectors;
  }

  /** `message` is the exact message, or a pattern where it contains computed parity. */
  async function expectSelfTestFailure(vectors: unknown, message: string | RegExp): Promise<void> {
    const error = await caught(() => codecSelfTest(loose(vectors)));
    expect(error.code).toBe("ERR_CODEC_SELF_TEST");
    if (typeof message === "string") expect(error.message).toBe(message);
    else expect(error.message).toMatch(message);
  }

  it("passes on the checked-in vectors", async () => {
    await expect(codecSelfTest()).resolves.toBeUndefined();
  });

  it("the vectors cover the exhaustively tested and default codes, and stay small", async () => {
    const { vectors } = loadCodecVectors();
    for (const [k, m] of [...EXHAUSTIVE, [EC_K_DEFAULT, EC_M_DEFAULT]]) {
      expect(vectors.some((vector) => vector.k === k && vector.m === m), `${k}+${m}`).toBe(true);
    }
    const { statSync } = await import("node:fs");
    expect(statSync(new URL("../../core/codec-vectors.json", import.meta.url)).size).toBeLessThan(VECTORS_FILE_BYTES_MAX);
  });

  it("fails on a tampered parity chunk, naming the vector and chunk", async () => {
    const vectors = tampered((vector) => {
      const parity = vector.parity as string[];
      const chunk = parity[1] ?? "";
      parity[1] = (chunk.startsWith("0") ? "1" : "0") + chunk.slice(1);
    });
    await expectSelfTestFailure(vectors, /^codec self-test failed: vector 3 \(4\+2, 64-byte chunks\): parity chunk 1 is /);
  });

  it("fails on a tampered large-chunk digest", async () => {
    const { vectors } = loadCodecVectors();
    const index = vectors.findIndex((vector) => vector.parityDigest === "sha256");
    const changed = tampered((vector) => {
      (vector.parity as string[])[0] = "0".repeat(SHA256_HEX_CHARS);
    }, index);
    await expectSelfTestFailure(changed, /parity chunk 0 is [0-9a-f]{32}\.\.\., expected 0{32}\.\.\.$/);
  });

  it("fails when a vector's data seed changed", async () => {
    await expectSelfTestFailure(
      tampered((vector) => {
        vector.dataSeed = Number(vector.dataSeed) + 1;
      }),
      /vector 3 .*parity chunk 0 is/,
    );
  });

  it.each([
    ["no vectors", { about: "", vectors: [] }, "codec vectors: expected {about, vectors: [...]} with at least one vector"],
    ["not an object", null, "codec vectors: expected {about, vectors: [...]} with at least one vector"],
  ])("fails on %s", async (_case, vectors, message) => {
    await expectSelfTestFailure(vectors, message);
  });

  it.each([
    ["a missing k", (vector: Record<string, unknown>) => delete vector.k, "codec vectors: vectors[3]: k: expected an integer"],
    ["an unknown digest", (vector: Record<string, unknown>) => (vector.parityDigest = "md5"), 'codec vectors: vectors[3]: parityDigest: expected "hex" or "sha256"'],
    ["a parity chunk too few", (vector: Record<string, unknown>) => (vector.parity = ["00"]), "codec vectors: vectors[3]: parity: expected m strings"],
    ["a lost index out of range", (vector: Record<string, unknown>) => (vector.lost = [6]), "codec vectors: vectors[3]: lost: expected at most m distinct shard indexes below k + m"],
    ["too many lost", (vector: Record<string, unknown>) => (vector.lost = [0, 1, 2]), "codec vectors: vectors[3]: lost: expected at most m distinct shard indexes below k + m"],
  ])("fails on a vector with %s", async (_case, edit, message) => {
    await expectSelfTestFailure(tampered(edit), message);
  });

  it("wraps a codec refusal (an impossible k) as ERR_CODEC_SELF_TEST with the cause", async () => {
    const error = await caught(() =>
      codecSelfTest(
        tampered((vector) => {
          vector.k = 99;
          vector.lost = [];
        }),
      ),
    );
    expect(error.code).toBe("ERR_CODEC_SELF_TEST");
    expect(error.message).toBe(
      "codec self-test failed: vector 3 (99+2, 64-byte chunks): k: expected an integer in [1, 24], got 99",
    );
    expect(error.cause).toBeInstanceOf(TesseraError);
  });
});
