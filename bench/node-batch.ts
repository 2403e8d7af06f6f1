/**
 * What one storage node's writes cost it: a real node process and writers in this process.
 *
 *   npx tsx bench/node-batch.ts [--writers 16] [--seconds 8] [--shards] [--env KEY=VALUE ...]
 *
 * Without `--shards`, the writers put the records a 4 KiB PUT writes (six placements, an
 * inline shard), batched by the client as the gateway's are (core/record-batch.ts); it prints
 * records per second, records per batch and the node's CPU (/proc) per batch and per record
 * over the measured window. More writers make bigger batches (one batch in flight per node),
 * so runs at 1, 6 and 16 writers separate the cost of a batch from the cost of a record.
 *
 * With `--shards`, each writer puts the shard a 1 MiB PUT sends each node (4+2: a 256 KiB
 * chunk with its header and checksum) as a new object's, so each lands in a new directory as
 * in a PUT; it prints shards per second and the node's CPU per shard.
 *
 * `--profile DIR` writes the node's CPU profile there (bench/profile-hook.js).
 */
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ChecksumAlgorithm } from "../core/checksum.js";
import { shardLayout } from "../core/shard-format.js";
import type { ObjectRecord } from "../core/storage-api.js";
import { Prng } from "../test/prng.js";
import { cleanupNodes, startNode } from "../test/storage-node/harness.js";
import { inPieces, makeShard, shardOfObject } from "../test/storage-node/shards.js";
import { KiB, MiB, SEED_DEFAULT } from "./limits.js";
import { cpuSeconds } from "./proc.js";
import { envFromPairs } from "./targets.js";

/** Writing before the window: the JIT settles and LMDB's map grows past its first pages. */
const WARMUP_MS = 3_000;
/** Grace for the profiled node to write its profile after SIGUSR2 (a few MB of JSON). */
const PROFILE_WRITE_MS = 1_500;
/** The object whose shards `--shards` writes: a 1 MiB object, one stripe at the default 1 MiB block. */
const SHARD_OBJECT_BYTES = MiB;
/** Body pieces as a socket delivers them. */
const SHARD_PIECE_BYTES = 64 * KiB;
/** The inline shard of a 4 KiB object at 4+2: its 1 KiB chunk, frame checksum and header. */
const INLINE_SHARD_BYTES = KiB + 64;
const PLACED_SHARDS = 6;
/** `--copies`: a 4 KiB object's whole copy (one 4 KiB frame, its checksum, the header) on 1 + m = 3 disks. */
const COPIES_INLINE_BYTES = 4 * KiB + 64;
const COPIES_PLACED = 3;

const { values } = parseArgs({
  options: {
    writers: { type: "string", default: "16" },
    seconds: { type: "string", default: "8" },
    profile: { type: "string" },
    shards: { type: "boolean", default: false },
    /** Records of a 4 KiB object stored as copies (k = 1): three placements, the whole object inline. */
    copies: { type: "boolean", default: false },
    /** KEY=VALUE for the node process (e.g. TESSERA_HEAP_GROWING_PERCENT=0: V8's own heap rule). */
    env: { type: "string", multiple: true, default: [] },
  },
});
const writers = Number(values.writers);
const seconds = Number(values.seconds);
if (!Number.isInteger(writers) || writers < 1 || writers > 256) throw new Error(`--writers is a whole number in 1..256, got ${values.writers}`);
if (!(seconds > 0 && seconds <= 600)) throw new Error(`--seconds is in (0, 600], got ${values.seconds}`);

