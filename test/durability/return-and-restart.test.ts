/**
 * Durability scenarios 6 and 7 (issue 6), real processes, SIGKILL, seeded:
 *
 * 6. A node that was down while objects were overwritten and deleted comes back: it serves
 *    none of its stale data, and it is cleaned.
 * 7. Restart the healer (SIGKILL its gateway) in the middle of a rebuild: it resumes from its
 *    checkpoint and finishes.
 */
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { afterEach, describe, expect, it } from "vitest";
import type { DiskHandle } from "../healer/inspect.js";
import { Prng, seedFromEnv } from "../prng.js";
import { BUCKET, SCALE, detectionTimes, getSha, megabytesPerSecond, loadObjects, objectBody, putBody, report, sha256, startDurabilityCluster, unhealthyObjects, waitFor, waitForHealed, type DurabilityCluster } from "./harness.js";

const SEED = seedFromEnv(0xd00d_0006);
/** Scenario 7's rebuild bandwidth before the kill: slow enough to kill the gateway mid-rebuild. */
const SLOW_REBUILD = "1MiB";

let cluster: DurabilityCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

type Expected = Map<string, string | undefined>;

async function putObjects(live: DurabilityCluster, prng: Prng, count: number, minBytes = 0): Promise<Expected> {
  await live.s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  const loaded = await loadObjects(live.s3, prng, count, minBytes);
  return new Map([...loaded].map(([key, { sha }]) => [key, sha]));
}

async function mismatches(live: DurabilityCluster, expected: Expected): Promise<string[]> {
  const wrong: string[] = [];
  for (const [key, sha] of expected) if ((await getSha(live.s3, key)) !== sha) wrong.push(key);
  return wrong;
}

describe(`durability: returning nodes and healer restarts (seed ${SEED}, scale ${SCALE.name})`, () => {
  it("6: a node down during overwrites and deletes comes back, serves none of its stale data, and is cleaned", async () => {
    const prng = new Prng(SEED);
    // Seven nodes: while one is down the healer can rebuild its shards on the other six, so the
    // return also moves shards back (and the returning node's own copies are stale twice over).
    const live = (cluster = await startDurabilityCluster({ nodes: 7, k: 4, m: 2 }));
    const expected = await putObjects(live, prng, SCALE.smallObjects);
    const victim = live.test.node(`n${prng.int(1, 7)}`);
    victim.kill("SIGKILL");
    await victim.exited;
    const keys = [...expected.keys()];
    let overwritten = 0;
    let deleted = 0;
    for (const key of keys) {
      const roll = prng.next();
      if (roll < 0.35) {
        const body = objectBody(prng, 10 + prng.int(0, 1000), SCALE.objectBytesMax);
        await putBody(live.s3, key, body);
        expected.set(key, sha256(body));
        overwritten += 1;
      } else if (roll < 0.6) {
        await live.s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
        expected.set(key, undefined);
        deleted += 1;
      }
    }
    await waitForHealed(live.admin, [`${victim.id}/d0`]);
    const restartedAt = Date.now();
    await victim.restart();
    const staleServed = await mismatches(live, expected);
    const healed = await waitForHealed(live.admin, []);
    const cleanMs = Date.now() - restartedAt;
    const bad = await unhealthyObjects(live.disks(), keys, () => true);
    const victimDisk = live.disks().find((disk) => disk.nodeId === victim.id) as DiskHandle;
    let staleOnVictim = 0;
    for (const key of keys) {
      const records = await victimDisk.node.getRecords(victimDisk.diskId, BUCKET, key);
      const newest = records.reduce((max, record) => (record.versionId > max ? record.versionId : max), "");
      staleOnVictim += records.filter((record) => record.versionId !== newest).length;
    }
    const staleAfter = await mismatches(live, expected);
    report("scenario-6", {
      seed: SEED,
      node: victim.id,
      objectsChecked: keys.length,
      overwritten,
      deleted,
      staleServedRightAfterReturn: staleServed.length,
      staleServedAfterCleaning: staleAfter.length,
      staleRecordsLeftOnNode: staleOnVictim,
      notFullyRedundant: bad.length,
      timeToCleanMs: cleanMs,
      shardsMovedBack: healed.totals.shardsCopied,
      shardsReused: healed.totals.shardsReused,
      garbageRemoved: healed.totals.garbageRemoved,
    });
    expect(staleServed).toEqual([]);
    expect(staleAfter).toEqual([]);
    expect(staleOnVictim).toBe(0);
    expect(bad.map(({ key, found }) => ({ key, problems: found.problems }))).toEqual([]);
  }, 300_000);

  it("7: a healer restarted (gateway SIGKILLed) in the middle of a rebuild resumes and finishes", async () => {
    const prng = new Prng(SEED + 1);
    const live = (cluster = await startDurabilityCluster({ nodes: 8, k: 4, m: 2 }));
    const expected = await putObjects(live, prng, SCALE.smallObjects, 256 * 1024);
    await live.admin.throttle({ concurrency: 2, bandwidth: SLOW_REBUILD });
    const victim = live.test.node(`n${prng.int(1, 8)}`);
    const killedAt = Date.now();
    victim.kill("SIGKILL");
    const underWay = await waitFor("the rebuild to be under way", async () => {
      const status = await live.admin.healStatus();
      return status.job?.kind === "failure" && status.totals.objectsRepaired >= 5 ? status : undefined;
    });
    live.test.gateway.kill("SIGKILL");
    await live.test.gateway.exited;
    await live.test.gateway.restart();
    const healed = await waitForHealed(live.admin, [`${victim.id}/d0`]);
    const totalMs = Date.now() - killedAt;
    const resumed = healed.history.filter((job) => job.kind === "failure" && job.resumed);
    const bad = await unhealthyObjects(live.disks(), expected.keys(), (disk) => disk.nodeId !== victim.id);
    const wrong = await mismatches(live, expected);
    const detection = detectionTimes(underWay, victim.id);
    report("scenario-7", {
      seed: SEED,
      node: victim.id,
      objectsChecked: expected.size,
      lost: wrong.length,
      repairedBeforeRestart: underWay.totals.objectsRepaired,
      repairedAfterRestart: healed.totals.objectsRepaired,
      scannedAfterRestart: healed.totals.objectsScanned,
      resumedJobs: resumed.length,
      timeToDetectMs: detection.suspectAt === undefined ? undefined : detection.suspectAt - killedAt,
      timeToFullRedundancyMs: totalMs,
      rebuildMBpsAfterRestart: megabytesPerSecond(healed.totals.bytesWritten, totalMs),
    });
    expect(resumed.length).toBeGreaterThan(0);
    expect(wrong).toEqual([]);
    expect(bad.map(({ key, found }) => ({ key, problems: found.problems }))).toEqual([]);
  }, 300_000);
});
