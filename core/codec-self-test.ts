/**
 * Start-up self-test of the erasure codec against golden vectors (core/codec-vectors.json).
 * Services await codecSelfTest() before serving and refuse to start when it throws: parity
 * written by one build must decode with the next, so a changed or miscompiled addon must
 * never touch data. The vectors include large chunks because the addon's parity layout
 * changes with the chunk size (it sub-blocks chunks above ~1 MiB of working set).
 *
 * Regenerate only when deliberately changing the codec (then stored shards need migrating):
 *   npx tsx test/core/regenerate-vectors.ts
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { ErasureCodec, splitChunks } from "./codec.js";
import { TesseraError } from "./errors.js";

/** Hex characters of a mismatching chunk shown in an error: enough to tell chunks apart. */
const MISMATCH_HEX_CHARS_SHOWN = 32;

const VECTORS_URL = new URL("./codec-vectors.json", import.meta.url);

export interface CodecVector {
  readonly k: number;
  readonly m: number;
  readonly chunkBytes: number;
  /** Seed of vectorData(), which makes the k data chunks (stored nowhere). */
  readonly dataSeed: number;
  /** How `parity` is written: each chunk in hex (small chunks) or its SHA-256 in hex (large). */
  readonly parityDigest: "hex" | "sha256";
  /** The m parity chunks, as parityDigest says. */
  readonly parity: readonly string[];
  /** Shard indexes (at most m) dropped and reconstructed from the others. */
  readonly lost: readonly number[];
}

export interface CodecVectors {
  readonly about: string;
  readonly vectors: readonly CodecVector[];
}

/**
 * Deterministic data for a vector: mulberry32 from `seed`, little-endian words. Frozen: a
 * change here changes every vector's data, so never edit it.
 */
export function vectorData(bytes: number, seed: number): Buffer {
  const out = Buffer.alloc(bytes);
  let state = seed >>> 0;
  for (let offset = 0; offset < bytes; offset += 4) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const word = (t ^ (t >>> 14)) >>> 0;
    for (let byte = 0; byte < 4 && offset + byte < bytes; byte++) out[offset + byte] = (word >>> (8 * byte)) & 0xff;
  }
  return out;
}

/** A parity chunk as written in a vector. */
export function digestChunk(chunk: Buffer, digest: CodecVector["parityDigest"]): string {
  return digest === "hex" ? chunk.toString("hex") : createHash("sha256").update(chunk).digest("hex");
}

/** Reads and shape-checks core/codec-vectors.json; any problem is ERR_CODEC_SELF_TEST. */
export function loadCodecVectors(): CodecVectors {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(VECTORS_URL, "utf8"));
  } catch (error) {
    throw selfTestError(`cannot read ${VECTORS_URL.pathname}: ${messageOf(error)}`, error);
  }
  return parseCodecVectors(json);
}

/** Checks the shape of parsed vectors (not their values: that is the self-test's job). */
export function parseCodecVectors(json: unknown): CodecVectors {
  const root = json as Partial<CodecVectors> | null;
  const shapeOk = typeof root === "object" && root !== null && Array.isArray(root.vectors) && root.vectors.length > 0;
  if (!shapeOk) throw selfTestError("codec vectors: expected {about, vectors: [...]} with at least one vector");
  root.vectors.forEach((vector, index) => {
    const problem = vectorShapeProblem(vector);
    if (problem !== undefined) throw selfTestError(`codec vectors: vectors[${index}]: ${problem}`);
  });
  return root as CodecVectors;
}

/**
 * Encodes and reconstructs every vector; throws ERR_CODEC_SELF_TEST naming the first
 * vector and chunk that disagree. `vectors` defaults to core/codec-vectors.json.
 */
export async function codecSelfTest(vectors?: CodecVectors): Promise<void> {
  const checked = parseCodecVectors(vectors === undefined ? loadCodecVectors() : vectors);
  for (const [index, vector] of checked.vectors.entries()) {
    const name = `vector ${index} (${vector.k}+${vector.m}, ${vector.chunkBytes}-byte chunks)`;
    try {
      await checkVector(vector);
    } catch (error) {
      throw selfTestError(`codec self-test failed: ${name}: ${messageOf(error)}`, error);
    }
  }
}

async function checkVector(vector: CodecVector): Promise<void> {
  const codec = new ErasureCodec({ k: vector.k, m: vector.m });
  const stripe = vectorData(vector.k * vector.chunkBytes, vector.dataSeed);
  const parity = splitChunks(await codec.encodeStripe(stripe), vector.chunkBytes);
  parity.forEach((chunk, index) => {
    const actual = digestChunk(chunk, vector.parityDigest);
    const expected = vector.parity[index];
    if (actual !== expected) {
      throw new Error(`parity chunk ${index} is ${shorten(actual)}, expected ${shorten(expected ?? "nothing")}`);
    }
  });
  // The copying path (separate chunk buffers) must agree with the zero-copy stripe path.
  const copies = splitChunks(stripe, vector.chunkBytes).map((chunk) => Buffer.from(chunk));
  const copiedParity = await codec.encode(copies);
  if (!Buffer.concat(copiedParity).equals(Buffer.concat(parity))) {
    throw new Error("encode() of separate chunks disagrees with encodeStripe()");
  }
  await checkReconstruct(codec, [...splitChunks(stripe, vector.chunkBytes), ...parity], vector.lost);
}

async function checkReconstruct(codec: ErasureCodec, shards: readonly Buffer[], lost: readonly number[]): Promise<void> {
  const damaged = shards.map((shard, index) => (lost.includes(index) ? undefined : shard));
  const rebuilt = await codec.reconstruct(damaged);
  rebuilt.forEach((shard, index) => {
    if (!shard.equals(shards[index] ?? Buffer.alloc(0))) {
      throw new Error(`reconstructing lost shards [${lost.join(", ")}] gave a different shard ${index}`);
    }
  });
}

function vectorShapeProblem(vector: unknown): string | undefined {
  if (typeof vector !== "object" || vector === null) return "expected an object";
  const fields = vector as Record<string, unknown>;
  for (const field of ["k", "m", "chunkBytes", "dataSeed"]) {
    if (!Number.isSafeInteger(fields[field])) return `${field}: expected an integer`;
  }
  if (fields.parityDigest !== "hex" && fields.parityDigest !== "sha256") return 'parityDigest: expected "hex" or "sha256"';
  const parity = fields.parity;
  if (!Array.isArray(parity) || parity.length !== fields.m || !parity.every((chunk) => typeof chunk === "string")) {
    return "parity: expected m strings";
  }
  const lost = fields.lost;
  const shardCount = Number(fields.k) + Number(fields.m);
  const isShardIndex = (index: unknown): boolean => Number.isSafeInteger(index) && Number(index) >= 0 && Number(index) < shardCount;
  if (!Array.isArray(lost) || lost.length > Number(fields.m) || !lost.every(isShardIndex) || new Set(lost).size !== lost.length) {
    return "lost: expected at most m distinct shard indexes below k + m";
  }
  return undefined;
}

function shorten(hex: string): string {
  return hex.length > MISMATCH_HEX_CHARS_SHOWN ? `${hex.slice(0, MISMATCH_HEX_CHARS_SHOWN)}...` : hex;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function selfTestError(message: string, cause?: unknown): TesseraError {
  return new TesseraError("ERR_CODEC_SELF_TEST", message, {}, cause === undefined ? undefined : { cause });
}
