/**
 * The gateway and six storage nodes as real processes: the AWS SDK with default settings,
 * presigned URLs through plain undici, degraded reads after SIGKILLing one and then two
 * nodes (a third kill must give a clean 503, never wrong bytes), and bitrot in a shard file
 * on disk.
 */
import { createHash } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SHARD_HEADER_BYTES } from "../../core/limits.js";
import { objectIdHex } from "../../placement/object-id.js";
import { startCluster, type TestCluster } from "../cluster-harness.js";
import { Prng, seedFromEnv } from "../prng.js";

const seed = seedFromEnv(0x5eed_c105);
let cluster: TestCluster;
let s3: S3Client;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 6, k: 4, m: 2 });
  s3 = new S3Client({
    region: cluster.region,
    endpoint: cluster.endpoint,
    forcePathStyle: true,
    credentials: cluster.credentials,
    maxAttempts: 1,
  });
}, 120_000);

afterAll(async () => {
  s3?.destroy();
  await cluster?.stop();
});

async function getBytes(key: string, range?: string): Promise<Buffer> {
  const output = await s3.send(new GetObjectCommand({ Bucket: "real", Key: key, ...(range === undefined ? {} : { Range: range }) }));
  return Buffer.from((await output.Body?.transformToByteArray()) ?? new Uint8Array());
}

const sha256 = (data: Buffer): string => createHash("sha256").update(data).digest("hex");

describe(`real processes: gateway + 6 storage nodes (seed ${seed})`, () => {
  const objects = new Map<string, Buffer>();

  it("stores and serves objects through the AWS SDK and presigned URLs", async () => {
    const prng = new Prng(seed);
    await s3.send(new CreateBucketCommand({ Bucket: "real" }));
    for (const size of [0, 1, 1000, 64 * 1024 + 1, 3 * 1024 * 1024 + 7, 9 * 1024 * 1024]) {
      const data = prng.bytes(size);
      objects.set(`object-${size}`, data);
      await s3.send(new PutObjectCommand({ Bucket: "real", Key: `object-${size}`, Body: data }));
      expect(sha256(await getBytes(`object-${size}`)), `size ${size}`).toBe(sha256(data));
    }
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: "real" }));
    expect(listed.Contents?.map((entry) => entry.Key).sort()).toEqual([...objects.keys()].sort());
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: "real", Key: "object-1000" }), { expiresIn: 120 });
    const response = await request(url);
    expect(response.statusCode).toBe(200);
    expect(Buffer.from(await response.body.arrayBuffer()).equals(objects.get("object-1000") ?? Buffer.alloc(0))).toBe(true);
    await s3.send(new PutObjectCommand({ Bucket: "real", Key: "gone", Body: "x" }));
    await s3.send(new DeleteObjectCommand({ Bucket: "real", Key: "gone" }));
    await expect(s3.send(new GetObjectCommand({ Bucket: "real", Key: "gone" }))).rejects.toMatchObject({ name: "NoSuchKey" });
  });

  it("returns the right bytes when a chunk of a shard file rots on disk", async () => {
    // Its own object: the kill test below may lose m other shards of the objects it reads.
    const key = "rotting";
    const data = new Prng(seed + 2).bytes(9 * 1024 * 1024);
    await s3.send(new PutObjectCommand({ Bucket: "real", Key: key, Body: data }));
    const id = objectIdHex("real", key);
    let flipped = 0;
    for (const node of cluster.nodes) {
      for (const dir of node.dirs) {
        const shardDir = join(dir, "shards", id.slice(0, 2), id);
        const files = await readdir(shardDir).catch(() => [] as string[]);
        // Rot the data shards 0 and 1 (two stripes each), the ones a healthy read uses.
        for (const file of files.filter((name) => /\.0\.[01]$/.test(name))) {
          const path = join(shardDir, file);
          const bytes = await readFile(path);
          for (const offset of [SHARD_HEADER_BYTES + 10, bytes.length - 100]) bytes[offset] = (bytes[offset] ?? 0) ^ 0x5a;
          await writeFile(path, bytes);
          flipped += 1;
        }
      }
    }
    expect(flipped).toBe(2);
    expect(sha256(await getBytes(key))).toBe(sha256(data));
    expect(sha256(await getBytes(key, "bytes=1000-5000000"))).toBe(sha256(data.subarray(1000, 5_000_001)));
  });

  it("reads every object byte-identically after SIGKILL of one, then two nodes; a third gives 503", async () => {
    const prng = new Prng(seed + 1);
    const order = [...cluster.nodes];
    for (let index = order.length - 1; index > 0; index--) {
      const other = prng.int(0, index);
      [order[index], order[other]] = [order[other] as (typeof order)[number], order[index] as (typeof order)[number]];
    }
    for (const victim of order.slice(0, 2)) {
      victim.kill("SIGKILL");
      await victim.exited;
      for (const [key, data] of objects) {
        expect(sha256(await getBytes(key)), `${key} after killing ${victim.id}`).toBe(sha256(data));
        if (data.length > 10) {
          const start = prng.int(0, data.length - 2);
          const end = prng.int(start, data.length - 1);
          expect(sha256(await getBytes(key, `bytes=${start}-${end}`)), `${key} [${start}, ${end}]`).toBe(sha256(data.subarray(start, end + 1)));
        }
      }
    }
    const third = order[2];
    third?.kill("SIGKILL");
    await third?.exited;
    let status: number | undefined;
    let name: string | undefined;
    try {
      await getBytes("object-3145735");
    } catch (error) {
      if (!(error instanceof S3ServiceException)) throw error;
      status = error.$metadata.httpStatusCode;
      name = error.name;
    }
    expect(status).toBe(503);
    expect(name).toBe("ServiceUnavailable");
  });
});
