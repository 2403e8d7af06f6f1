/**
 * Shared pieces of the node-kill durability suite (test/durability/*.test.ts): a real
 * cluster (test/cluster-harness.ts) whose gateway runs the healer with short timeouts, an S3
 * client, the admin client, direct clients of every node for independent checks
 * (test/healer/inspect.ts), object bodies from a seeded PRNG (only their SHA-256 is kept),
 * and the figures each scenario prints.
 *
 * Scale: TESSERA_DURABILITY=full runs the issue's sizes (objects of 0 B to 20 MiB); the
 * default keeps the counts and caps sizes so the suite fits CI on two cores.
 */
import { createHash } from "node:crypto";
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { ClusterSecret } from "../../core/internal-auth.js";
import { HttpNodeClient } from "../../core/http-node-client.js";
import { AdminClient } from "../../gateway/healer/admin-client.js";
import { SMALL_COPIES_BYTES_DEFAULT } from "../../gateway/objects/small-objects.js";
import type { HealerStatus } from "../../gateway/healer/status.js";
import { applyEdit, readRawMap, writeRawMap } from "../../bin/map-edit.js";
import { startCluster, type ClusterOptions, type HarnessNode, type TestCluster } from "../cluster-harness.js";
import { inspectKey, type DiskHandle, type Redundancy } from "../healer/inspect.js";
import { Prng } from "../prng.js";

const KiB = 1024;
const MiB = 1024 * KiB;

export interface Scale {
  readonly name: "ci" | "full";
  /** Objects PUT by scenario 1 (the issue's number in both scales). */
  readonly objects: number;
  /** Largest object. The issue says 20 MiB; CI caps it so the suite runs in minutes on 2 cores. */
  readonly objectBytesMax: number;
  /** Objects of the smaller scenarios (3 to 7). */
  readonly smallObjects: number;
}

export const SCALE: Scale =
  process.env.TESSERA_DURABILITY === "full"
    ? { name: "full", objects: 300, objectBytesMax: 20 * MiB, smallObjects: 120 }
    : { name: "ci", objects: 300, objectBytesMax: 1 * MiB, smallObjects: 60 };

/**
 * Healer timings for the suite: probes every 500 ms, a node is suspect after 3 s without a
 * good probe and down after 6 s, so a scenario waits seconds, not the production minute.
 * Shorter ones flap on a loaded 2-core machine (the whole suite runs beside the scenario: a
 * probe of a healthy node can take over half a second), and a flapping "down" costs
 * rebuilds and moves back.
 */
export const HEAL_ENV: NodeJS.ProcessEnv = {
  TESSERA_HEAL_PROBE_INTERVAL_MS: "500",
  TESSERA_HEAL_PROBE_TIMEOUT_MS: "500",
  TESSERA_HEAL_SUSPECT_AFTER_MS: "3000",
  TESSERA_HEAL_DOWN_AFTER_MS: "6000",
  TESSERA_HEAL_REPAIR_POLL_MS: "500",
  TESSERA_HEAL_PARTIAL_GRACE_MS: "3000",
  TESSERA_HEAL_RETRY_MS: "1500",
  TESSERA_HEAL_CHECKPOINT_MS: "300",
};

/** How long a scenario waits for the healer to restore full redundancy before failing. */
export const HEAL_WAIT_MS = 180_000;
export const BUCKET = "durability";

export interface DurabilityCluster {
  readonly test: TestCluster;
  readonly s3: S3Client;
  readonly admin: AdminClient;
  /** Every disk of every node started so far, through a direct client. */
  disks(): DiskHandle[];
  /** Starts a fresh node, adds it to the map file (epoch + 1) and reloads the gateway. */
  addNodeToMap(): Promise<HarnessNode>;
  stop(): Promise<void>;
}

