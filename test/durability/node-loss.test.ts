/**
 * Durability scenarios 1 and 2 (issue 6), real processes and SIGKILL, seeded:
 *
 * 1. While 4 clients PUT and GET 300 objects of random sizes, SIGKILL 2 of 6 nodes at random
 *    moments. Every acknowledged PUT reads back byte-identical; an unacknowledged one is
 *    absent or whole, never corrupt.
 * 2. Keep those 2 down and add 2 fresh nodes to the map: the healer restores every object to
 *    k + m healthy shards on live disks; then SIGKILL 2 other original nodes: every object
 *    still reads back intact.
 */
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { afterAll, describe, expect, it } from "vitest";
import { Prng, seedFromEnv } from "../prng.js";
import type { DiskHandle } from "../healer/inspect.js";
import { BUCKET, SCALE, detectionTimes, getSha, megabytesPerSecond, objectBody, putBody, report, sha256, startDurabilityCluster, unhealthyObjects, waitForHealed, type DurabilityCluster } from "./harness.js";

const SEED = seedFromEnv(0xd00d_0001);
/** Concurrent S3 clients of scenario 1 (the number). */
const CLIENTS = 4;
/** Of the PUT attempts, a GET of an acknowledged object follows this often. */
const READ_SHARE = 0.3;

interface Attempt {
  readonly key: string;
  readonly sha: string;
  readonly size: number;
  acked: boolean;
}

