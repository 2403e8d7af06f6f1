/**
 * Conditional writes: PutObject and CompleteMultipartUpload with If-None-Match: * and
 * If-Match, as S3 answers them; the race of 20 clients putting the same absent key (exactly
 * one wins); compare-and-set with If-Match under contention; the lease lock's expiry and
 * fencing (docs/conditional-writes.md); and the node's lease table on its own. In-process
 * over six memory nodes; test/conditional-cluster.test.ts repeats the race on real processes.
 */
import type { AddressInfo } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isTesseraError } from "../../core/errors.js";
import type { ObjectRecord, StorageNode } from "../../core/storage-api.js";
import { Cluster } from "../../gateway/objects/cluster.js";
import { createGateway, type Gateway } from "../../gateway/server.js";
import { parseClusterMap } from "../../placement/cluster-map.js";
import { MemoryNode } from "../../storage-node/memory-node.js";
import { commitFenced } from "../../gateway/objects/conditional-commit.js";
import { withKeyLock } from "../../gateway/objects/lease-lock.js";
import { LEASE_TTL_MS_MAX, LEASES_PER_DISK_MAX, LeaseTable } from "../../storage-node/lease-table.js";
import { Prng, seedFromEnv } from "../prng.js";
import { bodyOf, ACCESS_KEY, REGION, SECRET_KEY, startInProcessCluster, type InProcessCluster } from "./in-process-cluster.js";

const seed = seedFromEnv(0x5eed_0c45);
const BUCKET = "conditional";
/** Writers racing for one key, as issue 5 asks. */
const RACERS = 20;
/**
 * Longest delay the latent nodes add to a call. Memory nodes answer at once, which would
 * serialise the racers' read-check-commit windows by accident; a few ms of seeded jitter per
 * call makes the windows overlap as they do over a network, so an unsafe commit would show.
 */
const NODE_LATENCY_MS_MAX = 4;
let cluster: InProcessCluster;
let s3: S3Client;

beforeAll(async () => {
  cluster = await startInProcessCluster();
  s3 = cluster.client();
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
});
afterAll(async () => {
  await cluster.stop();
});


async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (error) {
    if (error instanceof S3ServiceException) return `${error.name} ${error.$metadata.httpStatusCode}`;
    throw error;
  }
}

function put(client: S3Client, key: string, body: Buffer | string, condition: { IfNoneMatch?: string; IfMatch?: string } = {}): Promise<{ ETag?: string }> {
  return client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, ...condition }));
}

/** Every promise-returning call of `node` answers after a seeded delay; streams are left alone. */
function latent(node: StorageNode, prng: Prng): StorageNode {
  return new Proxy(node, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      if (property === "readShard" || property === "writeShard") return (value as (...a: unknown[]) => unknown).bind(target);
      return async (...args: unknown[]) => {
        await delay(prng.int(0, NODE_LATENCY_MS_MAX));
        return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      };
    },
  });
}

interface LatentCluster {
  readonly gateway: Gateway;
  client(): S3Client;
  stop(): Promise<void>;
}

async function startLatentCluster(prng: Prng): Promise<LatentCluster> {
  const map = parseClusterMap(
    { epoch: 1, ec: { k: 4, m: 2, blockSize: 1024 * 1024 }, nodes: Array.from({ length: 6 }, (_, index) => ({ id: `n${index + 1}`, url: `http://127.0.0.1:${21001 + index}`, disks: [{ id: "d0" }] })) },
    "latent test map",
  );
  const nodes = map.nodes.map((node) => latent(new MemoryNode({ nodeId: node.id, diskIds: ["d0"] }), prng));
  const gateway = await createGateway({
    cluster: new Cluster(map, new Map(nodes.map((node) => [node.nodeId, node]))),
    credentials: [{ accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY }],
    region: REGION,
    baseDomains: [],
    logger: pino({ level: process.env.DEBUG_LATENT === "1" ? "error" : "silent" }),
  });
  await gateway.app.listen({ host: "127.0.0.1", port: 0 });
  const endpoint = `http://127.0.0.1:${(gateway.app.server.address() as AddressInfo).port}`;
  const clients: S3Client[] = [];
  const client = (): S3Client => {
    const made = new S3Client({ region: REGION, endpoint, forcePathStyle: true, credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY }, maxAttempts: 1 });
    clients.push(made);
    return made;
  };
  return {
    gateway,
    client,
    stop: async () => {
      for (const made of clients) made.destroy();
      await gateway.close();
    },
  };
}