export async function startDurabilityCluster(options: ClusterOptions): Promise<DurabilityCluster> {
  const test = await startCluster({ ...options, env: { ...HEAL_ENV, ...options.env } });
  const secret = await ClusterSecret.fromFile(test.secretFile);
  const clients = new Map<string, HttpNodeClient>();
  const clientOf = (node: HarnessNode): HttpNodeClient => {
    let client = clients.get(node.id);
    if (client === undefined) {
      client = new HttpNodeClient({ nodeId: node.id, url: node.url, secret, headersTimeoutMs: 5_000, connectTimeoutMs: 2_000 });
      clients.set(node.id, client);
    }
    return client;
  };
  const s3 = new S3Client({ endpoint: test.endpoint, region: test.region, credentials: test.credentials, forcePathStyle: true, maxAttempts: 1 });
  const admin = new AdminClient({ endpoint: test.endpoint, credentials: test.credentials, region: test.region });
  return {
    test,
    s3,
    admin,
    disks: () => test.nodes.flatMap((node) => node.dirs.map((_, index) => ({ nodeId: node.id, diskId: `d${index}`, node: clientOf(node) }))),
    addNodeToMap: async () => {
      const node = await test.addNode();
      const raw = await readRawMap(test.mapFile);
      const disks = node.dirs.map((_, index) => ({ id: `d${index}`, weight: 1 }));
      await writeRawMap(test.mapFile, applyEdit(raw, { kind: "add-node", node: { id: node.id, url: node.url, disks } }, test.mapFile));
      await admin.reload();
      return node;
    },
    stop: async () => {
      s3.destroy();
      await Promise.all([...clients.values()].map((client) => client.close()));
      await test.stop();
    },
  };
}

export const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

export interface ObjectSpec {
  readonly key: string;
  readonly size: number;
  readonly sha: string;
}

/** A body from the PRNG: every size class appears (empty, copies, inline, one stripe, many). */
export function objectBody(prng: Prng, index: number, bytesMax: number): Buffer {
  const classes = [0, 1, 64 * KiB, 64 * KiB + 1, SMALL_COPIES_BYTES_DEFAULT, SMALL_COPIES_BYTES_DEFAULT + 1];
  const fixed = classes[index];
  if (fixed !== undefined) return prng.bytes(fixed);
  const roll = prng.next();
  const size = roll < 0.1 ? prng.int(0, SMALL_COPIES_BYTES_DEFAULT) : roll < 0.2 ? prng.int(0, 64 * KiB) : roll < 0.7 ? prng.int(64 * KiB, Math.min(bytesMax, MiB)) : prng.int(0, bytesMax);
  return prng.bytes(size);
}

/** Concurrent PUTs when a scenario loads its objects (the issue's 4 clients). */
export const LOAD_CLIENTS = 4;

/**
 * PUTs `count` objects `object-0000`.. with bodies from the PRNG (drawn in order, so a seed
 * always gives the same objects), LOAD_CLIENTS at a time; returns each key's SHA-256.
 */
export async function loadObjects(s3: S3Client, prng: Prng, count: number, minBytes = 0): Promise<Map<string, { sha: string; size: number }>> {
  const bodies = Array.from({ length: count }, (_, index) => {
    const body = objectBody(prng, index, SCALE.objectBytesMax);
    return body.length >= minBytes ? body : prng.bytes(prng.int(minBytes, Math.max(minBytes, SCALE.objectBytesMax)));
  });
  const objects = new Map<string, { sha: string; size: number }>();
  let next = 0;
  const client = async (): Promise<void> => {
    for (let index = next++; index < count; index = next++) {
      const body = bodies[index] as Buffer;
      const key = `object-${String(index).padStart(4, "0")}`;
      await putBody(s3, key, body);
      objects.set(key, { sha: sha256(body), size: body.length });
      bodies[index] = Buffer.alloc(0);
    }
  };
  await Promise.all(Array.from({ length: LOAD_CLIENTS }, client));
  return new Map([...objects].sort(([a], [b]) => (a < b ? -1 : 1)));
}

export async function putBody(s3: S3Client, key: string, body: Buffer): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, ContentLength: body.length }));
}

