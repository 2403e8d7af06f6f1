/**
 * The healer over in-memory nodes (seeded): a lost node rebuilt riskiest first, a returning
 * node cleaned and refilled, the scrubber repairing bitrot, a map change moving only what
 * must move, a failed disk, failed-write leftovers, and a restart mid-rebuild resuming.
 * Redundancy is checked independently of the healer (inspect.ts), and every object is read
 * back byte for byte through the object store with m nodes down.
 */
import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { ChecksumAlgorithm } from "../../core/checksum.js";
import { shardLayout } from "../../core/shard-format.js";
import { writeShard } from "../../core/shard-stream.js";
import { readRepairList } from "../../gateway/healer/repair-list.js";
import { INLINE_OBJECT_BYTES_MAX, SMALL_COPIES_BYTES_DEFAULT } from "../../gateway/objects/small-objects.js";
import { TesseraError } from "../../core/errors.js";
import type { ObjectRecord } from "../../core/storage-api.js";
import type { MemoryNode } from "../../storage-node/memory-node.js";
import { Prng, seedFromEnv } from "../prng.js";
import { inspectKey, type DiskHandle } from "./inspect.js";
import { FAST_HEALER, rawMap, startMemoryCluster, waitFor, type MemoryCluster } from "./memory-cluster.js";

const SEED = seedFromEnv(0x5eed_4ea1);
const BUCKET = "heal";
/** Objects per test: enough to cover every size class and many placements, fast in memory. */
const OBJECTS = 48;
/** Largest object: several 64 KiB stripes. */
const OBJECT_BYTES_MAX = 300 * 1024;
/** A slowed record write (a job to stop mid-way): 64 objects take a few seconds at concurrency 1. */
const RECORD_WRITE_DELAY_MS = 40;

let running: MemoryCluster | undefined;
afterEach(async () => {
  await running?.stop();
  running = undefined;
});

async function* once(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}

const sha = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");

/** Sizes: every class (empty, tiny, inline boundary, several stripes, copies boundary), then random. */
function sizes(prng: Prng, count: number): number[] {
  const fixed = [0, 1, INLINE_OBJECT_BYTES_MAX, INLINE_OBJECT_BYTES_MAX + 1, 64 * 1024 * 3 + 5, SMALL_COPIES_BYTES_DEFAULT, SMALL_COPIES_BYTES_DEFAULT + 1];
  return Array.from({ length: count }, (_, index) => fixed[index] ?? prng.int(0, OBJECT_BYTES_MAX));
}

async function putAll(cluster: MemoryCluster, prng: Prng, count = OBJECTS): Promise<Map<string, string>> {
  await cluster.store.createBucket(BUCKET);
  const objects = new Map<string, string>();
  for (const [index, size] of sizes(prng, count).entries()) {
    const body = prng.bytes(size);
    const key = `object-${index}`;
    await cluster.store.put({ bucket: BUCKET, key, body: once(body), length: size, userMetadata: {}, systemMetadata: {} });
    objects.set(key, sha(body));
  }
  await cluster.store.settle();
  return objects;
}

async function readBack(cluster: MemoryCluster, key: string): Promise<string> {
  const resolved = await cluster.store.resolve(BUCKET, key);
  const pieces: Buffer[] = [];
  for await (const piece of cluster.store.read(resolved, 0, resolved.record.size)) pieces.push(Buffer.from(piece));
  return sha(Buffer.concat(pieces));
}

const up =
  (cluster: MemoryCluster) =>
  (disk: DiskHandle): boolean =>
    cluster.nodes.get(disk.nodeId)?.down !== true;

async function expectFullRedundancy(cluster: MemoryCluster, keys: Iterable<string>): Promise<void> {
  for (const key of keys) {
    const found = await inspectKey(cluster.disks(), BUCKET, key, up(cluster));
    expect({ key, healthy: found.healthy, problems: found.problems, older: found.olderVersions }).toEqual({ key, healthy: found.width, problems: [], older: 0 });
  }
}

function idleAfterFailure(cluster: MemoryCluster): () => boolean {
  return () => {
    const status = cluster.healer.status();
    return status.outDisks.length > 0 && cluster.healer.quiet;
  };
}

