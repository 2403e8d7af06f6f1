/**
 * Rebuild throughput: MB/s of shards the healer (gateway/healer/) restores after a node loses
 * its disk. REBUILD_OBJECTS objects are put, one node is stopped, its disk emptied and the
 * node started again (a replaced drive), then a scan is requested through the admin API and
 * the healer's own totals are polled until every lost shard is back. The figure is shard
 * bytes written / seconds from the scan request to the last shard, with the CPU seconds per
 * GB of gateway and nodes; the bound it is judged against is the large-PUT model (a rebuild
 * reads k shards and writes one per restored shard: no cheaper than a PUT of that shard).
 */
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { AdminClient } from "../gateway/healer/admin-client.js";
import type { HealerStatus } from "../gateway/healer/status.js";
import { GB, MB } from "./limits.js";
import { cpuDelta, cpuSnapshot, peakRssBytes, resetPeakRss } from "./proc.js";
import type { TesseraTarget } from "./targets.js";
import { putOne, type WorkloadContext } from "./workload.js";

/** Size of the objects restored (their count is the budget's rebuildObjects). */
export const REBUILD_OBJECT_BYTES = 64 * 1024 * 1024;
/** The node whose disk is emptied. */
const REBUILD_NODE = "n3";
/** How often the healer's status is read while it works. */
const POLL_INTERVAL_MS = 250;

export interface RebuildResult {
  readonly status: "measured" | "failed" | "pending";
  readonly note: string;
  readonly megabytesPerSecond?: number;
  readonly shardBytes?: number;
  readonly seconds?: number;
  readonly cpuSecondsPerGB?: Readonly<Record<string, number>>;
  /** The gateway's peak RSS from the scan request to the end of the window (the healer runs in the gateway). */
  readonly gatewayPeakRssBytes?: number;
}

async function emptyDirectory(directory: string): Promise<void> {
  for (const entry of await readdir(directory)) await rm(join(directory, entry), { recursive: true, force: true });
}

/**
 * Polls until the healer has nothing queued and rebuilt at least `expectedShards`, or until
 * `windowMs`: a cluster full of earlier objects can take longer than a bench should wait, and
 * the rate over the window is the throughput all the same. Returns the last status read.
 */
async function waitForRebuild(admin: AdminClient, before: HealerStatus, expectedShards: number, windowMs: number): Promise<{ status: HealerStatus; finished: boolean }> {
  const deadline = Date.now() + windowMs;
  for (;;) {
    const status = await admin.healStatus();
    const rebuilt = status.totals.shardsRebuilt - before.totals.shardsRebuilt;
    if (rebuilt >= expectedShards && status.queue.length === 0 && status.queue.inFlight === 0) return { status, finished: true };
    if (Date.now() > deadline) return { status, finished: false };
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

export async function measureRebuild(tessera: TesseraTarget, context: WorkloadContext, objects: number, windowMs: number): Promise<RebuildResult> {
  const { cluster } = tessera;
  const admin = new AdminClient({ endpoint: cluster.endpoint, credentials: cluster.credentials, region: cluster.region });
  try {
    for (let index = 0; index < objects; index++) await putOne(context, REBUILD_OBJECT_BYTES, "rebuild");
    const node = cluster.node(REBUILD_NODE);
    await node.stop();
    for (const directory of node.dirs) await emptyDirectory(directory);
    await node.restart();
    // Objects put before this section lost their shards on the node too: count them all.
    const before = await admin.healStatus();
    // The gateway's peak from here on is the rebuild's (the PUTs above are one at a time, far
    // below the matrix's); where the kernel refuses the reset it is the peak of the whole run.
    const gatewayPid = cluster.gateway.pid;
    const peakReset = resetPeakRss(gatewayPid);
    const cpuBefore = cpuSnapshot(tessera.target.processes());
    const started = performance.now();
    await admin.requestScan("scan");
    const { status: after, finished } = await waitForRebuild(admin, before, objects, windowMs);
    const seconds = (performance.now() - started) / 1000;
    const shardBytes = after.totals.bytesWritten - before.totals.bytesWritten;
    if (shardBytes <= 0) throw new Error(`no shard bytes rebuilt within ${windowMs / 1000} s (state ${after.state})`);
    const cpu = cpuDelta(cpuBefore, cpuSnapshot(tessera.target.processes()));
    const gatewayPeakRssBytes = peakRssBytes(gatewayPid);
    const sum = (names: (name: string) => boolean): number => [...cpu].filter(([name]) => names(name)).reduce((total, [, value]) => total + value, 0) / (shardBytes / GB);
    return {
      status: "measured",
      note: `${after.totals.shardsRebuilt - before.totals.shardsRebuilt} shards (${(shardBytes / MB).toFixed(0)} MB) rebuilt onto ${REBUILD_NODE} after its disk was emptied, ${finished ? "scan to last shard" : `in the first ${windowMs / 1000} s (every object of the run lost a shard; the healer was still at work)`}`,
      megabytesPerSecond: shardBytes / MB / seconds,
      shardBytes,
      seconds,
      cpuSecondsPerGB: { gateway: sum((name) => name === "gateway"), nodes: sum((name) => /^n\d+$/.test(name)) },
      ...(peakReset ? { gatewayPeakRssBytes } : {}),
    };
  } catch (error) {
    return { status: "failed", note: `rebuild not measured: ${error instanceof Error ? error.message : String(error)}` };
  }
}