async function race(latentCluster: LatentCluster, key: string, bodies: readonly Buffer[], condition: { IfNoneMatch?: string; IfMatch?: string }): Promise<string[]> {
  const clients = bodies.map(() => latentCluster.client());
  return Promise.all(bodies.map((body, index) => outcome(put(clients[index] as S3Client, key, body, condition))));
}

describe(`conditional writes (seed ${seed})`, () => {
  it("If-None-Match: * creates only an absent key; a delete marker counts as absent", async () => {
    expect(await outcome(put(s3, "create-only", "first", { IfNoneMatch: "*" }))).toBe("ok");
    expect(await outcome(put(s3, "create-only", "second", { IfNoneMatch: "*" }))).toBe("PreconditionFailed 412");
    expect((await bodyOf(await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "create-only" })))).toString()).toBe("first");
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: "create-only" }));
    expect(await outcome(put(s3, "create-only", "third", { IfNoneMatch: "*" }))).toBe("ok");
    expect(await outcome(put(s3, "create-only", "x", { IfNoneMatch: '"abc"' }))).toBe("NotImplemented 501");
  });

  it("If-Match replaces only the version with that ETag; a missing key is NoSuchKey", async () => {
    const { ETag: first } = await put(s3, "replace-only", "one");
    expect(await outcome(put(s3, "replace-only", "two", { IfMatch: '"0123456789abcdef0123456789abcdef"' }))).toBe("PreconditionFailed 412");
    expect(await outcome(put(s3, "replace-only", "two", { IfMatch: first }))).toBe("ok");
    expect(await outcome(put(s3, "replace-only", "three", { IfMatch: first }))).toBe("PreconditionFailed 412");
    expect((await bodyOf(await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "replace-only" })))).toString()).toBe("two");
    expect(await outcome(put(s3, "never-written", "x", { IfMatch: first }))).toBe("NoSuchKey 404");
  });

  it(`${RACERS} clients put-if-absent one key at once (nodes with latency): exactly one wins, the rest get 412, the object is the winner's`, async () => {
    const prng = new Prng(seed);
    const latentCluster = await startLatentCluster(prng);
    try {
      const client = latentCluster.client();
      await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
      for (const [round, size] of [100, 200 * 1024, 100, 200 * 1024].entries()) {
        const key = `race-${round}`;
        const bodies = Array.from({ length: RACERS }, () => prng.bytes(size));
        const results = await race(latentCluster, key, bodies, { IfNoneMatch: "*" });
        const winners = results.flatMap((result, index) => (result === "ok" ? [index] : []));
        expect(winners, `round ${round} seed ${seed}: ${results.join(", ")}`).toHaveLength(1);
        expect(results.filter((result) => result === "PreconditionFailed 412"), `round ${round} seed ${seed}: ${results.join(", ")}`).toHaveLength(RACERS - 1);
        const stored = await bodyOf(await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key })));
        expect(stored.equals(bodies[winners[0] as number] as Buffer), `round ${round} seed ${seed}`).toBe(true);
      }
    } finally {
      await latentCluster.stop();
    }
  });

  it(`${RACERS} clients compare-and-set one key with If-Match of the same version: exactly one wins`, async () => {
    const prng = new Prng(seed + 1);
    const latentCluster = await startLatentCluster(prng);
    try {
      const client = latentCluster.client();
      await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
      const { ETag: base } = await put(client, "cas", prng.bytes(1000));
      const bodies = Array.from({ length: RACERS }, () => prng.bytes(1000));
      const results = await race(latentCluster, "cas", bodies, { IfMatch: base as string });
      const winners = results.flatMap((result, index) => (result === "ok" ? [index] : []));
      expect(winners, results.join(", ")).toHaveLength(1);
      const stored = await bodyOf(await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: "cas" })));
      expect(stored.equals(bodies[winners[0] as number] as Buffer)).toBe(true);
    } finally {
      await latentCluster.stop();
    }
  });

  it("CompleteMultipartUpload honours If-None-Match and If-Match; a refused completion leaves the upload open", async () => {
    const prng = new Prng(seed + 2);
    const { ETag: existing } = await put(s3, "mpu-target", "already here");
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: "mpu-target" }));
    const part = prng.bytes(4096);
    const { ETag } = await s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: "mpu-target", UploadId, PartNumber: 1, Body: part }));
    const complete = (condition: { IfNoneMatch?: string; IfMatch?: string }): Promise<unknown> =>
      s3.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: "mpu-target", UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag }] }, ...condition }));
    expect(await outcome(complete({ IfNoneMatch: "*" }))).toBe("PreconditionFailed 412");
    expect(await outcome(complete({ IfMatch: '"ffffffffffffffffffffffffffffffff"' }))).toBe("PreconditionFailed 412");
    expect(await outcome(complete({ IfMatch: existing as string }))).toBe("ok");
    expect((await bodyOf(await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "mpu-target" })))).equals(part)).toBe(true);
  });

  it("a dead writer's lease lapses: the next conditional write waits it out and succeeds", async () => {
    const placement = cluster.gateway.store.cluster.place(BUCKET, "stuck");
    const holder = "ab".repeat(16);
    for (const location of placement.locations) {
      const node = cluster.nodes.find((candidate) => candidate.nodeId === location.nodeId);
      const grant = await node?.acquireLease(location.diskId, { bucket: BUCKET, key: "stuck", holder, ttlMs: 300 });
      expect(grant?.granted).toBe(true);
    }
    const started = Date.now();
    expect(await outcome(put(s3, "stuck", "after the lapse", { IfNoneMatch: "*" }))).toBe("ok");
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it("a lock held past its wait is ConditionalRequestConflict; a writer whose lease was taken over cannot commit", async () => {
    const store = cluster.gateway.store;
    const placement = store.cluster.place(BUCKET, "fenced").locations;
    const blocked = withKeyLock(store.cluster, BUCKET, "fenced", placement, async () => {
      const inner = await withKeyLock(store.cluster, BUCKET, "fenced", placement, async () => "never", { waitMs: 100 }).catch((error: unknown) => error);
      expect(isTesseraError(inner, "ERR_VERSION_CONFLICT") && inner.details.kind).toBe("conditional-conflict");
    });
    await blocked;
    const record: ObjectRecord = {
      bucket: BUCKET,
      key: "fenced",
      versionId: "0".repeat(31) + "1",
      revision: 1,
      objectId: placement.length > 0 ? store.cluster.place(BUCKET, "fenced").objectIdHex : "",
      deleteMarker: true,
      size: 0,
      etag: "",
      lastModified: Date.now(),
      userMetadata: {},
      systemMetadata: {},
      ec: { k: 4, m: 2, blockBytes: 1024 * 1024, checksumAlgorithm: 1 },
      placement,
      parts: [],
    };
    const stale = await withKeyLock(store.cluster, BUCKET, "fenced", placement, async (lock) => {
      await delay(80);
      // The lease lapsed; another writer takes the key and holds it.
      const thief = withKeyLock(store.cluster, BUCKET, "fenced", placement, () => delay(200));
      await delay(20);
      const refused = await commitFenced(store.cluster, lock, placement, record).catch((error: unknown) => error);
      await thief;
      return refused;
    }, { ttlMs: 50 });
    expect(isTesseraError(stale, "ERR_VERSION_CONFLICT") && stale.details.kind).toBe("conditional-conflict");
    for (const node of cluster.nodes) for (const disk of (await node.health()).disks) expect(await node.getRecords(disk.diskId, BUCKET, "fenced")).toEqual([]);
  });
});

