/**
 * The S3 API through the real AWS SDK (default settings: checksums, aws-chunked uploads)
 * against a gateway over six in-memory nodes: every implemented operation, its error
 * cases, and degraded reads with nodes down.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketAclCommand,
  GetBucketLocationCommand,
  GetBucketVersioningCommand,
  GetObjectAclCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  GetBucketPolicyCommand,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sha256 } from "@aws-crypto/sha256-js";
import { HttpRequest } from "@smithy/core/protocols";
import { SignatureV4 } from "@smithy/signature-v4";
import { Prng, seedFromEnv } from "../prng.js";
import { bodyOf, s3Error, ACCESS_KEY, REGION, SECRET_KEY, startInProcessCluster, type InProcessCluster } from "./in-process-cluster.js";

const seed = seedFromEnv(0x5eed_5300);
let cluster: InProcessCluster;
let s3: S3Client;

beforeAll(async () => {
  cluster = await startInProcessCluster();
  s3 = cluster.client();
});
afterAll(async () => {
  await cluster.stop();
});



/** Sends a request signed by the real AWS signer, for the cases an SDK client never produces. */
async function signedRaw(spec: { method: string; path: string; query?: Record<string, string>; headers?: Record<string, string>; body?: string }, options: { accessKey?: string; time?: Date } = {}): Promise<{ status: number; text: string }> {
  const url = new URL(cluster.endpoint);
  const signer = new SignatureV4({ credentials: { accessKeyId: options.accessKey ?? ACCESS_KEY, secretAccessKey: SECRET_KEY }, region: REGION, service: "s3", sha256: Sha256, uriEscapePath: false });
  const unsigned = new HttpRequest({ method: spec.method, protocol: "http:", hostname: url.hostname, port: Number(url.port), path: spec.path, query: spec.query ?? {}, headers: { host: url.host, ...spec.headers }, body: spec.body });
  const signed = (await signer.sign(unsigned, { signingDate: options.time ?? new Date() })) as HttpRequest;
  const query = new URLSearchParams(signed.query as Record<string, string>).toString();
  const response = await request(`${cluster.endpoint}${signed.path}${query === "" ? "" : `?${query}`}`, { method: spec.method as "POST", headers: signed.headers, body: spec.body ?? null });
  return { status: response.statusCode, text: await response.body.text() };
}

const md5 = (data: Buffer): string => `"${createHash("md5").update(data).digest("hex")}"`;