describe(`durability: node loss (seed ${SEED}, scale ${SCALE.name})`, () => {
  const prng = new Prng(SEED);
  let cluster: DurabilityCluster | undefined;
  const attempts: Attempt[] = [];
  const killed: string[] = [];
  const killedAt = new Map<string, number>();
  afterAll(async () => {
    await cluster?.stop();
  });

  const up = (disk: DiskHandle): boolean => !killed.includes(disk.nodeId);

  it("1: acknowledged PUTs survive 2 of 6 nodes SIGKILLed mid-traffic; unacknowledged ones are absent or whole", async () => {
    try {
      cluster = await startDurabilityCluster({ nodes: 6, k: 4, m: 2 });
      await cluster.s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
      const killPoints = [prng.int(Math.floor(SCALE.objects * 0.15), Math.floor(SCALE.objects * 0.45)), prng.int(Math.floor(SCALE.objects * 0.5), Math.floor(SCALE.objects * 0.8))];
      const victims = [`n${prng.int(1, 6)}`];
      while (victims.length < 2) {
        const next = `n${prng.int(1, 6)}`;
        if (!victims.includes(next)) victims.push(next);
      }
      const started = Date.now();
      let next = 0;
      let reads = 0;
      const client = async (): Promise<void> => {
        for (;;) {
          const index = next++;
          if (index >= SCALE.objects) return;
          const killIndex = killPoints.indexOf(index);
          if (killIndex !== -1) {
            const victim = victims[killIndex] as string;
            cluster?.test.node(victim).kill("SIGKILL");
            killed.push(victim);
            killedAt.set(victim, Date.now());
          }
          const body = objectBody(prng, index, SCALE.objectBytesMax);
          const attempt: Attempt = { key: `object-${String(index).padStart(4, "0")}`, sha: sha256(body), size: body.length, acked: false };
          attempts.push(attempt);
          try {
            await putBody((cluster as DurabilityCluster).s3, attempt.key, body);
            attempt.acked = true;
          } catch {
            // Unacknowledged: checked below to be absent or whole.
          }
          if (prng.next() < READ_SHARE) {
            const acked = attempts.filter((each) => each.acked);
            const target = acked[prng.int(0, acked.length - 1)];
            if (target !== undefined) {
              reads += 1;
              expect(await getSha((cluster as DurabilityCluster).s3, target.key), `GET ${target.key} during traffic`).toBe(target.sha);
            }
          }
        }
      };
      await Promise.all(Array.from({ length: CLIENTS }, client));
      const trafficMs = Date.now() - started;
      const acked = attempts.filter((attempt) => attempt.acked);
      let lost = 0;
      let unackedWhole = 0;
      let unackedAbsent = 0;
      for (const attempt of attempts) {
        const found = await getSha(cluster.s3, attempt.key);
        if (attempt.acked && found !== attempt.sha) lost += 1;
        if (!attempt.acked) {
          expect(found === undefined || found === attempt.sha, `unacknowledged ${attempt.key} is absent or whole`).toBe(true);
          if (found === undefined) unackedAbsent += 1;
          else unackedWhole += 1;
        }
      }
      const status = await cluster.admin.healStatus();
      const detection = victims.map((victim) => ({ node: victim, ...msSince(killedAt.get(victim), detectionTimes(status, victim)) }));
      report("scenario-1", {
        seed: SEED,
        attempted: attempts.length,
        acknowledged: acked.length,
        bytesChecked: attempts.reduce((sum, attempt) => sum + attempt.size, 0),
        readsDuringTraffic: reads,
        lost,
        unacknowledgedAbsent: unackedAbsent,
        unacknowledgedWhole: unackedWhole,
        killed: victims,
        detection,
        trafficMs,
      });
      expect(lost).toBe(0);
      expect(acked.length).toBeGreaterThan(SCALE.objects * 0.1);
    } catch (error) {
      console.error(`durability scenario 1 failed; replay with TEST_SEED=${SEED}`);
      throw error;
    }
  }, 600_000);

  it("2: with 2 fresh nodes added, every object is restored to k + m shards on live disks, then survives 2 more SIGKILLs", async () => {
    if (cluster === undefined) throw new Error("scenario 1 did not start the cluster");
    const live = cluster;
    const acked = attempts.filter((attempt) => attempt.acked);
    const before = await live.admin.healStatus();
    const reloadedAt = Date.now();
    await live.addNodeToMap();
    await live.addNodeToMap();
    const out = killed.map((node) => `${node}/d0`);
    const healed = await waitForHealed(live.admin, out);
    const healMs = Date.now() - reloadedAt;
    const bad = await unhealthyObjects(live.disks(), acked.map((attempt) => attempt.key), up);
    expect(bad.map(({ key, found }) => ({ key, problems: found.problems }))).toEqual([]);
    const written = healed.totals.bytesWritten - before.totals.bytesWritten;
    const originals = ["n1", "n2", "n3", "n4", "n5", "n6"].filter((node) => !killed.includes(node));
    const second = [originals[prng.int(0, originals.length - 1)] as string];
    while (second.length < 2) {
      const next = originals[prng.int(0, originals.length - 1)] as string;
      if (!second.includes(next)) second.push(next);
    }
    for (const node of second) {
      live.test.node(node).kill("SIGKILL");
      killed.push(node);
    }
    await Promise.all(second.map((node) => live.test.node(node).exited));
    let lost = 0;
    for (const attempt of acked) if ((await getSha(live.s3, attempt.key)) !== attempt.sha) lost += 1;
    report("scenario-2", {
      seed: SEED,
      objectsChecked: acked.length,
      bytesChecked: acked.reduce((sum, attempt) => sum + attempt.size, 0),
      lost,
      timeToFullRedundancyMs: healMs,
      shardsRebuilt: healed.totals.shardsRebuilt - before.totals.shardsRebuilt,
      shardBytesWritten: written,
      rebuildMBps: megabytesPerSecond(written, healMs),
      thenKilled: second,
    });
    expect(lost).toBe(0);
  }, 600_000);
});

function msSince(killedAt: number | undefined, times: { suspectAt?: number; downAt?: number }): { suspectMs?: number; downMs?: number } {
  if (killedAt === undefined) return {};
  return { ...(times.suspectAt === undefined ? {} : { suspectMs: times.suspectAt - killedAt }), ...(times.downAt === undefined ? {} : { downMs: times.downAt - killedAt }) };
}
