/**
 * Crash safety (issue 3): SIGKILL a real storage node during 50 concurrent shard writes (each
 * followed by its record), 20 times on the same disks, restarting in between. After every
 * restart: every write acknowledged before the kill is there byte for byte; every write not
 * acknowledged is either absent or complete (never torn: a shard that reads back verifies
 * completely and equals what was sent); no temporary file is left. Seeded: the kill moments,
 * shard sizes and disks replay with TEST_SEED.
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { isTesseraError } from "../../core/errors.js";
import type { HttpNodeClient } from "../../core/http-node-client.js";
import type { ObjectRecord } from "../../core/storage-api.js";
import { Prng, seedFromEnv } from "../prng.js";
import { makeNodeDirs, startNode, useNodeHarness, type NodeDirs, type NodeProcess } from "./harness.js";
import { TEST_K, TEST_M, inPieces, makeShard, readOutcome, type TestShard } from "./shards.js";

const seed = seedFromEnv(0x5eed_0302);
useNodeHarness();

/** Kill-and-restart rounds, and writes in flight in each (the numbers). */
const ROUNDS = 20;
const WRITES_PER_ROUND = 50;
/** Object bytes per stripe: 4 data chunks of 64 KiB, so a shard has a few frames. */
const BLOCK_BYTES = 256 * 1024;
/** Shard files of ~100-300 KB: big enough to be mid-write at the kill, small enough for 1,000 of them. */
const OBJECT_BYTES_MIN = 400 * 1024;
const OBJECT_BYTES_MAX = 1200 * 1024;
/** Pieces the client sends a body in: several per shard, so kills land inside bodies. */
const BODY_PIECE_BYTES = 32 * 1024;
/** The kill comes after this many acknowledgements at most (of 50), plus a short random delay. */
const KILL_AFTER_ACKS_MAX = 45;
const KILL_EXTRA_DELAY_MS_MAX = 15;
/**
 * The whole test: 21 start-ups, 1,000 writes, ~1,500 verified reads. About 30 s alone; a full
 * `npm test` runs it beside real-cluster suites on 2 cores, where it was seen to pass 180 s.
 * A hang still ends here, well inside CI's budget.
 */
const CRASH_TEST_TIMEOUT_MS = 600_000;
/**
 * Temporary files of the disk engine (storage-node/disk.ts): shard uploads live in <disk>/tmp/,
 * other durable writes end in .tmp until renamed. None may survive a restart.
 */
const TEMPORARY_DIRECTORY = "tmp";
const TEMPORARY_FILE_PATTERN = /\.tmp$/;

interface Write {
  readonly shard: TestShard;
  readonly diskId: string;
  readonly record: ObjectRecord;
  shardAcked: boolean;
  recordAcked: boolean;
}

interface Totals {
  attempted: number;
  shardsAcked: number;
  recordsAcked: number;
  unackedFoundComplete: number;
  unackedAbsent: number;
  torn: number;
  /** Temporary files found right after a kill (before the restart cleans them). */
  temporaryFilesAtKill: number;
  temporaryFilesLeft: number;
}

function recordFor(shard: TestShard, diskId: string): ObjectRecord {
  const placement = Array.from({ length: TEST_K + TEST_M }, (_, shardIndex) =>
    shardIndex === shard.id.shardIndex ? { shardIndex, nodeId: "n1", diskId } : { shardIndex, nodeId: `other${shardIndex}`, diskId: "d0" },
  );
  return {
    bucket: "crash",
    key: `object/${shard.id.objectId}`,
    versionId: shard.id.versionId,
    revision: 0,
    objectId: shard.id.objectId,
    deleteMarker: false,
    size: shard.header.objectLength,
    etag: shard.id.objectId,
    lastModified: 1_700_000_000_000,
    userMetadata: { round: "crash" },
    systemMetadata: {},
    ec: { k: TEST_K, m: TEST_M, blockBytes: BLOCK_BYTES, checksumAlgorithm: shard.header.checksumAlgorithm },
    placement,
    parts: [],
  };
}

async function makeWrites(prng: Prng, diskIds: readonly string[]): Promise<Write[]> {
  const writes: Write[] = [];
  for (let index = 0; index < WRITES_PER_ROUND; index++) {
    const shard = await makeShard(prng, { objectLength: prng.int(OBJECT_BYTES_MIN, OBJECT_BYTES_MAX), blockBytes: BLOCK_BYTES });
    const diskId = diskIds[prng.int(0, diskIds.length - 1)] ?? "a";
    writes.push({ shard, diskId, record: recordFor(shard, diskId), shardAcked: false, recordAcked: false });
  }
  return writes;
}

/** Starts every write at once; SIGKILLs the node after `killAfterAcks` acknowledgements (+ a delay). */
async function writeAndKill(node: NodeProcess, client: HttpNodeClient, writes: Write[], killAfterAcks: number, extraDelayMs: number): Promise<void> {
  let acks = 0;
  let reached: () => void = () => undefined;
  const enough = new Promise<void>((resolve) => (reached = resolve));
  const one = async (write: Write): Promise<void> => {
    await client.writeShard(write.diskId, write.shard.id, inPieces(write.shard.file, BODY_PIECE_BYTES), write.shard.file.length);
    write.shardAcked = true;
    if (++acks >= killAfterAcks) reached();
    await client.putRecord(write.diskId, write.record);
    write.recordAcked = true;
  };
  const settled = Promise.allSettled(writes.map(one));
  if (killAfterAcks === 0) reached();
  await Promise.race([enough, settled]);
  await delay(extraDelayMs);
  node.kill("SIGKILL");
  await node.exited;
  const outcomes = await settled;
  for (const outcome of outcomes) {
    if (outcome.status === "rejected" && !isTesseraError(outcome.reason, "ERR_NODE_UNAVAILABLE")) throw outcome.reason;
  }
}