describe(`S3 API over erasure-coded in-memory nodes (seed ${seed})`, () => {
  it("creates, finds, describes and lists buckets", async () => {
    await s3.send(new CreateBucketCommand({ Bucket: "alpha" }));
    await s3.send(new CreateBucketCommand({ Bucket: "beta" }));
    await s3.send(new HeadBucketCommand({ Bucket: "alpha" }));
    const listed = await s3.send(new ListBucketsCommand({}));
    expect(listed.Buckets?.map((bucket) => bucket.Name)).toEqual(["alpha", "beta"]);
    expect((await s3.send(new GetBucketLocationCommand({ Bucket: "alpha" }))).LocationConstraint).toBeUndefined();
    expect((await s3.send(new GetBucketVersioningCommand({ Bucket: "alpha" }))).Status).toBeUndefined();
    expect((await s3.send(new GetBucketAclCommand({ Bucket: "alpha" }))).Grants?.[0]?.Permission).toBe("FULL_CONTROL");
    expect(await s3Error(s3.send(new CreateBucketCommand({ Bucket: "alpha" })))).toEqual({ name: "BucketAlreadyOwnedByYou", status: 409 });
    expect(await s3Error(s3.send(new HeadBucketCommand({ Bucket: "missing" })))).toMatchObject({ status: 404 });
    expect(await s3Error(s3.send(new CreateBucketCommand({ Bucket: "Bad_Name" })))).toEqual({ name: "InvalidBucketName", status: 400 });
    expect(await s3Error(s3.send(new GetBucketPolicyCommand({ Bucket: "alpha" })))).toEqual({ name: "NotImplemented", status: 501 });
  });

  it("round-trips objects of every size class byte for byte, with metadata", async () => {
    const prng = new Prng(seed);
    for (const size of [0, 1, 64 * 1024, 64 * 1024 + 1, 1024 * 1024, 5 * 1024 * 1024 + 3]) {
      const data = prng.bytes(size);
      const key = `sizes/${size}.bin`;
      const put = await s3.send(
        new PutObjectCommand({
          Bucket: "alpha",
          Key: key,
          Body: data,
          ContentType: "application/x-test",
          Metadata: { color: "blue", "seed-value": String(seed) },
          CacheControl: "max-age=60",
          ContentDisposition: "attachment",
        }),
      );
      expect(put.ETag, `size ${size}`).toBe(md5(data));
      const got = await s3.send(new GetObjectCommand({ Bucket: "alpha", Key: key }));
      expect((await bodyOf(got)).equals(data), `size ${size} seed ${seed}`).toBe(true);
      expect(got.ContentType).toBe("application/x-test");
      expect(got.Metadata).toEqual({ color: "blue", "seed-value": String(seed) });
      expect(got.CacheControl).toBe("max-age=60");
      expect(got.ContentDisposition).toBe("attachment");
      const head = await s3.send(new HeadObjectCommand({ Bucket: "alpha", Key: key }));
      expect(head.ContentLength).toBe(size);
      expect(head.ETag).toBe(md5(data));
    }
  });

  it("streams an upload of unknown chunking (aws-chunked with a trailing checksum)", async () => {
    const prng = new Prng(seed + 1);
    const data = prng.bytes(3 * 1024 * 1024 + 17);
    const body = Readable.from((function* () {
      for (let at = 0; at < data.length; at += 100_000) yield data.subarray(at, at + 100_000);
    })());
    await s3.send(new PutObjectCommand({ Bucket: "alpha", Key: "streamed", Body: body, ContentLength: data.length }));
    const got = await s3.send(new GetObjectCommand({ Bucket: "alpha", Key: "streamed", ChecksumMode: "ENABLED" }));
    expect((await bodyOf(got)).equals(data)).toBe(true);
    expect(got.ChecksumCRC32).toBeDefined();
  });

  it("serves byte ranges, and 416 for one past the end", async () => {
    const prng = new Prng(seed + 2);
    const data = prng.bytes(2 * 1024 * 1024 + 5);
    await s3.send(new PutObjectCommand({ Bucket: "alpha", Key: "ranged", Body: data }));
    const size = data.length;
    const cases: [string, number, number][] = [["bytes=0-0", 0, 1], ["bytes=100-200", 100, 201], ["bytes=1048570-1048600", 1048570, 1048601], [`bytes=${size - 10}-`, size - 10, size], ["bytes=-7", size - 7, size], [`bytes=5-${size + 100}`, 5, size]];
    for (const [range, start, end] of cases) {
      const got = await s3.send(new GetObjectCommand({ Bucket: "alpha", Key: "ranged", Range: range }));
      expect(got.ContentRange, range).toBe(`bytes ${start}-${end - 1}/${size}`);
      expect((await bodyOf(got)).equals(data.subarray(start, end)), range).toBe(true);
    }
    expect(await s3Error(s3.send(new GetObjectCommand({ Bucket: "alpha", Key: "ranged", Range: `bytes=${size}-` })))).toEqual({ name: "InvalidRange", status: 416 });
  });

  it("answers conditional GETs with 304 and 412", async () => {
    const put = await s3.send(new PutObjectCommand({ Bucket: "alpha", Key: "conditional", Body: "hello" }));
    expect(await s3Error(s3.send(new GetObjectCommand({ Bucket: "alpha", Key: "conditional", IfNoneMatch: put.ETag })))).toMatchObject({ status: 304 });
    expect(await s3Error(s3.send(new GetObjectCommand({ Bucket: "alpha", Key: "conditional", IfMatch: '"0000"' })))).toEqual({ name: "PreconditionFailed", status: 412 });
    const got = await s3.send(new GetObjectCommand({ Bucket: "alpha", Key: "conditional", IfMatch: put.ETag }));
    expect((await bodyOf(got)).toString()).toBe("hello");
  });

  it("overwrites, deletes, and reports missing keys and buckets", async () => {
    await s3.send(new PutObjectCommand({ Bucket: "alpha", Key: "versions", Body: "one" }));
    await s3.send(new PutObjectCommand({ Bucket: "alpha", Key: "versions", Body: "two" }));
    expect((await bodyOf(await s3.send(new GetObjectCommand({ Bucket: "alpha", Key: "versions" })))).toString()).toBe("two");
    await s3.send(new DeleteObjectCommand({ Bucket: "alpha", Key: "versions" }));
    expect(await s3Error(s3.send(new GetObjectCommand({ Bucket: "alpha", Key: "versions" })))).toEqual({ name: "NoSuchKey", status: 404 });
    expect(await s3Error(s3.send(new GetObjectCommand({ Bucket: "nobucket", Key: "x" })))).toEqual({ name: "NoSuchBucket", status: 404 });
    expect(await s3Error(s3.send(new PutObjectCommand({ Bucket: "nobucket", Key: "x", Body: "x" })))).toEqual({ name: "NoSuchBucket", status: 404 });
    await s3.send(new DeleteObjectCommand({ Bucket: "alpha", Key: "never-existed" }));
    expect((await s3.send(new GetObjectAclCommand({ Bucket: "alpha", Key: "conditional" }))).Grants?.[0]?.Permission).toBe("FULL_CONTROL");
  });

  it("refuses bad digests, oversize keys and oversize metadata, storing nothing", async () => {
    const badMd5 = Buffer.alloc(16).toString("base64");
    expect(await s3Error(s3.send(new PutObjectCommand({ Bucket: "alpha", Key: "bad-md5", Body: "data", ContentMD5: badMd5 })))).toEqual({ name: "BadDigest", status: 400 });
    expect(await s3Error(s3.send(new HeadObjectCommand({ Bucket: "alpha", Key: "bad-md5" })))).toMatchObject({ status: 404 });
    expect(await s3Error(s3.send(new PutObjectCommand({ Bucket: "alpha", Key: "k".repeat(1025), Body: "x" })))).toEqual({ name: "KeyTooLongError", status: 400 });
    expect(await s3Error(s3.send(new PutObjectCommand({ Bucket: "alpha", Key: "meta", Body: "x", Metadata: { big: "v".repeat(2100) } })))).toEqual({ name: "MetadataTooLarge", status: 400 });
    expect(await s3Error(cluster.client({ secret: "wrong-secret" }).send(new ListBucketsCommand({})))).toEqual({ name: "SignatureDoesNotMatch", status: 403 });
  });

  it("answers malformed XML, unknown keys, skewed clocks, expired URLs and lying hashes with S3's errors", async () => {
    const malformed = await signedRaw({ method: "POST", path: "/alpha", query: { delete: "" }, headers: { "content-type": "application/xml" }, body: "<Delete><Object><Key>x</Key></Object" });
    expect(malformed.status).toBe(400);
    expect(malformed.text).toContain("<Code>MalformedXML</Code>");
    const unknown = await signedRaw({ method: "GET", path: "/" }, { accessKey: "NOSUCHKEY" });
    expect(unknown.status).toBe(403);
    expect(unknown.text).toContain("<Code>InvalidAccessKeyId</Code>");
    const skewed = await signedRaw({ method: "GET", path: "/" }, { time: new Date(Date.now() - 20 * 60 * 1000) });
    expect(skewed.status).toBe(403);
    expect(skewed.text).toContain("<Code>RequestTimeTooSkewed</Code>");
    const lying = await signedRaw({ method: "PUT", path: "/alpha/lying", headers: { "x-amz-content-sha256": "0".repeat(64) }, body: "the body" });
    expect(lying.status).toBe(400);
    expect(lying.text).toContain("<Code>XAmzContentSHA256Mismatch</Code>");
    expect(await s3Error(s3.send(new HeadObjectCommand({ Bucket: "alpha", Key: "lying" })))).toMatchObject({ status: 404 });
    const expiredUrl = await getSignedUrl(s3, new GetObjectCommand({ Bucket: "alpha", Key: "conditional" }), { expiresIn: 1, signingDate: new Date(Date.now() - 60_000) });
    const expired = await request(expiredUrl);
    expect(expired.statusCode).toBe(403);
    expect(await expired.body.text()).toContain("Request has expired");
  });

  it("lists with prefix, delimiter, pagination, start-after and v1 markers", async () => {
    await s3.send(new CreateBucketCommand({ Bucket: "listing" }));
    const keys = ["a.txt", "dir/one", "dir/two", "dir/sub/three", "e.txt", "f/x", "z"];
    for (const key of keys) await s3.send(new PutObjectCommand({ Bucket: "listing", Key: key, Body: key }));
    const all = await s3.send(new ListObjectsV2Command({ Bucket: "listing" }));
    expect(all.Contents?.map((entry) => entry.Key)).toEqual([...keys].sort());
    expect(all.KeyCount).toBe(keys.length);
    const rolled = await s3.send(new ListObjectsV2Command({ Bucket: "listing", Delimiter: "/" }));
    expect(rolled.Contents?.map((entry) => entry.Key)).toEqual(["a.txt", "e.txt", "z"]);
    expect(rolled.CommonPrefixes?.map((prefix) => prefix.Prefix)).toEqual(["dir/", "f/"]);
    const inDir = await s3.send(new ListObjectsV2Command({ Bucket: "listing", Prefix: "dir/", Delimiter: "/" }));
    expect(inDir.Contents?.map((entry) => entry.Key)).toEqual(["dir/one", "dir/two"]);
    expect(inDir.CommonPrefixes?.map((prefix) => prefix.Prefix)).toEqual(["dir/sub/"]);
    const seen: string[] = [];
    let token: string | undefined;
    for (let page = 0; page < 10; page++) {
      const result = await s3.send(new ListObjectsV2Command({ Bucket: "listing", MaxKeys: 2, ContinuationToken: token }));
      seen.push(...(result.Contents ?? []).map((entry) => entry.Key ?? ""));
      token = result.NextContinuationToken;
      expect(result.IsTruncated).toBe(token !== undefined);
      if (token === undefined) break;
    }
    expect(seen).toEqual([...keys].sort());
    const after = await s3.send(new ListObjectsV2Command({ Bucket: "listing", StartAfter: "dir/two" }));
    expect(after.Contents?.map((entry) => entry.Key)).toEqual(["e.txt", "f/x", "z"]);
    const v1 = await s3.send(new ListObjectsCommand({ Bucket: "listing", Marker: "e.txt", MaxKeys: 1 }));
    expect(v1.Contents?.map((entry) => entry.Key)).toEqual(["f/x"]);
    expect(v1.IsTruncated).toBe(true);
  });

  it("deletes in batches (quiet and verbose) and refuses to delete a non-empty bucket", async () => {
    await s3.send(new CreateBucketCommand({ Bucket: "batch" }));
    for (let index = 0; index < 5; index++) await s3.send(new PutObjectCommand({ Bucket: "batch", Key: `k${index}`, Body: "x" }));
    expect(await s3Error(s3.send(new DeleteBucketCommand({ Bucket: "batch" })))).toEqual({ name: "BucketNotEmpty", status: 409 });
    const verbose = await s3.send(new DeleteObjectsCommand({ Bucket: "batch", Delete: { Objects: [{ Key: "k0" }, { Key: "k1" }, { Key: "absent" }] } }));
    expect(verbose.Deleted?.map((entry) => entry.Key)).toEqual(["k0", "k1", "absent"]);
    const quiet = await s3.send(new DeleteObjectsCommand({ Bucket: "batch", Delete: { Quiet: true, Objects: [{ Key: "k2" }, { Key: "k3" }, { Key: "k4" }] } }));
    expect(quiet.Deleted ?? []).toEqual([]);
    expect((await s3.send(new ListObjectsV2Command({ Bucket: "batch" }))).KeyCount).toBe(0);
    await s3.send(new DeleteBucketCommand({ Bucket: "batch" }));
    expect(await s3Error(s3.send(new HeadBucketCommand({ Bucket: "batch" })))).toMatchObject({ status: 404 });
  });

  it("serves presigned GETs and PUTs to a plain HTTP client", async () => {
    const putUrl = await getSignedUrl(s3, new PutObjectCommand({ Bucket: "alpha", Key: "presigned" }), { expiresIn: 60 });
    const put = await request(putUrl, { method: "PUT", body: "via presigned url" });
    await put.body.text();
    expect(put.statusCode).toBe(200);
    const getUrl = await getSignedUrl(s3, new GetObjectCommand({ Bucket: "alpha", Key: "presigned" }), { expiresIn: 60 });
    const got = await request(getUrl);
    expect(got.statusCode).toBe(200);
    expect(await got.body.text()).toBe("via presigned url");
    const unsigned = await request(`${cluster.endpoint}/alpha/presigned`);
    expect(unsigned.statusCode).toBe(403);
    expect(await unsigned.body.text()).toContain("<Code>AccessDenied</Code>");
  });

  it("reads every object byte-identically with one and two nodes down, and fails cleanly with three", async () => {
    const prng = new Prng(seed + 3);
    const objects = new Map<string, Buffer>();
    await s3.send(new CreateBucketCommand({ Bucket: "degraded" }));
    for (const size of [10, 70_000, 1_500_000, 3 * 1024 * 1024 + 9]) {
      const data = prng.bytes(size);
      objects.set(`obj-${size}`, data);
      await s3.send(new PutObjectCommand({ Bucket: "degraded", Key: `obj-${size}`, Body: data }));
    }
    const down: number[] = [];
    try {
      for (const victim of [prng.int(0, 2), prng.int(3, 5)]) {
        cluster.nodes[victim]!.down = true;
        down.push(victim);
        for (const [key, data] of objects) {
          const got = await bodyOf(await s3.send(new GetObjectCommand({ Bucket: "degraded", Key: key })));
          expect(got.equals(data), `${key} with nodes ${down.join(",")} down, seed ${seed}`).toBe(true);
          const start = Math.floor(data.length / 3);
          const ranged = await bodyOf(await s3.send(new GetObjectCommand({ Bucket: "degraded", Key: key, Range: `bytes=${start}-` })));
          expect(ranged.equals(data.subarray(start)), `${key} range`).toBe(true);
        }
      }
      const third = [0, 1, 2, 3, 4, 5].find((index) => !down.includes(index)) ?? 0;
      cluster.nodes[third]!.down = true;
      down.push(third);
      expect(await s3Error(s3.send(new GetObjectCommand({ Bucket: "degraded", Key: "obj-1500000" })))).toEqual({ name: "ServiceUnavailable", status: 503 });
    } finally {
      for (const index of down) cluster.nodes[index]!.down = false;
    }
    // Every object read while its shards were unreachable is on the durable repair list.
    await cluster.gateway.repairs.settle();
    const queued = (await cluster.gateway.repairs.list()).filter((entry) => entry.bucket === "degraded").map((entry) => entry.key);
    expect(queued.sort()).toEqual([...objects.keys()].sort());
  });
});
