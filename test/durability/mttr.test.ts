/**
 * The measured run (TESSERA_DURABILITY=full only, not in CI): a node holding at least 1 GiB of
 * shards is SIGKILLed; the figures are the time to detect it (MTTD), the time until every
 * object is back at k + m healthy shards on live disks (MTTR), the rebuild rate, and the PUT
 * throughput of the same machine for comparison. Every object is then read back with m more
 * nodes down.
 */
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { Prng, seedFromEnv } from "../prng.js";
import { BUCKET, LOAD_CLIENTS, SCALE, detectionTimes, getSha, megabytesPerSecond, putBody, report, sha256, startDurabilityCluster, unhealthyObjects, waitForHealed } from "./harness.js";

const SEED = seedFromEnv(0xd00d_0008);
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** Seven nodes: each object's lost shard has exactly one free node, spread over all six others. */
const NODES = 7;
/** Objects of 8 to 24 MiB: a node's share of 5 GiB of objects is 6/(4*7) of it, about 1.07 GiB of shards. */
const OBJECT_BYTES_MIN = 8 * MiB;
const OBJECT_BYTES_MAX = 24 * MiB;
const TOTAL_BYTES = 5 * GiB;
/** The node killed must hold at least this much: the "MTTR for a node holding at least 1 GiB". */
const VICTIM_BYTES_MIN = GiB;

describe.skipIf(SCALE.name !== "full")(`durability: MTTR of a node holding >= 1 GiB (seed ${SEED})`, () => {
  it("measures MTTD, MTTR and rebuild MB/s against PUT MB/s", async () => {
    const prng = new Prng(SEED);
    const live = await startDurabilityCluster({ nodes: NODES, k: 4, m: 2 });
    try {
      await live.s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
      const sizes: number[] = [];
      for (let total = 0; total < TOTAL_BYTES; ) {
        const size = prng.int(OBJECT_BYTES_MIN, OBJECT_BYTES_MAX);
        sizes.push(size);
        total += size;
      }
      const digests = new Map<string, string>();
      const loadStarted = Date.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: LOAD_CLIENTS }, async () => {
          for (let index = next++; index < sizes.length; index = next++) {
            const body = new Prng(SEED + index).bytes(sizes[index] as number);
            const key = `big-${String(index).padStart(4, "0")}`;
            await putBody(live.s3, key, body);
            digests.set(key, sha256(body));
          }
        }),
      );
      const loadMs = Date.now() - loadStarted;
      const loaded = sizes.reduce((sum, size) => sum + size, 0);
      const cluster = await live.admin.clusterStatus();
      const victim = [...cluster.nodes].sort((a, b) => (b.disks[0]?.usedBytes ?? 0) - (a.disks[0]?.usedBytes ?? 0))[0];
      if (victim === undefined) throw new Error("no node to kill");
      const victimShardBytes = await shardBytesOn(live, victim.id);
      expect(victimShardBytes).toBeGreaterThanOrEqual(VICTIM_BYTES_MIN);
      const before = await live.admin.healStatus();
      const killedAt = Date.now();
      live.test.node(victim.id).kill("SIGKILL");
      const healed = await waitForHealed(live.admin, [`${victim.id}/d0`], 1_800_000);
      const mttrMs = Date.now() - killedAt;
      const detected = detectionTimes(healed, victim.id);
      const written = healed.totals.bytesWritten - before.totals.bytesWritten;
      const rebuildMs = mttrMs - ((detected.downAt ?? killedAt) - killedAt);
      const bad = await unhealthyObjects(live.disks(), digests.keys(), (disk) => disk.nodeId !== victim.id);
      const others = cluster.nodes.map((node) => node.id).filter((id) => id !== victim.id).slice(0, 2);
      for (const id of others) live.test.node(id).kill("SIGKILL");
      let lost = 0;
      for (const [key, digest] of digests) if ((await getSha(live.s3, key)) !== digest) lost += 1;
      report("mttr", {
        seed: SEED,
        objects: sizes.length,
        objectBytes: loaded,
        putMBps: megabytesPerSecond(loaded, loadMs),
        victim: victim.id,
        victimShardBytes,
        mttdSuspectMs: detected.suspectAt === undefined ? undefined : detected.suspectAt - killedAt,
        mttdDownMs: detected.downAt === undefined ? undefined : detected.downAt - killedAt,
        mttrMs,
        rebuildMs,
        shardBytesWritten: written,
        shardBytesRead: healed.totals.bytesRead - before.totals.bytesRead,
        rebuildMBps: megabytesPerSecond(written, rebuildMs),
        notFullyRedundant: bad.length,
        lostAfterTwoMoreKills: lost,
      });
      expect(bad).toEqual([]);
      expect(lost).toBe(0);
    } finally {
      await live.stop();
    }
  }, 3_600_000);
});

async function shardBytesOn(live: Awaited<ReturnType<typeof startDurabilityCluster>>, nodeId: string): Promise<number> {
  let total = 0;
  for (const disk of live.disks().filter((each) => each.nodeId === nodeId)) {
    let cursor: string | undefined;
    do {
      const page = await disk.node.listShards(disk.diskId, { limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
      for (const shard of page.shards) total += shard.bytes;
      cursor = page.nextCursor;
    } while (cursor !== undefined);
  }
  return total;
}
