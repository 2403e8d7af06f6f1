/**
 * Multipart uploads through the real AWS SDK against a gateway over six in-memory nodes:
 * the whole life of an upload, reads across part boundaries, GET/HEAD by part number,
 * re-uploaded and concurrent parts, every S3 error case, listings, lib-storage, a node down,
 * and the abandoned-upload garbage collector driven by an injected clock. Seeded.
 */
import { createHash } from "node:crypto";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { partRecord, uploadPlacement } from "../../gateway/objects/multipart-records.js";
import { UPLOAD_ABANDONED_AGE_MS_DEFAULT } from "../../gateway/objects/multipart-sweep.js";
import { commitRecords, encodeShards } from "../../gateway/objects/put-object.js";
import { PART_BYTES_MIN } from "../../gateway/s3/limits.js";
import { Prng, seedFromEnv } from "../prng.js";
import { bodyOf, s3Error, startInProcessCluster, type InProcessCluster } from "./in-process-cluster.js";

const seed = seedFromEnv(0x5eed_0500);
/** Small stripes so a few MiB of parts span many stripes and every range crosses some. */
const BLOCK_BYTES = 64 * 1024;
const BUCKET = "uploads";
let cluster: InProcessCluster;
let s3: S3Client;

beforeAll(async () => {
  cluster = await startInProcessCluster({ blockSize: BLOCK_BYTES });
  s3 = cluster.client();
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
});
afterAll(async () => {
  await cluster.stop();
});



const md5 = (data: Buffer): Buffer => createHash("md5").update(data).digest();

function multipartEtag(parts: readonly Buffer[]): string {
  return `"${createHash("md5").update(Buffer.concat(parts.map(md5))).digest("hex")}-${parts.length}"`;
}

/** Shard files held by all nodes together: garbage collection brings this back down. */
async function shardCount(): Promise<number> {
  let total = 0;
  for (const node of cluster.nodes) for (const disk of (await node.health()).disks) total += disk.shardCount;
  return total;
}

async function uploadParts(key: string, parts: readonly Buffer[]): Promise<{ uploadId: string; completed: CompletedPart[] }> {
  const { UploadId: uploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key, ContentType: "application/x-parts", Metadata: { origin: "test" } }));
  if (uploadId === undefined) throw new Error("no upload id");
  const completed = await Promise.all(
    parts.map(async (body, index) => {
      const { ETag } = await s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId, PartNumber: index + 1, Body: body }));
      return { PartNumber: index + 1, ETag };
    }),
  );
  return { uploadId, completed };
}