/** The object's SHA-256, or undefined when it does not exist (404). Other errors throw. */
export async function getSha(s3: S3Client, key: string): Promise<string | undefined> {
  try {
    const response = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    const hash = createHash("sha256");
    for await (const piece of response.Body as AsyncIterable<Uint8Array>) hash.update(piece);
    return hash.digest("hex");
  } catch (error) {
    if ((error as { name?: string }).name === "NoSuchKey") return undefined;
    throw error;
  }
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = HEAL_WAIT_MS, pollMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError === undefined ? "" : ` (last error: ${String(lastError)})`}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/**
 * When the healer detected `nodeId` failing (suspect, or a disk failed) and when it declared it
 * down (its disks out), in epoch ms: from the node's own status, whatever the event history kept.
 */
export function detectionTimes(status: HealerStatus, nodeId: string, diskId?: string): { suspectAt?: number; downAt?: number } {
  const node = status.nodes.find((each) => each.nodeId === nodeId);
  if (diskId !== undefined) {
    const disk = node?.disks.find((each) => each.diskId === diskId);
    const failed = disk?.state === "failed" ? disk.since : status.events.find((event) => event.nodeId === nodeId && event.diskId === diskId && event.to === "failed")?.at;
    return failed === undefined ? {} : { suspectAt: failed, downAt: failed };
  }
  const suspectAt = node?.detectedAt ?? status.events.find((event) => event.nodeId === nodeId && event.to === "suspect")?.at;
  const downAt = node?.state === "down" ? node.since : status.events.find((event) => event.nodeId === nodeId && event.to === "down")?.at;
  return { ...(suspectAt === undefined ? {} : { suspectAt }), ...(downAt === undefined ? {} : { downAt }) };
}

/** Waits until the healer has nothing left to do for the current failures and map. */
export async function waitForHealed(admin: AdminClient, expectOut: readonly string[], timeoutMs = HEAL_WAIT_MS): Promise<HealerStatus> {
  let last: HealerStatus | undefined;
  try {
    return await waitFor(
      `the healer to finish (out: ${expectOut.join(", ") || "none"})`,
      async () => {
        const status = await admin.healStatus();
        last = status;
        const outMatches = JSON.stringify(status.outDisks) === JSON.stringify([...expectOut].sort());
        return outMatches && status.quiet && Object.keys(status.atRisk).every((spare) => Number(spare) >= status.ec.m) ? status : undefined;
      },
      timeoutMs,
      500,
    );
  } catch (error) {
    const summary = last === undefined ? "no status" : JSON.stringify({ state: last.state, quiet: last.quiet, outDisks: last.outDisks, job: last.job, atRisk: last.atRisk, queue: last.queue, history: last.history.slice(-5), recentFailures: last.recentFailures.slice(-5), nodes: last.nodes.map((node) => `${node.nodeId}:${node.state}`) });
    throw new Error(`${error instanceof Error ? error.message : String(error)}; last status: ${summary}`);
  }
}

/** Inspects every object; returns those short of full redundancy (with why). */
export async function unhealthyObjects(disks: readonly DiskHandle[], keys: Iterable<string>, up: (disk: DiskHandle) => boolean): Promise<Array<{ key: string; found: Redundancy }>> {
  const bad: Array<{ key: string; found: Redundancy }> = [];
  for (const key of keys) {
    const found = await inspectKey(disks, BUCKET, key, up);
    if (found.healthy !== found.width || found.olderVersions > 0) bad.push({ key, found });
  }
  return bad;
}

/** One line a CI log reader can grep: `DURABILITY scenario-N {...figures}`. */
export function report(scenario: string, figures: Record<string, unknown>): void {
  console.log(`DURABILITY ${scenario} ${JSON.stringify({ scale: SCALE.name, ...figures })}`);
}

export function megabytesPerSecond(bytes: number, ms: number): number {
  return ms <= 0 ? 0 : Math.round((bytes / 1e6 / (ms / 1000)) * 10) / 10;
}
