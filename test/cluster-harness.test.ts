/**
 * The cluster harness itself: a real 4+2 cluster on free ports answers S3 through the SDK,
 * a killed node and the gateway come back on their old ports, and stop() leaves no process
 * and no directory behind.
 */
import { existsSync } from "node:fs";
import { CreateBucketCommand, GetObjectCommand, ListBucketsCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SHUTDOWN_DEADLINE_MS } from "../gateway/main.js";
import { startCluster, type TestCluster } from "./cluster-harness.js";
import { Prng, seedFromEnv } from "./prng.js";

const prng = new Prng(seedFromEnv(0x7e55e7a));

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe(`cluster harness (seed ${prng.seed})`, () => {
  let cluster: TestCluster;
  let s3: S3Client;

  beforeAll(async () => {
    cluster = await startCluster({ nodes: 6, k: 4, m: 2 });
    s3 = new S3Client({ endpoint: cluster.endpoint, region: cluster.region, credentials: cluster.credentials, forcePathStyle: true });
  });

  afterAll(async () => {
    s3?.destroy();
    await cluster?.stop();
  });

  it("starts six nodes and a gateway on distinct ports, with a map naming them", () => {
    const ports = [cluster.gateway.port, ...cluster.nodes.map((node) => node.port)];
    expect(new Set(ports).size).toBe(7);
    expect(cluster.map.nodes.map((node) => node.url)).toEqual(cluster.nodes.map((node) => node.url));
    expect(cluster.endpoint).toBe(`http://127.0.0.1:${cluster.gateway.port}`);
    expect(cluster.node("n3").dirs).toHaveLength(1);
  });

  it("serves S3: a bucket and an object round-trip through the SDK", async () => {
    const body = prng.bytes(prng.int(1, 3 * 1024 * 1024));
    await s3.send(new CreateBucketCommand({ Bucket: "harness" }));
    await s3.send(new PutObjectCommand({ Bucket: "harness", Key: "object", Body: body }));
    const got = await s3.send(new GetObjectCommand({ Bucket: "harness", Key: "object" }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(body)).toBe(true);
    const listing = await s3.send(new ListBucketsCommand({}));
    expect(listing.Buckets?.map((bucket) => bucket.Name)).toEqual(["harness"]);
  });

  it("restarts a SIGKILLed node and the gateway on their old ports", async () => {
    const node = cluster.node("n2");
    const { port, pid } = node;
    node.kill("SIGKILL");
    expect((await node.exited).signal).toBe("SIGKILL");
    await node.restart();
    expect(node.port).toBe(port);
    expect(node.pid).not.toBe(pid);
    const gatewayPort = cluster.gateway.port;
    await cluster.gateway.restart();
    expect(cluster.gateway.port).toBe(gatewayPort);
    const listing = await s3.send(new ListBucketsCommand({}));
    expect(listing.Buckets?.map((bucket) => bucket.Name)).toEqual(["harness"]);
  });

  it("a gateway that has hashed bodies in its MD5 worker still exits 0 on SIGTERM, promptly", async () => {
    // Over MD5_BATCH_BYTES, so the body is hashed in the worker thread (md5-offload.ts).
    await s3.send(new PutObjectCommand({ Bucket: "harness", Key: "hashed-in-worker", Body: prng.bytes(3 * 1024 * 1024) }));
    const started = Date.now();
    cluster.gateway.kill("SIGTERM");
    const status = await cluster.gateway.exited;
    expect(status).toEqual({ code: 0, signal: null });
    expect(Date.now() - started).toBeLessThan(SHUTDOWN_DEADLINE_MS);
    await cluster.gateway.restart();
    const listing = await s3.send(new ListBucketsCommand({}));
    expect(listing.Buckets?.map((bucket) => bucket.Name)).toEqual(["harness"]);
  });

  it("stop() kills every process and removes the directory", async () => {
    const pids = [cluster.gateway.pid, ...cluster.nodes.map((node) => node.pid)];
    expect(pids.every(isAlive)).toBe(true);
    await cluster.stop();
    expect(pids.filter(isAlive)).toEqual([]);
    expect(existsSync(cluster.root)).toBe(false);
  });
});