/** A record write as a test sees it before the node does: it may delay, throw or never return. */
type BeforeRecordWrite = (diskId: string, record: ObjectRecord) => Promise<void>;

/** Runs `before` ahead of each of `node`'s record writes; the returned function undoes it. */
function interceptRecordWrites(node: MemoryNode, before: BeforeRecordWrite): () => void {
  const putRecord = node.putRecord.bind(node);
  node.putRecord = async (diskId, record, fence) => {
    await before(diskId, record);
    return putRecord(diskId, record, fence);
  };
  return () => void delete (node as Partial<Pick<MemoryNode, "putRecord">>).putRecord;
}

const refused = (): TesseraError => new TesseraError("ERR_NODE_UNAVAILABLE", "record write refused (test)");

describe(`healer over memory nodes (seed ${SEED})`, () => {
  it("rebuilds a lost node's shards onto the other disks, then every object survives m more lost nodes", async () => {
    const prng = new Prng(SEED);
    const cluster = (running = await startMemoryCluster(rawMap(8)));
    const objects = await putAll(cluster, prng);
    (cluster.nodes.get("n1") as { down: boolean }).down = true;
    await waitFor("the failure scan to finish", idleAfterFailure(cluster));
    await expectFullRedundancy(cluster, objects.keys());
    const status = cluster.healer.status();
    expect(status.totals.shardsRebuilt).toBeGreaterThan(0);
    for (const id of ["n2", "n3"]) (cluster.nodes.get(id) as { down: boolean }).down = true;
    for (const [key, digest] of objects) expect(await readBack(cluster, key)).toBe(digest);
  });

  it("repairs objects with 0 spare shards before any with 1 when two nodes are lost", async () => {
    const prng = new Prng(SEED + 1);
    const cluster = (running = await startMemoryCluster(rawMap(8), { concurrency: 1 }));
    const objects = await putAll(cluster, prng);
    const zeroSpareAtFirstOneSpareRepair: number[] = [];
    let lastOne: number | undefined;
    for (const id of ["n1", "n2"]) (cluster.nodes.get(id) as { down: boolean }).down = true;
    await waitFor("the failure scan to finish", () => {
      const atRisk = cluster.healer.status().atRisk;
      const one = atRisk["1"] ?? 0;
      if (lastOne !== undefined && one < lastOne) zeroSpareAtFirstOneSpareRepair.push(atRisk["0"] ?? 0);
      lastOne = one;
      return idleAfterFailure(cluster)();
    }, 20_000, 1);
    expect(zeroSpareAtFirstOneSpareRepair.length).toBeGreaterThan(0);
    expect(zeroSpareAtFirstOneSpareRepair.every((count) => count === 0)).toBe(true);
    await expectFullRedundancy(cluster, objects.keys());
  });

  it("moves shards back to a returning node and removes its stale versions, never serving them", async () => {
    const prng = new Prng(SEED + 2);
    const cluster = (running = await startMemoryCluster(rawMap(8)));
    const objects = await putAll(cluster, prng);
    const n1 = cluster.nodes.get("n1") as { down: boolean };
    n1.down = true;
    await waitFor("the failure scan to finish", idleAfterFailure(cluster));
    const keys = [...objects.keys()];
    for (const key of keys.slice(0, 10)) {
      const body = prng.bytes(prng.int(0, OBJECT_BYTES_MAX));
      await cluster.store.put({ bucket: BUCKET, key, body: once(body), length: body.length, userMetadata: {}, systemMetadata: {} });
      objects.set(key, sha(body));
    }
    for (const key of keys.slice(10, 20)) {
      await cluster.store.delete(BUCKET, key);
      objects.delete(key);
    }
    await cluster.store.settle();
    n1.down = false;
    await waitFor("the rebalance to finish", () => cluster.healer.quiet && cluster.healer.status().outDisks.length === 0);
    await expectFullRedundancy(cluster, keys);
    for (const key of keys.slice(10, 20)) expect((await inspectKey(cluster.disks(), BUCKET, key, up(cluster))).deleteMarker).toBe(true);
    for (const key of keys) {
      const placed = cluster.cluster.place(BUCKET, key).locations.map((location) => `${location.nodeId}/${location.diskId}`).sort();
      const records = await Promise.all(cluster.disks().map(async (disk) => ((await disk.node.getRecords(disk.diskId, BUCKET, key)).length > 0 ? `${disk.nodeId}/${disk.diskId}` : undefined)));
      expect(records.filter((disk) => disk !== undefined).sort()).toEqual(placed);
    }
    for (const [key, digest] of objects) expect(await readBack(cluster, key)).toBe(digest);
  });

  it("scrubs: finds every flipped byte and rebuilds the shard, while reads stay right", async () => {
    const prng = new Prng(SEED + 3);
    const cluster = (running = await startMemoryCluster(rawMap(6)));
    const objects = await putAll(cluster, prng);
    let corrupted = 0;
    for (const key of objects.keys()) {
      const resolved = await cluster.store.resolve(BUCKET, key);
      const { record } = resolved;
      if (record.size <= INLINE_OBJECT_BYTES_MAX || prng.next() > 0.3) continue;
      const location = record.placement[prng.int(0, record.placement.length - 1)];
      if (location === undefined) continue;
      cluster.memory.get(location.nodeId)?.corruptShard(location.diskId, { objectId: record.objectId, versionId: record.versionId, partNumber: 0, shardIndex: location.shardIndex }, 80 + prng.int(0, 100));
      corrupted += 1;
    }
    expect(corrupted).toBeGreaterThan(3);
    // Degraded reads queue their objects too (the repair list): either path may find a shard first.
    for (const [key, digest] of objects) expect(await readBack(cluster, key)).toBe(digest);
    cluster.healer.requestScan("scrub");
    await waitFor("the scrub to finish", () => (cluster.healer.persisted.lastCompleted.scrub ?? 0) > 0 && cluster.healer.quiet);
    expect(cluster.healer.status().totals.corruptFound).toBeGreaterThanOrEqual(corrupted);
    await expectFullRedundancy(cluster, objects.keys());
  });

  it("after a map change moves only the shards whose placement changed, and reads work throughout", async () => {
    const prng = new Prng(SEED + 4);
    const cluster = (running = await startMemoryCluster(rawMap(6)));
    const objects = await putAll(cluster, prng);
    await cluster.reload(rawMap(8, { epoch: 2 }));
    for (const [key, digest] of objects) expect(await readBack(cluster, key)).toBe(digest);
    await waitFor("the rebalance to finish", () => cluster.healer.quiet);
    const status = cluster.healer.status();
    expect(status.totals.shardsRebuilt).toBe(0);
    expect(status.totals.shardsCopied).toBeGreaterThan(0);
    // Two new nodes of eight: about 2/8 of the shards move (6 shards per object).
    expect(status.totals.shardsCopied).toBeLessThan(objects.size * 6 * 0.45);
    await expectFullRedundancy(cluster, objects.keys());
    for (const [key, digest] of objects) expect(await readBack(cluster, key)).toBe(digest);
  });

  it("rebuilds a failed disk's shards while its node keeps serving its other disk", async () => {
    const prng = new Prng(SEED + 5);
    const cluster = (running = await startMemoryCluster(rawMap(6, { disks: 2 })));
    const objects = await putAll(cluster, prng);
    cluster.memory.get("n2")?.failDisk("d0", "EIO during a test");
    await waitFor("the failure scan to finish", idleAfterFailure(cluster));
    expect(cluster.healer.status().outDisks).toEqual(["n2/d0"]);
    const upDisks = (disk: DiskHandle): boolean => !(disk.nodeId === "n2" && disk.diskId === "d0");
    for (const key of objects.keys()) {
      const found = await inspectKey(cluster.disks(), BUCKET, key, upDisks);
      expect({ key, healthy: found.healthy, problems: found.problems }).toEqual({ key, healthy: found.width, problems: [] });
    }
    for (const [key, digest] of objects) expect(await readBack(cluster, key)).toBe(digest);
  });

  it("removes a failed write's records and shards once past the grace period", async () => {
    const prng = new Prng(SEED + 6);
    const cluster = (running = await startMemoryCluster(rawMap(6)));
    await cluster.store.createBucket(BUCKET);
    const body = prng.bytes(200 * 1024);
    await cluster.store.put({ bucket: BUCKET, key: "torn", body: once(body), length: body.length, userMetadata: {}, systemMetadata: {} });
    const { record } = await cluster.store.resolve(BUCKET, "torn");
    // As if the gateway died mid-commit: only two of six records were written.
    for (const location of record.placement.slice(2)) await cluster.nodes.get(location.nodeId)?.deleteRecord(location.diskId, BUCKET, "torn", record.versionId);
    await expect(cluster.store.resolve(BUCKET, "torn")).rejects.toMatchObject({ code: "ERR_NOT_FOUND" });
    cluster.healer.requestScan("scan");
    await waitFor("the scan to finish", () => (cluster.healer.persisted.lastCompleted.scan ?? 0) > 0 && cluster.healer.quiet);
    for (const location of record.placement) {
      const node = cluster.nodes.get(location.nodeId);
      expect(await node?.getRecords(location.diskId, BUCKET, "torn")).toEqual([]);
      expect(await node?.deleteShard(location.diskId, { objectId: record.objectId, versionId: record.versionId, partNumber: 0, shardIndex: location.shardIndex })).toBe(false);
    }
  });

  it("resumes a rebuild from its checkpoint after a restart and finishes it", async () => {
    const prng = new Prng(SEED + 7);
    /** Slow enough that the first healer is stopped mid-rebuild. */
    const slow = { bandwidthBytesPerSecond: 400 * 1024, concurrency: 1 };
    const cluster = (running = await startMemoryCluster(rawMap(8), slow));
    const objects = await putAll(cluster, prng, 64);
    (cluster.nodes.get("n1") as { down: boolean }).down = true;
    await waitFor("the rebuild to be under way", () => cluster.healer.status().totals.objectsRepaired >= 5 && cluster.healer.running?.kind === "failure");
    const firstRepaired = cluster.healer.status().totals.objectsRepaired;
    const healer = await cluster.restartHealer({ concurrency: 4 });
    await waitFor("the failure scan to finish", idleAfterFailure(cluster));
    expect(healer.lastJob?.resumed).toBe(true);
    expect(firstRepaired + healer.status().totals.objectsRepaired).toBeGreaterThanOrEqual(1);
    expect(healer.status().totals.objectsScanned).toBeLessThan(objects.size);
    await expectFullRedundancy(cluster, objects.keys());
  });

  it("a retry owed when the healer stops is still owed after a restart: an object left short of a record is finished", async () => {
    const prng = new Prng(SEED + 12);
    // No retry within the test unless the restart brings it (the restarted healer retries at once).
    const cluster = (running = await startMemoryCluster(rawMap(8), { concurrency: 1, retryAfterMs: 600_000 }));
    const objects = await putAll(cluster, prng, 12);
    // Where its record says (a small object's copies use only the first 1 + m disks).
    const placements = await Promise.all([...objects.keys()].map(async (key) => ({ key, placement: (await cluster.store.resolve(BUCKET, key)).record.placement })));
    const key = placements.find(({ placement }) => ["n1", "n2"].every((id) => placement.some((location) => location.nodeId === id)))?.key;
    if (key === undefined) throw new Error(`seed ${SEED}: no object on both n1 and n2`);
    // n2 refuses this object's record writes: its repair ends with the record short there.
    const undo = interceptRecordWrites(cluster.memory.get("n2") as MemoryNode, async (_diskId, record) => {
      if (record.key === key) throw refused();
    });
    (cluster.nodes.get("n1") as { down: boolean }).down = true;
    await waitFor("the failure scan to end incomplete", () => cluster.healer.history.some((job) => job.kind === "failure" && job.outcome === "incomplete"));
    await cluster.healer.stop();
    undo();
    const healer = await cluster.restartHealer();
    await waitFor("the healer to be idle", idleAfterFailure(cluster));
    expect(healer.history.filter((job) => job.kind === "failure").map((job) => job.outcome)).toEqual(["completed"]);
    await expectFullRedundancy(cluster, objects.keys());
  });

  it("a job resumed past an object it left degraded still ends incomplete, and the retry finishes that object", async () => {
    const prng = new Prng(SEED + 13);
    const cluster = (running = await startMemoryCluster(rawMap(8), { concurrency: 1 }));
    const objects = await putAll(cluster, prng, 64);
    // Every object record write takes a while (so that the job is stopped mid-way), and n2
    // refuses the new record of the first object it already holds that the rebuild updates,
    // early in the job: its old record, which still names n1, stays.
    let refusedKey: string | undefined;
    const undo = [...cluster.memory].map(([id, node]) =>
      interceptRecordWrites(node, async (diskId, record) => {
        if (record.bucket !== BUCKET) return;
        await new Promise((resolve) => setTimeout(resolve, RECORD_WRITE_DELAY_MS));
        if (id === "n2" && refusedKey === undefined && (await node.getRecords(diskId, record.bucket, record.key)).length > 0) refusedKey = record.key;
        if (id === "n2" && record.key === refusedKey) throw refused();
      }),
    );
    (cluster.nodes.get("n1") as { down: boolean }).down = true;
    await waitFor("an object's repair to have been refused", () => refusedKey !== undefined);
    const repairedThen = cluster.healer.status().totals.objectsRepaired;
    // A few more objects, and a checkpoint (every 100 ms here) past the refused one.
    await waitFor("the rebuild to move on", () => cluster.healer.status().totals.objectsRepaired >= repairedThen + 3);
    await new Promise((resolve) => setTimeout(resolve, 2 * FAST_HEALER.checkpointIntervalMs));
    expect(cluster.healer.running?.kind).toBe("failure");
    await cluster.healer.stop();
    for (const each of undo) each();
    const healer = await cluster.restartHealer({ concurrency: 4 });
    await waitFor("the healer to be idle", idleAfterFailure(cluster));
    const failures = healer.history.filter((job) => job.kind === "failure");
    expect(failures[0]?.resumed).toBe(true);
    expect(failures.map((job) => job.outcome)).toEqual(["incomplete", "completed"]);
    await expectFullRedundancy(cluster, objects.keys());
  });

  it("an object whose new disk refused its record is put on the repair list and finished from there", async () => {
    const prng = new Prng(SEED + 14);
    const cluster = (running = await startMemoryCluster(rawMap(8), { concurrency: 1 }));
    const objects = await putAll(cluster, prng, 24);
    // n2 refuses, once, the record of the first object whose shard the rebuild moves onto it
    // (n2 held no record of it): every other disk's new record names n2, none names n1 any
    // more, so no retried failure scan finds the object again.
    const n2 = cluster.memory.get("n2") as MemoryNode;
    let refusedKey: string | undefined;
    interceptRecordWrites(n2, async (diskId, record) => {
      if (record.bucket === BUCKET && refusedKey === undefined && (await n2.getRecords(diskId, record.bucket, record.key)).length === 0) {
        refusedKey = record.key;
        throw refused();
      }
    });
    (cluster.nodes.get("n1") as { down: boolean }).down = true;
    await waitFor("the failure scan to end incomplete", () => cluster.healer.history.some((job) => job.kind === "failure" && job.outcome === "incomplete"));
    expect(refusedKey).toBeDefined();
    await waitFor("every object fully redundant", async () => {
      for (const key of objects.keys()) {
        const found = await inspectKey(cluster.disks(), BUCKET, key, up(cluster));
        if (found.healthy !== found.width || found.problems.length > 0) return false;
      }
      return true;
    });
    await expectFullRedundancy(cluster, objects.keys());
  });

  it("a job resumed after a stop mid-commit repairs the object whose record update was cut short", async () => {
    const prng = new Prng(SEED + 15);
    const cluster = (running = await startMemoryCluster(rawMap(8), { concurrency: 1 }));
    const objects = await putAll(cluster, prng, 24);
    // n2's write of the new record of the first object it already holds that the rebuild
    // moves never returns: the healer stops (a gateway killed) with the other disks at the new
    // revision, which no longer names n1, and n2 at the old one, which does. A failure listing
    // then sees n2's record only, so the object looks to have fewer spare shards than it has.
    const n2 = cluster.memory.get("n2") as MemoryNode;
    let cutKey: string | undefined;
    const undo = interceptRecordWrites(n2, async (diskId, record) => {
      if (record.bucket === BUCKET && (cutKey === undefined ? (await n2.getRecords(diskId, record.bucket, record.key)).length > 0 : record.key === cutKey)) {
        cutKey = record.key;
        await new Promise<never>(() => undefined);
      }
    });
    (cluster.nodes.get("n1") as { down: boolean }).down = true;
    await waitFor("a record write to be cut short", () => cutKey !== undefined);
    // A checkpoint (every 100 ms here) while that object is the oldest not done.
    await new Promise((resolve) => setTimeout(resolve, 2 * FAST_HEALER.checkpointIntervalMs));
    expect(cluster.healer.running?.kind).toBe("failure");
    await cluster.healer.stop();
    undo();
    const healer = await cluster.restartHealer({ concurrency: 4 });
    await waitFor("the healer to be idle", idleAfterFailure(cluster));
    expect(healer.history.find((job) => job.kind === "failure")?.resumed).toBe(true);
    await expectFullRedundancy(cluster, objects.keys());
  });

  it("never runs two repairs of one object at once: an object queued again while it is repaired waits for that repair", async () => {
    const prng = new Prng(SEED + 16);
    const cluster = (running = await startMemoryCluster(rawMap(8), { concurrency: 2 }));
    const objects = await putAll(cluster, prng, 4);
    await waitFor("the healer to be idle", () => cluster.healer.quiet);
    const key = [...objects.keys()][3] as string;
    // Every repair of the object starts by reading its records; here each read takes a while,
    // and the reads of the key in progress on n2 at once are counted.
    const n2 = cluster.memory.get("n2") as MemoryNode;
    const getRecords = n2.getRecords.bind(n2);
    let reading = 0;
    let readingMax = 0;
    let reads = 0;
    n2.getRecords = async (diskId, bucket, objectKey) => {
      if (objectKey !== key) return getRecords(diskId, bucket, objectKey);
      reads += 1;
      reading += 1;
      readingMax = Math.max(readingMax, reading);
      try {
        await new Promise((resolve) => setTimeout(resolve, 200));
        return await getRecords(diskId, bucket, objectKey);
      } finally {
        reading -= 1;
      }
    };
    const item = { bucket: BUCKET, key, spare: 2, size: 0, bytesToWrite: 0, seeds: [], verify: false, source: "manual" as const };
    await cluster.healer.queue.push(item);
    await waitFor("the first repair to be reading", () => reading > 0);
    await cluster.healer.queue.push(item);
    await waitFor("both repairs to be done", () => reads >= 2 && reading === 0 && cluster.healer.inFlight === 0 && cluster.healer.queue.size === 0);
    expect({ reads, readingMax }).toEqual({ reads: 2, readingMax: 1 });
  });

  it("a degraded read queues its object: an unreachable shard without verification, a corrupt one with it, never hidden by a later unreachable one", async () => {
    const prng = new Prng(SEED + 17);
    // The healer never takes the entries (no poll), so the list shows what reads wrote.
    const cluster = (running = await startMemoryCluster(rawMap(6), { repairListPollIntervalMs: 3_600_000 }));
    const objects = await putAll(cluster, prng, 6);
    const reasons = async (): Promise<Record<string, string>> => Object.fromEntries((await cluster.repairs.list()).map((entry) => [entry.key, entry.reason]));
    const readWith = async (key: string, broken: (location: { nodeId: string; diskId: string; shardIndex: number }, record: ObjectRecord) => () => void): Promise<void> => {
      const { record } = await cluster.store.resolve(BUCKET, key);
      const location = record.placement[0];
      if (location === undefined) throw new Error("a placed object has locations");
      const undo = broken(location, record);
      expect(await readBack(cluster, key)).toBe(objects.get(key));
      undo();
      await cluster.repairs.settle();
    };
    // The node answers record reads but not shard reads, as a node that stops mid-read does.
    const unreachable = (location: { nodeId: string }) => {
      const node = cluster.memory.get(location.nodeId) as MemoryNode;
      const readShard = node.readShard.bind(node);
      node.readShard = () => (async function* () { yield* []; throw new TesseraError("ERR_NODE_UNAVAILABLE", "connection refused (test)"); })();
      return () => (node.readShard = readShard);
    };
    const corrupt = (location: { nodeId: string; diskId: string; shardIndex: number }, record: ObjectRecord) => {
      cluster.memory.get(location.nodeId)?.corruptShard(location.diskId, { objectId: record.objectId, versionId: record.versionId, partNumber: 0, shardIndex: location.shardIndex }, 40);
      return () => undefined;
    };
    // object-3 and object-4 (over the inline size): shard files read through the streaming decoder.
    await readWith("object-3", unreachable);
    expect(await reasons()).toEqual({ "object-3": "shard 0 unreachable" });
    await readWith("object-4", corrupt);
    await readWith("object-4", unreachable);
    expect(await reasons()).toEqual({ "object-3": "shard 0 unreachable", "object-4": "shard 0 failed a read" });
    await readWith("object-3", corrupt);
    expect(await reasons()).toEqual({ "object-3": "shard 0 failed a read", "object-4": "shard 0 failed a read" });
    const entries = await readRepairList(cluster.cluster, cluster.disks());
    expect(entries.map((entry) => [entry.key, entry.verify])).toEqual([["object-3", true], ["object-4", true]]);
  });

  it("a repair-list entry whose repair could not finish stays on the list and is tried again until it does", async () => {
    const prng = new Prng(SEED + 16);
    // The node stays suspect (never out): its disk keeps its place in the placement, unreadable.
    const cluster = (running = await startMemoryCluster(rawMap(6), { downAfterMs: 3_600_000 }));
    const objects = await putAll(cluster, prng, 6);
    const key = "object-3"; // INLINE_OBJECT_BYTES_MAX + 1: shard files, not inline
    const { record } = await cluster.store.resolve(BUCKET, key);
    const location = record.placement[prng.int(0, record.placement.length - 1)];
    if (location === undefined) throw new Error("a placed object has locations");
    // Bitrot on a disk whose node then stops answering: the repair can neither read nor rewrite it.
    cluster.memory.get(location.nodeId)?.corruptShard(location.diskId, { objectId: record.objectId, versionId: record.versionId, partNumber: 0, shardIndex: location.shardIndex }, 40);
    const node = cluster.nodes.get(location.nodeId) as { down: boolean };
    node.down = true;
    await waitFor("the node to be suspect", () => !cluster.healer.detector.readable(location.nodeId, location.diskId));
    cluster.repairs.enqueue(BUCKET, key, `shard ${location.shardIndex} failed its checksum`);
    await cluster.repairs.settle();
    await waitFor("a repair that leaves work", () => cluster.healer.status().totals.objectsDegraded > 0);
    const listed = async (): Promise<string[]> => (await cluster.repairs.list()).map((entry) => `${entry.bucket}/${entry.key}`);
    expect(await listed()).toEqual([`${BUCKET}/${key}`]);
    node.down = false;
    await waitFor("the entry to be repaired and leave the list", async () => (await listed()).length === 0);
    expect(cluster.healer.status().totals.corruptFound).toBeGreaterThanOrEqual(1);
    await expectFullRedundancy(cluster, objects.keys());
  });

  it("sweeps shard files no record names (a write whose gateway died before its records), and keeps every named one", async () => {
    const prng = new Prng(SEED + 8);
    const cluster = (running = await startMemoryCluster(rawMap(6)));
    const objects = await putAll(cluster, prng, 12);
    const objectId = prng.bytes(16);
    const versionId = prng.bytes(16);
    const params = { checksumAlgorithm: ChecksumAlgorithm.Crc32c, k: 4, m: 2, shardIndex: 1, blockBytes: 4096, partNumber: 0, objectLength: 5000, objectId, versionId };
    const layout = shardLayout(params);
    const chunks = Array.from({ length: layout.stripeCount }, () => prng.bytes(layout.chunkBytes));
    const orphan = { objectId: objectId.toString("hex"), versionId: versionId.toString("hex"), partNumber: 0, shardIndex: 1 };
    await cluster.nodes.get("n3")?.writeShard("d0", orphan, writeShard(params, chunks), layout.fileBytes);
    cluster.healer.requestScan("scan");
    await waitFor("the scan to finish", () => (cluster.healer.persisted.lastCompleted.scan ?? 0) > 0 && cluster.healer.quiet);
    const listed = await cluster.nodes.get("n3")?.listShards("d0", { limit: 1000 });
    expect(listed?.shards.some((each) => each.shard.objectId === orphan.objectId)).toBe(false);
    expect(cluster.healer.status().totals.orphanShardsRemoved).toBe(1);
    await expectFullRedundancy(cluster, objects.keys());
  });

  it("rebuilds every part of a multipart object, each part its own shard set at the record's placement", async () => {
    const prng = new Prng(SEED + 9);
    const cluster = (running = await startMemoryCluster(rawMap(8)));
    await cluster.store.createBucket(BUCKET);
    const upload = await cluster.store.uploads.create({ bucket: BUCKET, key: "multi", userMetadata: {}, systemMetadata: {} });
    const bodies = [prng.bytes(200 * 1024), prng.bytes(130 * 1024 + 7), prng.bytes(5)];
    for (const [index, body] of bodies.entries()) {
      await cluster.store.uploads.uploadPart({ bucket: BUCKET, key: "multi", uploadId: upload.uploadId, partNumber: index + 1, body: once(body), length: body.length });
    }
    await cluster.store.uploads.complete({
      bucket: BUCKET,
      key: "multi",
      uploadId: upload.uploadId,
      choose: (uploaded) => [...uploaded.values()].map(({ partNumber, partVersionId, size, etag, blockBytes }) => ({ partNumber, partVersionId, size, etag, blockBytes })),
    });
    await cluster.store.settle();
    const digest = sha(Buffer.concat(bodies));
    expect(await readBack(cluster, "multi")).toBe(digest);
    const { record } = await cluster.store.resolve(BUCKET, "multi");
    expect(record.parts).toHaveLength(3);
    for (const location of record.placement.slice(0, 2)) (cluster.nodes.get(location.nodeId) as { down: boolean }).down = true;
    await waitFor("the failure scan to finish", idleAfterFailure(cluster));
    await expectFullRedundancy(cluster, ["multi"]);
    const healed = (await cluster.store.resolve(BUCKET, "multi")).record;
    expect(healed.revision).toBeGreaterThan(record.revision);
    const live = healed.placement.filter((location) => cluster.nodes.get(location.nodeId)?.down !== true);
    for (const location of live.slice(0, 2)) (cluster.nodes.get(location.nodeId) as { down: boolean }).down = true;
    expect(await readBack(cluster, "multi")).toBe(digest);
  });

  it("decommissions a node dropped from the map: its shards are copied off, then it is reported drained", async () => {
    const prng = new Prng(SEED + 10);
    const cluster = (running = await startMemoryCluster(rawMap(8)));
    const objects = await putAll(cluster, prng);
    const seven = rawMap(7, { epoch: 2 });
    await cluster.reload(seven);
    await waitFor("n8 to be drained", () => cluster.healer.drained.has("n8") && cluster.healer.quiet);
    const status = cluster.healer.status();
    expect(status.totals.shardsRebuilt).toBe(0);
    expect(status.totals.shardsCopied).toBeGreaterThan(0);
    expect(status.drained).toEqual(["n8"]);
    const n8 = cluster.nodes.get("n8");
    for (const key of objects.keys()) expect(await n8?.getRecords("d0", BUCKET, key)).toEqual([]);
    expect((await n8?.listShards("d0", { limit: 1000 }))?.shards).toEqual([]);
    (n8 as { down: boolean }).down = true;
    await expectFullRedundancy(cluster, objects.keys());
    for (const [key, digest] of objects) expect(await readBack(cluster, key)).toBe(digest);
  });
});