describe("LeaseTable (one disk's leases)", () => {
  const fresh = (): { table: LeaseTable; clock: { now: number } } => {
    const clock = { now: 1_000 };
    return { table: new LeaseTable(() => clock.now), clock };
  };
  const holderA = "a".repeat(32);
  const holderB = "b".repeat(32);
  const request = (holder: string, ttlMs = 100): { bucket: string; key: string; holder: string; ttlMs: number } => ({ bucket: "b1", key: "k", holder, ttlMs });

  it("grants one holder at a time until expiry, each grant with a higher token", async () => {
    const { table, clock } = fresh();
    const first = table.acquire(request(holderA));
    expect(first.granted).toBe(true);
    expect(table.acquire(request(holderB))).toEqual({ granted: false, retryAfterMs: 100 });
    clock.now += 100;
    const second = table.acquire(request(holderB));
    expect(second.granted && first.granted && second.token > first.token).toBe(true);
  });

  it("accepts a fenced write only under the current grant, and grants nothing while one runs", async () => {
    const { table, clock } = fresh();
    const grant = table.acquire(request(holderA));
    if (!grant.granted) throw new Error("granted");
    const fence = { holder: holderA, token: grant.token };
    let release: () => void = () => {};
    const writing = table.fenced("b1", "k", fence, () => new Promise<string>((resolve) => (release = () => resolve("stored"))));
    clock.now += 1_000;
    expect(table.acquire(request(holderB)).granted).toBe(false);
    release();
    expect(await writing).toBe("stored");
    // Expired but not taken over: still this writer's key. Taken over: refused.
    expect(await table.fenced("b1", "k", fence, async () => "again")).toBe("again");
    expect(table.acquire(request(holderB)).granted).toBe(true);
    const refused = await table.fenced("b1", "k", fence, async () => "late").catch((error: unknown) => error);
    expect(isTesseraError(refused, "ERR_VERSION_CONFLICT") && refused.details.kind).toBe("fenced");
    expect(table.release("b1", "k", fence)).toBe(false);
  });

  it("a new table (a restarted node) refuses every fence; bad arguments name the field", async () => {
    const { table } = fresh();
    const refused = await table.fenced("b1", "k", { holder: holderA, token: 1 }, async () => "x").catch((error: unknown) => error);
    expect(isTesseraError(refused, "ERR_VERSION_CONFLICT")).toBe(true);
    expect(() => table.acquire(request(holderA, LEASE_TTL_MS_MAX + 1))).toThrow(/ttlMs/);
    expect(() => table.acquire(request("not-hex"))).toThrow(/holder/);
    expect(() => table.acquire({ ...request(holderA), key: "" })).toThrow(/key/);
  });

  it(`prunes expired leases when full (${LEASES_PER_DISK_MAX}), and refuses when every lease is live`, () => {
    const { table, clock } = fresh();
    for (let i = 0; i < LEASES_PER_DISK_MAX; i++) table.acquire({ bucket: "b1", key: `k${i}`, holder: holderA, ttlMs: 10 });
    expect(table.acquire({ bucket: "b1", key: "one-more", holder: holderA, ttlMs: 10 }).granted).toBe(false);
    clock.now += 10;
    expect(table.acquire({ bucket: "b1", key: "one-more", holder: holderA, ttlMs: 10 }).granted).toBe(true);
    expect(table.size).toBe(1);
  });
});
