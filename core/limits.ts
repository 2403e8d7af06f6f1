/**
 * Every size, count and timeout Tessera uses, in one place, each with what it costs.
 * Relations between limits are asserted at load, so a bad edit fails at start-up.
 * Naming: qualifier last (BLOCK_BYTES_DEFAULT, PROBE_INTERVAL_MS).
 */
import { assert } from "./assert.js";

const KiB = 1024;
const MiB = 1024 * KiB;

// --- Erasure coding -------------------------------------------------------------------

/** Data shards per object by default: 4+2 survives any 2 lost disks at 1.5x raw cost. */
export const EC_K_DEFAULT = 4;
/** Parity shards per object by default. */
export const EC_M_DEFAULT = 2;
/** @ronomon/reed-solomon's own ceiling on data shards (its MAX_K). */
export const EC_K_MAX = 24;
/** @ronomon/reed-solomon's own ceiling on parity shards (its MAX_M). */
export const EC_M_MAX = 6;
/** The library requires every chunk to be a multiple of 8 bytes (it works in 64-bit words). */
export const CHUNK_ALIGN_BYTES = 8;

/**
 * Bytes of object data per stripe by default (DESIGN.md: 1 MiB). Larger stripes mean fewer
 * checksums and syscalls; smaller ones mean less memory per in-flight stripe and cheaper
 * small range reads. The gateway holds about STRIPES_IN_FLIGHT_MAX stripes per request.
 */
export const BLOCK_BYTES_DEFAULT = 1 * MiB;
/** Smallest configurable stripe: below this, per-chunk checksum and syscall costs dominate. */
export const BLOCK_BYTES_MIN = 64 * KiB;
/** Largest configurable stripe: bounds gateway memory per request (k+m chunks of it). */
export const BLOCK_BYTES_MAX = 16 * MiB;

// --- Shard file format ----------------------------------------------------------------

/** Fixed header size of a shard file; fields are listed in core/shard-format.ts. */
export const SHARD_HEADER_BYTES = 80;
/** Chunks a streaming shard reader/writer buffers at most before applying backpressure. */
export const SHARD_CHUNKS_BUFFERED_MAX = 2;
/** Largest object one shard set can describe: S3's 5 TiB single-object ceiling. */
export const OBJECT_BYTES_MAX = 5 * 1024 * 1024 * MiB;
/**
 * Largest shard file a node accepts: the header plus every frame of the largest object at
 * k = 1 with the smallest stripe, where checksums at most double the bytes. A bound on what
 * a client may declare, not a size anyone stores.
 */
export const SHARD_FILE_BYTES_MAX = 2 * OBJECT_BYTES_MAX + SHARD_HEADER_BYTES;
/** S3's highest multipart part number; 0 means "not a part" in shard ids. */
export const PART_NUMBER_MAX = 10_000;
/** Highest shard index of the widest code the codec supports. */
export const SHARD_INDEX_MAX = 24 + 6 - 1;
/** S3's ceiling on an object key, in UTF-8 bytes; a record never holds a longer one. */
export const OBJECT_KEY_BYTES_MAX = 1024;

// --- Placement ------------------------------------------------------------------------

/** Bytes in an object id: 128 bits, so collisions need ~2^64 objects. */
export const OBJECT_ID_BYTES = 16;
/** Bytes in a version id (HLC timestamp + random tail, see the gateway). */
export const VERSION_ID_BYTES = 16;
/** Nodes in one cluster map: bounds map validation and placement cost per object. */
export const CLUSTER_NODES_MAX = 1024;
/** Disks on one node. */
export const NODE_DISKS_MAX = 256;
/** Largest disk weight: weights are relative, this only stops absurd values. */
export const DISK_WEIGHT_MAX = 1_000_000;

assert(BLOCK_BYTES_DEFAULT % (EC_K_DEFAULT * CHUNK_ALIGN_BYTES) === 0, "default stripe splits into aligned chunks");
assert(BLOCK_BYTES_MIN <= BLOCK_BYTES_DEFAULT && BLOCK_BYTES_DEFAULT <= BLOCK_BYTES_MAX, "default stripe within bounds");
assert(EC_K_MAX + EC_M_MAX <= 31, "shard indexes fit the codec's 32-bit source/target masks");
assert(SHARD_HEADER_BYTES % CHUNK_ALIGN_BYTES === 0, "chunks start 8-byte aligned after the header");
assert(Number.isSafeInteger(OBJECT_BYTES_MAX), "object lengths are exact JavaScript numbers");
assert(Number.isSafeInteger(SHARD_FILE_BYTES_MAX), "shard file lengths are exact JavaScript numbers");
assert(SHARD_INDEX_MAX === EC_K_MAX + EC_M_MAX - 1, "shard indexes cover the widest code");
