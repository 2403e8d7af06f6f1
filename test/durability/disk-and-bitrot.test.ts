/**
 * Durability scenarios 3 and 4 (issue 6), real processes, seeded:
 *
 * 3. Wipe one disk directory of a running node: detected, rebuilt, verified.
 * 4. Flip random bytes in 5% of the shard files: the scrubber finds and repairs every one;
 *    GETs return the right bytes throughout.
 */
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { DiskHandle } from "../healer/inspect.js";
import { Prng, seedFromEnv } from "../prng.js";
import { BUCKET, SCALE, detectionTimes, getSha, loadObjects, megabytesPerSecond, report, startDurabilityCluster, unhealthyObjects, waitFor, waitForHealed, type DurabilityCluster } from "./harness.js";

const SEED = seedFromEnv(0xd00d_0003);
/** Share of shard files whose bytes are flipped in scenario 4 (the 5%). */
const BITROT_SHARE = 0.05;
/** Bytes of a shard file's header: flips go past it, into the frames (a header flip is caught the same way). */
const SHARD_HEADER_BYTES = 80;

let cluster: DurabilityCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

async function putObjects(live: DurabilityCluster, prng: Prng, count: number, minBytes = 0): Promise<Map<string, { sha: string; size: number }>> {
  await live.s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  return loadObjects(live.s3, prng, count, minBytes);
}

async function readAll(live: DurabilityCluster, objects: ReadonlyMap<string, { sha: string }>): Promise<number> {
  let wrong = 0;
  for (const [key, { sha }] of objects) if ((await getSha(live.s3, key)) !== sha) wrong += 1;
  return wrong;
}

/** Every shard file under a disk directory: shards/<2 hex>/<object id>/<version>.<part>.<index>. */
async function shardFiles(disk: string): Promise<string[]> {
  const files: string[] = [];
  const shards = join(disk, "shards");
  for (const prefix of await readdir(shards).catch(() => [])) {
    for (const object of await readdir(join(shards, prefix))) {
      for (const file of await readdir(join(shards, prefix, object))) files.push(join(shards, prefix, object, file));
    }
  }
  return files.sort();
}

describe(`durability: disks and bitrot (seed ${SEED}, scale ${SCALE.name})`, () => {
  it("3: a wiped disk of a running node is detected, its shards rebuilt on other disks, every object verified", async () => {
    const prng = new Prng(SEED);
    const live = (cluster = await startDurabilityCluster({ nodes: 6, k: 4, m: 2, disksPerNode: 2 }));
    const objects = await putObjects(live, prng, SCALE.smallObjects);
    const node = live.test.node(`n${prng.int(1, 6)}`);
    const diskIndex = prng.int(0, 1);
    const directory = node.dirs[diskIndex] as string;
    const before = await live.admin.healStatus();
    const wipedAt = Date.now();
    for (const entry of await readdir(directory)) await rm(join(directory, entry), { recursive: true, force: true });
    const diskId = `d${diskIndex}`;
    const healed = await waitForHealed(live.admin, [`${node.id}/${diskId}`]);
    const healMs = Date.now() - wipedAt;
    const up = (disk: DiskHandle): boolean => !(disk.nodeId === node.id && disk.diskId === diskId);
    const bad = await unhealthyObjects(live.disks(), objects.keys(), up);
    const wrong = await readAll(live, objects);
    const detected = detectionTimes(healed, node.id, diskId).downAt;
    const written = healed.totals.bytesWritten - before.totals.bytesWritten;
    report("scenario-3", {
      seed: SEED,
      wiped: `${node.id}/${diskId}`,
      objectsChecked: objects.size,
      bytesChecked: [...objects.values()].reduce((sum, object) => sum + object.size, 0),
      lost: wrong,
      notFullyRedundant: bad.length,
      timeToDetectMs: detected === undefined ? undefined : detected - wipedAt,
      timeToFullRedundancyMs: healMs,
      shardsRebuilt: healed.totals.shardsRebuilt - before.totals.shardsRebuilt,
      shardBytesWritten: written,
      rebuildMBps: megabytesPerSecond(written, healMs),
    });
    expect(bad.map(({ key, found }) => ({ key, problems: found.problems }))).toEqual([]);
    expect(wrong).toBe(0);
  }, 300_000);

  it("4: bytes flipped in 5% of shard files are all found by the scrubber and repaired; GETs stay right throughout", async () => {
    const prng = new Prng(SEED + 1);
    const live = (cluster = await startDurabilityCluster({ nodes: 6, k: 4, m: 2 }));
    // Shard files only exist for objects above the inline size (64 KiB): every object here has them.
    const objects = await putObjects(live, prng, SCALE.smallObjects, 64 * 1024 + 1);
    const files = (await Promise.all(live.test.nodes.flatMap((node) => node.dirs.map(shardFiles)))).flat();
    const count = Math.max(3, Math.round(files.length * BITROT_SHARE));
    const chosen = new Set<string>();
    while (chosen.size < count) chosen.add(files[prng.int(0, files.length - 1)] as string);
    for (const file of chosen) {
      const bytes = await readFile(file);
      const offset = prng.int(SHARD_HEADER_BYTES, (await stat(file)).size - 1);
      bytes[offset] = (bytes[offset] ?? 0) ^ (1 << prng.int(0, 7));
      await writeFile(file, bytes);
    }
    const wrongBefore = await readAll(live, objects);
    const before = await live.admin.healStatus();
    const started = Date.now();
    await live.admin.requestScan("scrub");
    const healed = await waitFor("the scrub to complete", async () => {
      const status = await live.admin.healStatus();
      const done = (status.lastCompleted.scrub ?? 0) >= started - 1000 && status.state === "idle" && status.job === undefined;
      return done ? status : undefined;
    });
    const scrubMs = Date.now() - started;
    const wrongAfter = await readAll(live, objects);
    const bad = await unhealthyObjects(live.disks(), objects.keys(), () => true);
    const found = healed.totals.corruptFound;
    report("scenario-4", {
      seed: SEED,
      shardFiles: files.length,
      flipped: chosen.size,
      corruptFound: found,
      corruptFoundByScrub: found - before.totals.corruptFound,
      objectsChecked: objects.size,
      bytesChecked: [...objects.values()].reduce((sum, object) => sum + object.size, 0),
      wrongReadsBeforeScrub: wrongBefore,
      lost: wrongAfter,
      notFullyRedundant: bad.length,
      scrubMs,
      objectsScrubbed: healed.totals.objectsScrubbed - before.totals.objectsScrubbed,
    });
    expect(wrongBefore).toBe(0);
    expect(wrongAfter).toBe(0);
    expect(found).toBeGreaterThanOrEqual(chosen.size);
    expect(bad.map(({ key, found: redundancy }) => ({ key, problems: redundancy.problems }))).toEqual([]);
  }, 300_000);
});
