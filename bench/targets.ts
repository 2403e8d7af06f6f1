/**
 * The systems the bench measures: Tessera (a real local cluster from test/cluster-harness.ts:
 * 6 storage-node processes and a gateway, 4+2, in a temporary directory), the s3rver baseline
 * (its own process, same disk), or any S3 endpoint given with --endpoint.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildIfStale } from "../bin/build.js";
import { applyHeapGrowingPercent } from "../core/role-process.js";
import { AdminClient } from "../gateway/healer/admin-client.js";
import { startCluster, type TestCluster } from "../test/cluster-harness.js";
import { startHelper } from "./child.js";
import { BENCH_DOWN_AFTER_MS, CLIENT_HEAP_GROWING_PERCENT, NODES_UP_POLL_MS, NODES_UP_WAIT_MS } from "./limits.js";
import type { ProcessRef } from "./proc.js";
import { BenchS3Client, type S3Endpoint } from "./s3-client.js";
import type { Target } from "./workload.js";

export const BENCH_BUCKET = "bench";
/** s3rver's built-in account. */
const BASELINE_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };
const REGION = "us-east-1";

export interface StartedTarget {
  readonly target: Target;
  /** Stops every process and removes the data; idempotent. */
  stop(): Promise<void>;
}

export interface TesseraTarget extends StartedTarget {
  readonly cluster: TestCluster;
}

async function withBucket(name: string, endpoint: S3Endpoint, processes: () => readonly ProcessRef[]): Promise<Target> {
  const client = new BenchS3Client(endpoint);
  await client.createBucket(BENCH_BUCKET);
  return { name, client, bucket: BENCH_BUCKET, processes };
}

/**
 * `--env KEY=VALUE` flags as an environment for the processes a bench starts (e.g.
 * TESSERA_HEAP_GROWING_PERCENT=0 to compare with V8's own rule, TESSERA_HEAL=off).
 */
export function envFromPairs(pairs: readonly string[]): NodeJS.ProcessEnv {
  return Object.fromEntries(
    pairs.map((pair) => {
      const at = pair.indexOf("=");
      if (at <= 0) throw new Error(`--env takes KEY=VALUE, got ${JSON.stringify(pair)}`);
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
  );
}

/**
 * Tunes this process, the bench's S3 client, before it measures anything: every bench entry
 * point that drives a target calls it first (CLIENT_HEAP_GROWING_PERCENT in limits.ts).
 */
export function tuneClientProcess(): void {
  applyHeapGrowingPercent(CLIENT_HEAP_GROWING_PERCENT);
}

/**
 * A 4+2 cluster of 6 node processes and a gateway; `env` reaches every process (profiling), over
 * the bench's own settings (BENCH_DOWN_AFTER_MS).
 */
export async function startTessera(env: NodeJS.ProcessEnv = {}): Promise<TesseraTarget> {
  // The processes run dist/ (what users run) once it is built from the current sources.
  await buildIfStale();
  const cluster = await startCluster({ nodes: 6, k: 4, m: 2, env: { TESSERA_HEAL_DOWN_AFTER_MS: String(BENCH_DOWN_AFTER_MS), ...env } });
  try {
    const processes = (): ProcessRef[] => [
      { name: "gateway", pid: cluster.gateway.pid },
      ...cluster.nodes.filter((node) => node.running).map((node) => ({ name: node.id, pid: node.pid })),
    ];
    const endpoint = { url: cluster.endpoint, region: cluster.region, ...cluster.credentials };
    const target = await withBucket("tessera", endpoint, processes);
    let stopped: Promise<void> | undefined;
    return { target, cluster, stop: () => (stopped ??= target.client.close().finally(() => cluster.stop())) };
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}

/**
 * Resolves once the gateway's failure detector sees every node of the map up, with every disk
 * answering ok (its cluster status, through the admin API); throws with the states it saw
 * after `timeoutMs`. Restarted nodes are routed around until then, so a healthy measurement
 * must wait for this.
 */
export async function waitForNodesUp(tessera: TesseraTarget, timeoutMs = NODES_UP_WAIT_MS): Promise<void> {
  const admin = adminOf(tessera);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await admin.clusterStatus();
    const members = status.nodes.filter((node) => node.role === "member");
    const notUp = members.filter((node) => node.state !== "ok" || node.disks.some((disk) => disk.state !== "ok"));
    if (notUp.length === 0) return;
    if (Date.now() > deadline) {
      const states = notUp.map((node) => `${node.id} ${node.state} (disks ${node.disks.map((disk) => disk.state).join(", ")})`).join("; ");
      throw new Error(`nodes not seen up by the gateway within ${timeoutMs / 1000} s: ${states}`);
    }
    await new Promise((resolve) => setTimeout(resolve, NODES_UP_POLL_MS));
  }
}

/**
 * The disks the gateway's healer holds out of the placement ("node/disk"): a node stopped for
 * longer than its down-after time, whose shards the healer rebuilds elsewhere.
 */
export async function disksOut(tessera: TesseraTarget): Promise<string[]> {
  const status = await adminOf(tessera).clusterStatus();
  return status.nodes.flatMap((node) => node.disks.filter((disk) => disk.out).map((disk) => `${node.id}/${disk.id}`));
}

function adminOf(tessera: TesseraTarget): AdminClient {
  const { cluster } = tessera;
  return new AdminClient({ endpoint: cluster.endpoint, credentials: cluster.credentials, region: cluster.region });
}

export async function startBaseline(): Promise<StartedTarget> {
  const directory = await mkdtemp(join(tmpdir(), "tessera-bench-s3rver-"));
  const server = await startHelper("baseline-server.ts", [directory]);
  const stopAll = async (): Promise<void> => {
    await server.stop();
    await rm(directory, { recursive: true, force: true });
  };
  try {
    const target = await withBucket("s3rver", { url: server.url, region: REGION, ...BASELINE_CREDENTIALS }, () => [{ name: "s3rver", pid: server.pid }]);
    let stopped: Promise<void> | undefined;
    return { target, stop: () => (stopped ??= target.client.close().finally(stopAll)) };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** An already running S3 endpoint: measured from outside, so no CPU or memory figures. */
export async function endpointTarget(endpoint: S3Endpoint): Promise<StartedTarget> {
  const target = await withBucket("endpoint", endpoint, () => []);
  return { target, stop: () => target.client.close() };
}