describe(`multipart uploads (seed ${seed})`, () => {
  it("uploads parts concurrently, completes, and reads back byte for byte with S3's ETag", async () => {
    const prng = new Prng(seed);
    const parts = [prng.bytes(PART_BYTES_MIN), prng.bytes(PART_BYTES_MIN + 12_345), prng.bytes(777_777)];
    const { uploadId, completed } = await uploadParts("big/object.bin", parts);
    const listed = await s3.send(new ListPartsCommand({ Bucket: BUCKET, Key: "big/object.bin", UploadId: uploadId }));
    expect(listed.Parts?.map((part) => [part.PartNumber, part.Size])).toEqual(parts.map((part, index) => [index + 1, part.length]));
    const done = await s3.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: "big/object.bin", UploadId: uploadId, MultipartUpload: { Parts: completed } }));
    expect(done.ETag).toBe(multipartEtag(parts));
    const whole = Buffer.concat(parts);
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "big/object.bin" }));
    expect((await bodyOf(got)).equals(whole), `seed ${seed}`).toBe(true);
    expect(got.ETag).toBe(multipartEtag(parts));
    expect(got.ContentType).toBe("application/x-parts");
    expect(got.Metadata).toEqual({ origin: "test" });
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "big/object.bin" }));
    expect(head.ContentLength).toBe(whole.length);
    const listing = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: "big/" }));
    expect(listing.Contents?.[0]).toMatchObject({ Key: "big/object.bin", Size: whole.length, ETag: multipartEtag(parts) });
  });

  it("serves seeded ranges that start, end and cross anywhere, part boundaries included", async () => {
    const prng = new Prng(seed + 1);
    const parts = [prng.bytes(PART_BYTES_MIN), prng.bytes(PART_BYTES_MIN), prng.bytes(3 * BLOCK_BYTES + 5)];
    const { uploadId, completed } = await uploadParts("ranges.bin", parts);
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: "ranges.bin", UploadId: uploadId, MultipartUpload: { Parts: completed } }));
    const whole = Buffer.concat(parts);
    const boundary = PART_BYTES_MIN;
    const ranges: [number, number][] = [
      [boundary - 1, boundary],
      [boundary - 10, boundary + 10],
      [0, whole.length - 1],
      [boundary, 2 * boundary],
      [2 * boundary - 1, whole.length - 1],
    ];
    for (let i = 0; i < 12; i++) {
      const first = prng.int(0, whole.length - 1);
      ranges.push([first, prng.int(first, Math.min(whole.length - 1, first + 2 * boundary))]);
    }
    for (const [first, last] of ranges) {
      const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "ranges.bin", Range: `bytes=${first}-${last}` }));
      expect((await bodyOf(got)).equals(whole.subarray(first, last + 1)), `range ${first}-${last} seed ${seed}`).toBe(true);
      expect(got.ContentRange).toBe(`bytes ${first}-${last}/${whole.length}`);
    }
  });

  it("GET and HEAD by part number: that part, 206, x-amz-mp-parts-count; too high is InvalidPartNumber", async () => {
    const prng = new Prng(seed + 2);
    const parts = [prng.bytes(PART_BYTES_MIN), prng.bytes(100_000)];
    const { uploadId, completed } = await uploadParts("numbered.bin", parts);
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: "numbered.bin", UploadId: uploadId, MultipartUpload: { Parts: completed } }));
    const second = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "numbered.bin", PartNumber: 2 }));
    expect((await bodyOf(second)).equals(parts[1] as Buffer)).toBe(true);
    expect(second.PartsCount).toBe(2);
    expect(second.ContentRange).toBe(`bytes ${PART_BYTES_MIN}-${PART_BYTES_MIN + 100_000 - 1}/${PART_BYTES_MIN + 100_000}`);
    expect(second.$metadata.httpStatusCode).toBe(206);
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "numbered.bin", PartNumber: 1 }));
    expect(head.ContentLength).toBe(PART_BYTES_MIN);
    expect(head.PartsCount).toBe(2);
    expect(await s3Error(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "numbered.bin", PartNumber: 3 })))).toEqual({ name: "InvalidPartNumber", status: 416 });
    expect((await s3Error(s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "numbered.bin", PartNumber: 3 })))).status).toBe(416);
    expect(await s3Error(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "numbered.bin", PartNumber: 1, Range: "bytes=0-1" })))).toEqual({ name: "InvalidRequest", status: 400 });
  });

  it("a part uploaded twice: the last one wins, and the first one's shards are collected", async () => {
    const prng = new Prng(seed + 3);
    const before = await shardCount();
    const first = prng.bytes(PART_BYTES_MIN);
    const second = prng.bytes(PART_BYTES_MIN);
    const last = prng.bytes(1000);
    const { UploadId: uploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: "twice.bin" }));
    await s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: "twice.bin", UploadId: uploadId, PartNumber: 1, Body: first }));
    const again = await s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: "twice.bin", UploadId: uploadId, PartNumber: 1, Body: second }));
    const tail = await s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: "twice.bin", UploadId: uploadId, PartNumber: 2, Body: last }));
    const listed = await s3.send(new ListPartsCommand({ Bucket: BUCKET, Key: "twice.bin", UploadId: uploadId }));
    expect(listed.Parts?.map((part) => part.ETag)).toEqual([again.ETag, tail.ETag]);
    const parts = [{ PartNumber: 1, ETag: again.ETag }, { PartNumber: 2, ETag: tail.ETag }];
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: "twice.bin", UploadId: uploadId, MultipartUpload: { Parts: parts } }));
    await cluster.gateway.store.settle();
    expect(await shardCount()).toBe(before + 2 * 6);
    expect((await bodyOf(await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "twice.bin" })))).equals(Buffer.concat([second, last]))).toBe(true);
    // Overwriting and deleting the object collects its parts' shards too.
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: "twice.bin" }));
    await cluster.gateway.store.settle();
    expect(await shardCount()).toBe(before);
  });

  it("abort removes the upload and every part's shards; the upload is then NoSuchUpload", async () => {
    const prng = new Prng(seed + 4);
    const before = await shardCount();
    const { uploadId } = await uploadParts("aborted.bin", [prng.bytes(PART_BYTES_MIN), prng.bytes(10)]);
    expect(await shardCount()).toBe(before + 12);
    await s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: "aborted.bin", UploadId: uploadId }));
    await cluster.gateway.store.settle();
    expect(await shardCount()).toBe(before);
    expect(await s3Error(s3.send(new ListPartsCommand({ Bucket: BUCKET, Key: "aborted.bin", UploadId: uploadId })))).toEqual({ name: "NoSuchUpload", status: 404 });
    expect(await s3Error(s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: "aborted.bin", UploadId: uploadId })))).toEqual({ name: "NoSuchUpload", status: 404 });
  });

  it("answers every error case with S3's code and status", async () => {
    const prng = new Prng(seed + 5);
    const small = prng.bytes(1024);
    const { uploadId, completed } = await uploadParts("errors.bin", [small, prng.bytes(PART_BYTES_MIN), small]);
    const complete = (parts: CompletedPart[]): Promise<unknown> =>
      s3.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: "errors.bin", UploadId: uploadId, MultipartUpload: { Parts: parts } }));
    const [one, two, three] = completed as [CompletedPart, CompletedPart, CompletedPart];
    expect(await s3Error(complete([one, two, three]))).toEqual({ name: "EntityTooSmall", status: 400 });
    expect(await s3Error(complete([two, one]))).toEqual({ name: "InvalidPartOrder", status: 400 });
    expect(await s3Error(complete([{ PartNumber: 2, ETag: one.ETag }]))).toEqual({ name: "InvalidPart", status: 400 });
    expect(await s3Error(complete([two, { PartNumber: 4, ETag: three.ETag }]))).toEqual({ name: "InvalidPart", status: 400 });
    expect(await s3Error(complete([]))).toEqual({ name: "MalformedXML", status: 400 });
    const missing = "0123456789abcdef0123456789abcdef";
    const wrong = (id: string): Promise<unknown> => s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: "errors.bin", UploadId: id, PartNumber: 1, Body: small }));
    expect(await s3Error(wrong(missing))).toEqual({ name: "NoSuchUpload", status: 404 });
    expect(await s3Error(wrong("not-an-upload-id"))).toEqual({ name: "NoSuchUpload", status: 404 });
    expect(await s3Error(s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: "other.bin", UploadId: uploadId, PartNumber: 1, Body: small })))).toEqual({ name: "NoSuchUpload", status: 404 });
    for (const partNumber of [0, 10_001]) {
      const bad = s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: "errors.bin", UploadId: uploadId, PartNumber: partNumber, Body: small }));
      expect(await s3Error(bad)).toEqual({ name: "InvalidArgument", status: 400 });
    }
    expect(await s3Error(s3.send(new CreateMultipartUploadCommand({ Bucket: "no-such-bucket", Key: "x" })))).toEqual({ name: "NoSuchBucket", status: 404 });
    expect(await s3Error(s3.send(new UploadPartCommand({ Bucket: "no-such-bucket", Key: "x", UploadId: missing, PartNumber: 1, Body: small })))).toEqual({ name: "NoSuchBucket", status: 404 });
    // A valid completion still works after all of that; then the upload is gone.
    await complete([two, three]);
    expect(await s3Error(complete([two, three]))).toEqual({ name: "NoSuchUpload", status: 404 });
  });

  it("lists uploads with prefix, delimiter and markers, oldest first within a key", async () => {
    await s3.send(new CreateBucketCommand({ Bucket: "listing" }));
    const create = async (key: string): Promise<string> => (await s3.send(new CreateMultipartUploadCommand({ Bucket: "listing", Key: key }))).UploadId as string;
    const a1 = await create("a/one");
    const a2 = await create("a/one");
    const b = await create("b");
    await create("c/d/e");
    const all = await s3.send(new ListMultipartUploadsCommand({ Bucket: "listing" }));
    expect(all.Uploads?.map((upload) => [upload.Key, upload.UploadId])).toEqual([["a/one", a1], ["a/one", a2], ["b", b], ["c/d/e", expect.any(String)]]);
    const rolled = await s3.send(new ListMultipartUploadsCommand({ Bucket: "listing", Delimiter: "/" }));
    expect(rolled.CommonPrefixes?.map((prefix) => prefix.Prefix)).toEqual(["a/", "c/"]);
    expect(rolled.Uploads?.map((upload) => upload.Key)).toEqual(["b"]);
    const prefixed = await s3.send(new ListMultipartUploadsCommand({ Bucket: "listing", Prefix: "c/" }));
    expect(prefixed.Uploads?.map((upload) => upload.Key)).toEqual(["c/d/e"]);
    const first = await s3.send(new ListMultipartUploadsCommand({ Bucket: "listing", MaxUploads: 1 }));
    expect(first).toMatchObject({ IsTruncated: true, NextKeyMarker: "a/one", NextUploadIdMarker: a1 });
    const next = await s3.send(new ListMultipartUploadsCommand({ Bucket: "listing", MaxUploads: 2, KeyMarker: "a/one", UploadIdMarker: a1 }));
    expect(next.Uploads?.map((upload) => upload.UploadId)).toEqual([a2, b]);
    expect(next.IsTruncated).toBe(true);
    const after = await s3.send(new ListMultipartUploadsCommand({ Bucket: "listing", KeyMarker: "b" }));
    expect(after.Uploads?.map((upload) => upload.Key)).toEqual(["c/d/e"]);
    expect(after.IsTruncated).toBe(false);
    expect(await s3Error(s3.send(new ListMultipartUploadsCommand({ Bucket: "no-such-bucket" })))).toEqual({ name: "NoSuchBucket", status: 404 });
  });

  it("paginates ListParts with max-parts and part-number-marker", async () => {
    const prng = new Prng(seed + 6);
    const { uploadId } = await uploadParts("paged.bin", [prng.bytes(10), prng.bytes(20), prng.bytes(30)]);
    const page = await s3.send(new ListPartsCommand({ Bucket: BUCKET, Key: "paged.bin", UploadId: uploadId, MaxParts: 2 }));
    expect(page.Parts?.map((part) => part.PartNumber)).toEqual([1, 2]);
    expect(page).toMatchObject({ IsTruncated: true, NextPartNumberMarker: "2" });
    const rest = await s3.send(new ListPartsCommand({ Bucket: BUCKET, Key: "paged.bin", UploadId: uploadId, PartNumberMarker: "2" }));
    expect(rest.Parts?.map((part) => part.PartNumber)).toEqual([3]);
    expect(rest.IsTruncated).toBe(false);
    await s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: "paged.bin", UploadId: uploadId }));
  });

  it("@aws-sdk/lib-storage Upload with 4 parts in flight round-trips", async () => {
    const prng = new Prng(seed + 7);
    const data = prng.bytes(4 * PART_BYTES_MIN + 99);
    const upload = new Upload({ client: s3, params: { Bucket: BUCKET, Key: "lib-storage.bin", Body: data }, queueSize: 4, partSize: PART_BYTES_MIN });
    await upload.done();
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "lib-storage.bin" }));
    expect((await bodyOf(got)).equals(data)).toBe(true);
    expect(got.ETag).toMatch(/-5"$/);
  });

  it("uploads and completes with a node down, and reads back degraded", async () => {
    const prng = new Prng(seed + 8);
    const parts = [prng.bytes(PART_BYTES_MIN), prng.bytes(4321)];
    const node = cluster.nodes[2];
    if (node === undefined) throw new Error("six nodes");
    node.down = true;
    try {
      const { uploadId, completed } = await uploadParts("degraded.bin", parts);
      await s3.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: "degraded.bin", UploadId: uploadId, MultipartUpload: { Parts: completed } }));
      expect((await bodyOf(await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "degraded.bin" })))).equals(Buffer.concat(parts))).toBe(true);
    } finally {
      node.down = false;
    }
    expect((await bodyOf(await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "degraded.bin" })))).equals(Buffer.concat(parts))).toBe(true);
  });

  it("the garbage collector removes uploads idle past the age, and only those", async () => {
    const prng = new Prng(seed + 9);
    await cluster.gateway.store.settle();
    const before = await shardCount();
    const { uploadId } = await uploadParts("abandoned.bin", [prng.bytes(PART_BYTES_MIN), prng.bytes(5)]);
    const now = Date.now();
    const early = await cluster.gateway.sweepUploads(now + UPLOAD_ABANDONED_AGE_MS_DEFAULT / 2);
    expect(early.uploadsRemoved).toBe(0);
    expect((await s3.send(new ListPartsCommand({ Bucket: BUCKET, Key: "abandoned.bin", UploadId: uploadId }))).Parts).toHaveLength(2);
    const late = await cluster.gateway.sweepUploads(now + UPLOAD_ABANDONED_AGE_MS_DEFAULT + 60_000);
    expect(late.uploadsRemoved).toBeGreaterThanOrEqual(1);
    expect(await s3Error(s3.send(new ListPartsCommand({ Bucket: BUCKET, Key: "abandoned.bin", UploadId: uploadId })))).toEqual({ name: "NoSuchUpload", status: 404 });
    expect(await shardCount()).toBe(before);
    // Completed objects are untouched by the sweep.
    expect((await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "big/object.bin" }))).ContentLength).toBeGreaterThan(0);
  });

  it("the garbage collector removes a late part of a finished upload, and uploads of a deleted bucket", async () => {
    const prng = new Prng(seed + 10);
    await cluster.gateway.store.settle();
    const before = await shardCount();
    const store = cluster.gateway.store;
    // A part that landed after its upload was aborted: what a slow UploadPart racing an abort leaves.
    const upload = await store.uploads.create({ bucket: BUCKET, key: "late-part", userMetadata: {}, systemMetadata: {} });
    await store.uploads.abort(BUCKET, "late-part", upload.uploadId);
    await store.settle(); // the abort's own clean-up must not be what removes the late part
    const placement = uploadPlacement(upload);
    const partVersionId = "f".repeat(32);
    const body = prng.bytes(PART_BYTES_MIN);
    const encoded = await encodeShards(store.cluster, placement, { body: (async function* () { yield body; })(), length: body.length, versionId: partVersionId, partNumber: 1, inline: false });
    const part = { partNumber: 1, partVersionId, size: body.length, etag: encoded.digest.toString("hex"), blockBytes: encoded.blockBytes };
    await commitRecords(store.cluster, encoded.committed, partRecord(upload, part, {}, Date.now()), 5);
    // An upload in a bucket deleted since (a bucket with no objects can be deleted).
    await s3.send(new CreateBucketCommand({ Bucket: "doomed" }));
    const doomed = await s3.send(new CreateMultipartUploadCommand({ Bucket: "doomed", Key: "k" }));
    await s3.send(new UploadPartCommand({ Bucket: "doomed", Key: "k", UploadId: doomed.UploadId, PartNumber: 1, Body: prng.bytes(100) }));
    await s3.send(new DeleteBucketCommand({ Bucket: "doomed" }));
    expect(await shardCount()).toBe(before + 12);
    const swept = await cluster.gateway.sweepUploads(Date.now() + UPLOAD_ABANDONED_AGE_MS_DEFAULT + 60_000);
    expect(swept).toMatchObject({ uploadsRemoved: 1, partsRemoved: 2 });
    expect(await shardCount()).toBe(before);
  });

  it("a plain PutObject is part 1 of 1", async () => {
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "plain", Body: "hello" }));
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "plain", PartNumber: 1 }));
    expect((await bodyOf(got)).toString()).toBe("hello");
    expect(await s3Error(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "plain", PartNumber: 2 })))).toEqual({ name: "InvalidPartNumber", status: 416 });
  });
});
