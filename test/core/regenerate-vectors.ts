/**
 * Regenerates core/codec-vectors.json from the codec as it is now:
 *   npx tsx test/core/regenerate-vectors.ts [--force]
 * Adding or removing configurations is routine. Changed parity for an existing
 * configuration means shards already stored would no longer decode, so the script refuses
 * to write that unless given --force (and the change then needs a migration plan).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { ErasureCodec, splitChunks } from "../../core/codec.js";
import { digestChunk, parseCodecVectors, vectorData } from "../../core/codec-self-test.js";
import type { CodecVector, CodecVectors } from "../../core/codec-self-test.js";
import { Prng } from "../prng.js";

/** Seed of the first vector's data; each further vector adds one. Fixed so reruns agree. */
const VECTORS_SEED = 0x7e55e7a;
/** Chunks up to this size are stored in full hex; larger ones as SHA-256 (keeps the file small). */
const HEX_CHUNK_BYTES_MAX = 64;
/** Small chunks pin the encoding matrix of every common (k, m) at almost no file size. */
const SMALL_CHUNK_BYTES = 64;

const KiB = 1024;
const VECTORS_URL = new URL("../../core/codec-vectors.json", import.meta.url);

/** Every (k, m) the cluster map is likely to use, plus the extremes, at SMALL_CHUNK_BYTES. */
const SMALL_CONFIGURATIONS: readonly (readonly [k: number, m: number])[] = [
  [1, 0],
  [1, 2],
  [3, 1],
  [4, 2],
  [6, 3],
  [8, 3],
  [10, 4],
  [12, 4],
  [24, 6],
];

/** (k, m, chunk size) pinned. Large chunks exercise the addon's sub-blocking of chunks. */
const CONFIGURATIONS: readonly { k: number; m: number; chunkBytes: number }[] = [
  ...SMALL_CONFIGURATIONS.map(([k, m]) => ({ k, m, chunkBytes: SMALL_CHUNK_BYTES })),
  { k: 4, m: 2, chunkBytes: 256 * KiB }, // The default: 4+2 with 1 MiB stripes.
  { k: 12, m: 4, chunkBytes: 64 * KiB },
  { k: 24, m: 6, chunkBytes: 64 * KiB },
];

async function makeVector(k: number, m: number, chunkBytes: number, dataSeed: number): Promise<CodecVector> {
  const codec = new ErasureCodec({ k, m });
  const parity = splitChunks(await codec.encodeStripe(vectorData(k * chunkBytes, dataSeed)), chunkBytes);
  const parityDigest = chunkBytes <= HEX_CHUNK_BYTES_MAX ? "hex" : "sha256";
  // Lose m shards drawn at random, so data and parity losses both appear across vectors.
  const prng = new Prng(dataSeed);
  const lost = new Set<number>();
  while (lost.size < m) lost.add(prng.int(0, k + m - 1));
  return {
    k,
    m,
    chunkBytes,
    dataSeed,
    parityDigest,
    parity: parity.map((chunk) => digestChunk(chunk, parityDigest)),
    lost: [...lost].sort((a, b) => a - b),
  };
}

function changedParity(previous: CodecVectors, next: CodecVectors): string[] {
  return next.vectors.flatMap((vector) => {
    const old = previous.vectors.find(
      (candidate) =>
        candidate.k === vector.k &&
        candidate.m === vector.m &&
        candidate.chunkBytes === vector.chunkBytes &&
        candidate.dataSeed === vector.dataSeed,
    );
    const same = old === undefined || old.parity.join() === vector.parity.join();
    return same ? [] : [`${vector.k}+${vector.m} with ${vector.chunkBytes}-byte chunks`];
  });
}

function readPrevious(): CodecVectors | undefined {
  try {
    return parseCodecVectors(JSON.parse(readFileSync(VECTORS_URL, "utf8")));
  } catch {
    return undefined; // No usable file yet: nothing to compare with.
  }
}

const vectors: CodecVector[] = [];
for (const [index, { k, m, chunkBytes }] of CONFIGURATIONS.entries()) {
  vectors.push(await makeVector(k, m, chunkBytes, VECTORS_SEED + index));
}
const next: CodecVectors = {
  about:
    "Golden vectors of core/codec.ts, checked at start-up by core/codec-self-test.ts. " +
    "Data comes from vectorData(k * chunkBytes, dataSeed). Regenerate: npx tsx test/core/regenerate-vectors.ts",
  vectors,
};
const previous = readPrevious();
const changed = previous === undefined ? [] : changedParity(previous, next);
if (changed.length > 0 && !process.argv.includes("--force")) {
  console.error(`Parity changed for ${changed.join("; ")}: stored shards would not decode. Rerun with --force.`);
  process.exit(1);
}
writeFileSync(VECTORS_URL, `${JSON.stringify(next, null, 2)}\n`);
console.log(`Wrote ${vectors.length} vectors to ${VECTORS_URL.pathname}`);
