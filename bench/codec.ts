/**
 * Reed-Solomon throughput of core/codec.ts on one thread: sequential awaits, so one libuv
 * threadpool job at a time. MB/s counts data bytes (the stripe), MB = 10^6, as the addon's
 * own benchmark does. Run: `npx tsx bench/codec.ts` (about 10 s).
 */
import { ErasureCodec, splitChunks } from "../core/codec.js";
import { BLOCK_BYTES_DEFAULT } from "../core/limits.js";

const KiB = 1024;
/** Time spent per row: long enough to swamp timer noise, short enough for the whole run. */
const ROW_DURATION_MS = 700;
/** Untimed operations before each row: builds the context and warms caches. */
const WARMUP_OPERATIONS = 20;
/** Fixed data so runs compare; the codec's speed does not depend on the bytes. */
const DATA_MULTIPLIER = 2654435761;

type Operation = "encodeStripe" | "encode (copy)" | "reconstruct 2 data";

interface Row {
  readonly k: number;
  readonly m: number;
  readonly chunkBytes: number;
  readonly operation: Operation;
}

const ROWS: readonly Row[] = [
  { k: 4, m: 2, chunkBytes: BLOCK_BYTES_DEFAULT / 4, operation: "encodeStripe" }, // The default.
  { k: 4, m: 2, chunkBytes: BLOCK_BYTES_DEFAULT / 4, operation: "encode (copy)" },
  { k: 4, m: 2, chunkBytes: BLOCK_BYTES_DEFAULT / 4, operation: "reconstruct 2 data" },
  { k: 4, m: 2, chunkBytes: 64 * KiB, operation: "encodeStripe" },
  { k: 6, m: 3, chunkBytes: 256 * KiB, operation: "encodeStripe" },
  { k: 8, m: 3, chunkBytes: 128 * KiB, operation: "encodeStripe" },
  { k: 10, m: 4, chunkBytes: 128 * KiB, operation: "encodeStripe" },
  { k: 12, m: 4, chunkBytes: 64 * KiB, operation: "encodeStripe" },
  { k: 12, m: 4, chunkBytes: 64 * KiB, operation: "reconstruct 2 data" },
];

function stripeOf(bytes: number): Buffer {
  const stripe = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) stripe[i] = Math.imul(i, DATA_MULTIPLIER) >>> 24;
  return stripe;
}

/** One operation of a row, ready to repeat; closes over its buffers so the loop only awaits. */
async function prepare(row: Row): Promise<() => Promise<unknown>> {
  const codec = new ErasureCodec({ k: row.k, m: row.m });
  const stripe = stripeOf(row.k * row.chunkBytes);
  const parity = Buffer.alloc(row.m * row.chunkBytes);
  if (row.operation === "encodeStripe") return () => codec.encodeStripe(stripe, parity);
  // Separate chunk buffers, as network reads deliver them: encode copies them into one stripe.
  const chunks = splitChunks(stripe, row.chunkBytes).map((chunk) => Buffer.from(chunk));
  if (row.operation === "encode (copy)") return () => codec.encode(chunks);
  const shards: (Buffer | undefined)[] = [...chunks, ...(await codec.encode(chunks))];
  shards[0] = undefined;
  shards[1] = undefined;
  return () => codec.reconstruct(shards, [0, 1]);
}

async function measure(row: Row): Promise<{ operations: number; megabytesPerSecond: number }> {
  const run = await prepare(row);
  for (let i = 0; i < WARMUP_OPERATIONS; i++) await run();
  let operations = 0;
  const started = performance.now();
  while (performance.now() - started < ROW_DURATION_MS) {
    await run();
    operations++;
  }
  const seconds = (performance.now() - started) / 1000;
  return { operations, megabytesPerSecond: (operations * row.k * row.chunkBytes) / seconds / 1e6 };
}

console.log("| code | chunk KiB | stripe KiB | operation | ops | MB/s (data, one thread) |");
console.log("|---|---:|---:|---|---:|---:|");
for (const row of ROWS) {
  const { operations, megabytesPerSecond } = await measure(row);
  const stripeKiB = (row.k * row.chunkBytes) / KiB;
  console.log(
    `| ${row.k}+${row.m} | ${row.chunkBytes / KiB} | ${stripeKiB} | ${row.operation} | ${operations} | ${Math.round(megabytesPerSecond)} |`,
  );
}
