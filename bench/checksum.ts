/**
 * Checksum candidates for shard chunks, measured on this machine: one core, 256 KiB chunks
 * (a 4+2 chunk of the default 1 MiB stripe). Run: `npx tsx bench/checksum.ts`.
 * The winner is recorded in README.md ("Shard format") and used by core/checksum.ts.
 */
import { createHash } from "node:crypto";
import { crc32c } from "@node-rs/crc32";
import { xxh64, xxh3 } from "@node-rs/xxhash";

/** One 4+2 chunk of a 1 MiB stripe. */
const CHUNK_BYTES = 256 * 1024;
/** Bytes hashed per candidate per run: enough to swamp timer noise, under a second each. */
const TOTAL_BYTES = 1024 * 1024 * 1024;
/** Runs per candidate; the median is reported (this machine is shared and noisy). */
const RUNS = 5;

const candidates: Record<string, (chunk: Buffer) => unknown> = {
  "crc32c (@node-rs/crc32, SSE4.2)": (chunk) => crc32c(chunk),
  "xxh64 (@node-rs/xxhash)": (chunk) => xxh64(chunk),
  "xxh3-64 (@node-rs/xxhash)": (chunk) => xxh3.xxh64(chunk),
  "md5 (node:crypto)": (chunk) => createHash("md5").update(chunk).digest(),
  "sha256 (node:crypto, SHA-NI where present)": (chunk) => createHash("sha256").update(chunk).digest(),
};

function measure(hash: (chunk: Buffer) => unknown, chunk: Buffer): number {
  const iterations = TOTAL_BYTES / CHUNK_BYTES;
  const started = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) hash(chunk);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return TOTAL_BYTES / seconds / 1e6;
}

const chunk = Buffer.alloc(CHUNK_BYTES);
for (let i = 0; i < CHUNK_BYTES; i++) chunk[i] = (i * 2654435761) >>> 24;
console.log(`| checksum | MB/s (median of ${RUNS}, one core, ${CHUNK_BYTES / 1024} KiB chunks) |`);
console.log("|---|---|");
for (const [name, hash] of Object.entries(candidates)) {
  const speeds = Array.from({ length: RUNS }, () => measure(hash, chunk)).sort((a, b) => a - b);
  console.log(`| ${name} | ${Math.round(speeds[Math.floor(RUNS / 2)] ?? 0)} |`);
}