const hook = fileURLToPath(new URL("./profile-hook.js", import.meta.url));
const env = { ...envFromPairs(values.env), ...(values.profile === undefined ? {} : { NODE_OPTIONS: `--import ${hook}`, BENCH_CPU_PROFILE_DIR: values.profile }) };
const node = await startNode(new Prng(SEED_DEFAULT), { env });
try {
  const client = node.client();
  const diskId = node.dirs.diskIds[0] as string;
  let sequence = 0;
  const record = (): ObjectRecord => ({
    bucket: "bench-bucket",
    key: `node-batch/object-${(sequence++).toString().padStart(8, "0")}`,
    versionId: randomBytes(16).toString("hex"),
    revision: 1,
    objectId: randomBytes(16).toString("hex"),
    deleteMarker: false,
    size: 4 * KiB,
    etag: randomBytes(16).toString("hex"),
    lastModified: Date.now(),
    contentType: "application/octet-stream",
    userMetadata: {},
    systemMetadata: {},
    ec: values.copies ? { k: 1, m: 2, blockBytes: 4 * KiB, checksumAlgorithm: ChecksumAlgorithm.Crc32c, writeQuorum: 3 } : { k: 4, m: 2, blockBytes: MiB, checksumAlgorithm: ChecksumAlgorithm.Crc32c },
    placement: Array.from({ length: values.copies ? COPIES_PLACED : PLACED_SHARDS }, (_, shardIndex) => ({ shardIndex, nodeId: `n${shardIndex + 1}`, diskId })),
    parts: [],
    inline: randomBytes(values.copies ? COPIES_INLINE_BYTES : INLINE_SHARD_BYTES),
  });
  const batches = async (): Promise<number> => Number(/tessera_node_requests_total\{[^}]*route="\/v1\/records\/batch"[^}]*\} (\d+)/.exec(await client.metrics())?.[1] ?? 0);
  let stopping = false;
  let written = 0;
  // One shard's chunk serves every write (the node checks frames, never what they hold), under
  // a header naming a new object each time.
  const shard = await makeShard(new Prng(SEED_DEFAULT), { objectLength: SHARD_OBJECT_BYTES, blockBytes: MiB, shardIndex: 0 });
  const chunk = randomBytes(shardLayout(shard.header).chunkBytes);
  const putShard = async (): Promise<void> => {
    const { id, file } = await shardOfObject(shard, randomBytes(16), [chunk]);
    await client.writeShard(diskId, id, inPieces(file, SHARD_PIECE_BYTES), file.length);
  };
  const writer = async (): Promise<void> => {
    while (!stopping) {
      if (values.shards) await putShard();
      else await client.putRecord(diskId, record());
      written += 1;
    }
  };
  // A writer's failure stops the others and is thrown below, after the node is stopped.
  const running = Promise.all(Array.from({ length: writers }, writer)).catch((error: unknown) => {
    stopping = true;
    throw error;
  });
  running.catch(() => undefined);
  await new Promise((resolve) => setTimeout(resolve, WARMUP_MS));
  const before = { cpu: cpuSeconds(node.pid), batches: await batches(), written, at: performance.now() };
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const after = { cpu: cpuSeconds(node.pid), batches: await batches(), written, at: performance.now() };
  stopping = true;
  await running;
  const records = after.written - before.written;
  const sent = after.batches - before.batches;
  const cpuMicros = (after.cpu - before.cpu) * 1e6;
  const perSecond = (records / ((after.at - before.at) / 1000)).toFixed(0);
  if (values.shards) {
    console.log(`${writers} writers: ${perSecond} shards/s of ${shard.file.length} bytes; node CPU ${(cpuMicros / records).toFixed(0)} µs per shard`);
  } else {
    console.log(
      `${writers} writers: ${perSecond} records/s, ${(records / sent).toFixed(1)} per batch; ` +
        `node CPU ${(cpuMicros / sent).toFixed(0)} µs per batch, ${(cpuMicros / records).toFixed(0)} µs per record`,
    );
  }
  if (values.profile !== undefined) {
    node.kill("SIGUSR2");
    await new Promise((resolve) => setTimeout(resolve, PROFILE_WRITE_MS));
  }
} finally {
  await node.stop();
  await cleanupNodes();
}