/** Checks one write after a restart; returns what was found. Throws on anything torn. */
async function checkWrite(client: HttpNodeClient, write: Write): Promise<"complete" | "absent"> {
  const read = await readOutcome(client.readShard(write.diskId, write.shard.id));
  const absent = isTesseraError(read.error, "ERR_NOT_FOUND");
  if (!absent && (read.error !== undefined || !read.bytes.equals(write.shard.file))) {
    throw new Error(`torn shard ${write.shard.id.objectId} on ${write.diskId}: ${read.bytes.length} of ${write.shard.file.length} bytes, ${String(read.error)}`);
  }
  if (write.shardAcked && absent) throw new Error(`acknowledged shard ${write.shard.id.objectId} on ${write.diskId} is missing`);
  const records = await client.getRecords(write.diskId, write.record.bucket, write.record.key);
  if (records.length > 1) throw new Error(`record ${write.record.key}: ${records.length} versions, wrote 1`);
  const found = records[0];
  if (found !== undefined) expect(found).toEqual(write.record);
  if (write.recordAcked && found === undefined) throw new Error(`acknowledged record ${write.record.key} is missing`);
  return absent ? "absent" : "complete";
}

async function temporaryFiles(dirs: NodeDirs): Promise<string[]> {
  const found: string[] = [];
  for (const disk of dirs.disks) {
    const temporaryDirectory = join(disk, TEMPORARY_DIRECTORY);
    for (const entry of await readdir(disk, { recursive: true, withFileTypes: true })) {
      const inTemporary = entry.parentPath === temporaryDirectory || entry.parentPath.startsWith(`${temporaryDirectory}/`);
      if (entry.isFile() && (inTemporary || TEMPORARY_FILE_PATTERN.test(entry.name))) found.push(join(entry.parentPath, entry.name));
    }
  }
  return found;
}

/** Temporary files right after the kill: evidence the kills land mid-write (reported, not required). */
async function countTemporaryFiles(dirs: NodeDirs): Promise<number> {
  return (await temporaryFiles(dirs)).length;
}

async function verifyRound(client: HttpNodeClient, dirs: NodeDirs, writes: readonly Write[], totals: Totals): Promise<void> {
  for (const write of writes) {
    const found = await checkWrite(client, write);
    if (!write.shardAcked) {
      if (found === "complete") totals.unackedFoundComplete += 1;
      else totals.unackedAbsent += 1;
    }
  }
  const leftovers = await temporaryFiles(dirs);
  totals.temporaryFilesLeft += leftovers.length;
  expect(leftovers).toEqual([]);
}

describe("crash safety under SIGKILL", () => {
  it(`${ROUNDS} kills during ${WRITES_PER_ROUND} concurrent shard writes: nothing torn, nothing acknowledged lost`, async () => {
    const prng = new Prng(seed);
    const dirs = await makeNodeDirs(prng);
    const totals: Totals = { attempted: 0, shardsAcked: 0, recordsAcked: 0, unackedFoundComplete: 0, unackedAbsent: 0, torn: 0, temporaryFilesAtKill: 0, temporaryFilesLeft: 0 };
    const everything: Write[] = [];
    let previous: Write[] = [];
    const started = Date.now();
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const node = await startNode(prng, { dirs });
        const client = node.client();
        await verifyRound(client, dirs, previous, totals);
        const writes = await makeWrites(prng, dirs.diskIds);
        await writeAndKill(node, client, writes, prng.int(0, KILL_AFTER_ACKS_MAX), prng.int(0, KILL_EXTRA_DELAY_MS_MAX));
        await client.close();
        totals.temporaryFilesAtKill += await countTemporaryFiles(dirs);
        totals.attempted += writes.length;
        totals.shardsAcked += writes.filter((write) => write.shardAcked).length;
        totals.recordsAcked += writes.filter((write) => write.recordAcked).length;
        everything.push(...writes);
        previous = writes;
      }
      const last = await startNode(prng, { dirs });
      const client = last.client();
      await verifyRound(client, dirs, previous, totals);
      // Every acknowledged write of every round is still there after all 20 crashes.
      for (const write of everything) if (write.shardAcked) await checkWrite(client, write);
      expect((await last.stop()).code).toBe(0);
    } catch (error) {
      totals.torn += /torn/.test(String(error)) ? 1 : 0;
      console.error(`crash test failed; replay with TEST_SEED=${seed}`);
      throw error;
    } finally {
      console.log(`crash test seed ${seed}: ${JSON.stringify(totals)} in ${Date.now() - started} ms`);
    }
    expect(totals.torn).toBe(0);
    expect(totals.shardsAcked).toBeGreaterThan(0);
    expect(totals.shardsAcked).toBeLessThan(totals.attempted);
  }, CRASH_TEST_TIMEOUT_MS);
});
