/**
 * CopyObject and UploadPartCopy through the real AWS SDK against a gateway over six
 * in-memory nodes: metadata directives, copies onto themselves, across buckets, of multipart
 * sources, the x-amz-copy-source-if-* conditions, copy-source ranges, and their errors.
 */
import { createHash } from "node:crypto";
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PART_BYTES_MIN } from "../../gateway/s3/limits.js";
import { Prng, seedFromEnv } from "../prng.js";
import { bodyOf, s3Error, startInProcessCluster, type InProcessCluster } from "./in-process-cluster.js";

const seed = seedFromEnv(0x5eed_c0b1);
/** Small stripes: a few MiB of source span many stripes, so copies stream stripe by stripe. */
const BLOCK_BYTES = 64 * 1024;
let cluster: InProcessCluster;
let s3: S3Client;

beforeAll(async () => {
  cluster = await startInProcessCluster({ blockSize: BLOCK_BYTES });
  s3 = cluster.client();
  await s3.send(new CreateBucketCommand({ Bucket: "source" }));
  await s3.send(new CreateBucketCommand({ Bucket: "target" }));
});
afterAll(async () => {
  await cluster.stop();
});



const md5 = (data: Buffer): string => `"${createHash("md5").update(data).digest("hex")}"`;

async function read(bucket: string, key: string): Promise<Buffer> {
  return bodyOf(await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key })));
}

describe(`copies (seed ${seed})`, () => {
  it("copies within and across buckets with the source's metadata (COPY), and a plain MD5 ETag", async () => {
    const data = new Prng(seed).bytes(3 * 1024 * 1024 + 17);
    await s3.send(new PutObjectCommand({ Bucket: "source", Key: "a.bin", Body: data, ContentType: "text/x-a", Metadata: { colour: "red" }, CacheControl: "no-cache" }));
    const within = await s3.send(new CopyObjectCommand({ Bucket: "source", Key: "a-copy.bin", CopySource: "source/a.bin" }));
    expect(within.CopyObjectResult?.ETag).toBe(md5(data));
    const across = await s3.send(new CopyObjectCommand({ Bucket: "target", Key: "dir/a.bin", CopySource: "/source/a.bin" }));
    expect(across.CopyObjectResult?.LastModified).toBeInstanceOf(Date);
    for (const [bucket, key] of [["source", "a-copy.bin"], ["target", "dir/a.bin"]] as const) {
      expect((await read(bucket, key)).equals(data), `${bucket}/${key} seed ${seed}`).toBe(true);
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      expect(head).toMatchObject({ ContentType: "text/x-a", Metadata: { colour: "red" }, CacheControl: "no-cache", ETag: md5(data) });
    }
  });

  it("REPLACE takes the request's metadata; a copy onto itself needs it (InvalidRequest otherwise)", async () => {
    await s3.send(new PutObjectCommand({ Bucket: "source", Key: "self", Body: "same bytes", ContentType: "text/plain", Metadata: { v: "1" } }));
    expect(await s3Error(s3.send(new CopyObjectCommand({ Bucket: "source", Key: "self", CopySource: "source/self" })))).toEqual({ name: "InvalidRequest", status: 400 });
    await s3.send(new CopyObjectCommand({ Bucket: "source", Key: "self", CopySource: "source/self", MetadataDirective: "REPLACE", ContentType: "text/x-new", Metadata: { v: "2" } }));
    const head = await s3.send(new HeadObjectCommand({ Bucket: "source", Key: "self" }));
    expect(head).toMatchObject({ ContentType: "text/x-new", Metadata: { v: "2" } });
    expect((await read("source", "self")).toString()).toBe("same bytes");
    const bad = s3.send(new CopyObjectCommand({ Bucket: "source", Key: "x", CopySource: "source/self", MetadataDirective: "MOVE" as "COPY" }));
    expect(await s3Error(bad)).toEqual({ name: "InvalidArgument", status: 400 });
  });

  it("copies a multipart source into one plain object", async () => {
    const prng = new Prng(seed + 1);
    const parts = [prng.bytes(PART_BYTES_MIN), prng.bytes(1234)];
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: "source", Key: "multi" }));
    const etags = [];
    for (const [index, body] of parts.entries()) etags.push((await s3.send(new UploadPartCommand({ Bucket: "source", Key: "multi", UploadId, PartNumber: index + 1, Body: body }))).ETag);
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: "source", Key: "multi", UploadId, MultipartUpload: { Parts: etags.map((ETag, index) => ({ PartNumber: index + 1, ETag })) } }));
    const copied = await s3.send(new CopyObjectCommand({ Bucket: "target", Key: "multi-copy", CopySource: "source/multi" }));
    const whole = Buffer.concat(parts);
    expect(copied.CopyObjectResult?.ETag).toBe(md5(whole));
    expect((await read("target", "multi-copy")).equals(whole)).toBe(true);
  });

  it("honours x-amz-copy-source-if-*: every failure is 412", async () => {
    const { ETag } = await s3.send(new PutObjectCommand({ Bucket: "source", Key: "cond", Body: "conditional source" }));
    const past = new Date(Date.now() - 3_600_000);
    const future = new Date(Date.now() + 3_600_000);
    const copy = (conditions: Partial<CopyObjectCommand["input"]>): Promise<unknown> => s3.send(new CopyObjectCommand({ Bucket: "target", Key: "cond", CopySource: "source/cond", ...conditions }));
    await copy({ CopySourceIfMatch: ETag });
    await copy({ CopySourceIfNoneMatch: '"0123456789abcdef0123456789abcdef"' });
    await copy({ CopySourceIfModifiedSince: past });
    await copy({ CopySourceIfUnmodifiedSince: future });
    await copy({ CopySourceIfMatch: ETag, CopySourceIfUnmodifiedSince: past });
    const failed = { name: "PreconditionFailed", status: 412 };
    expect(await s3Error(copy({ CopySourceIfMatch: '"0123456789abcdef0123456789abcdef"' }))).toEqual(failed);
    expect(await s3Error(copy({ CopySourceIfNoneMatch: ETag }))).toEqual(failed);
    expect(await s3Error(copy({ CopySourceIfModifiedSince: future }))).toEqual(failed);
    expect(await s3Error(copy({ CopySourceIfUnmodifiedSince: past }))).toEqual(failed);
    expect(await s3Error(copy({ CopySourceIfNoneMatch: ETag, CopySourceIfModifiedSince: past }))).toEqual(failed);
  });

  it("answers a missing source or bucket with S3's code", async () => {
    expect(await s3Error(s3.send(new CopyObjectCommand({ Bucket: "target", Key: "x", CopySource: "source/missing" })))).toEqual({ name: "NoSuchKey", status: 404 });
    expect(await s3Error(s3.send(new CopyObjectCommand({ Bucket: "target", Key: "x", CopySource: "no-such-bucket/a" })))).toEqual({ name: "NoSuchBucket", status: 404 });
    expect(await s3Error(s3.send(new CopyObjectCommand({ Bucket: "no-such-bucket", Key: "x", CopySource: "source/a.bin" })))).toEqual({ name: "NoSuchBucket", status: 404 });
    expect(await s3Error(s3.send(new CopyObjectCommand({ Bucket: "target", Key: "x", CopySource: "source/a.bin?versionId=0123" })))).toEqual({ name: "NoSuchVersion", status: 404 });
  });

  it("UploadPartCopy: ranges of sources in other buckets become parts; bad ranges are InvalidArgument", async () => {
    const prng = new Prng(seed + 2);
    const source = prng.bytes(2 * PART_BYTES_MIN + 5000);
    await s3.send(new PutObjectCommand({ Bucket: "source", Key: "big", Body: source }));
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: "target", Key: "assembled" }));
    const first = await s3.send(new UploadPartCopyCommand({ Bucket: "target", Key: "assembled", UploadId, PartNumber: 1, CopySource: "source/big", CopySourceRange: `bytes=100-${100 + PART_BYTES_MIN - 1}` }));
    expect(first.CopyPartResult?.ETag).toBe(md5(source.subarray(100, 100 + PART_BYTES_MIN)));
    const tail = prng.bytes(777);
    const second = await s3.send(new UploadPartCommand({ Bucket: "target", Key: "assembled", UploadId, PartNumber: 2, Body: tail }));
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: "target", Key: "assembled", UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: first.CopyPartResult?.ETag }, { PartNumber: 2, ETag: second.ETag }] } }));
    expect((await read("target", "assembled")).equals(Buffer.concat([source.subarray(100, 100 + PART_BYTES_MIN), tail]))).toBe(true);
    const { UploadId: other } = await s3.send(new CreateMultipartUploadCommand({ Bucket: "target", Key: "whole" }));
    const whole = await s3.send(new UploadPartCopyCommand({ Bucket: "target", Key: "whole", UploadId: other, PartNumber: 1, CopySource: "source/big" }));
    expect(whole.CopyPartResult?.ETag).toBe(md5(source));
    const part = (range: string): Promise<unknown> => s3.send(new UploadPartCopyCommand({ Bucket: "target", Key: "whole", UploadId: other, PartNumber: 2, CopySource: "source/big", CopySourceRange: range }));
    expect(await s3Error(part(`bytes=0-${source.length}`))).toEqual({ name: "InvalidArgument", status: 400 });
    expect(await s3Error(part("bytes=10-5"))).toEqual({ name: "InvalidArgument", status: 400 });
    expect(await s3Error(part("bytes=5-"))).toEqual({ name: "InvalidArgument", status: 400 });
    const noUpload = s3.send(new UploadPartCopyCommand({ Bucket: "target", Key: "whole", UploadId: "0123456789abcdef0123456789abcdef", PartNumber: 1, CopySource: "source/big" }));
    expect(await s3Error(noUpload)).toEqual({ name: "NoSuchUpload", status: 404 });
    const failing = s3.send(new UploadPartCopyCommand({ Bucket: "target", Key: "whole", UploadId: other, PartNumber: 1, CopySource: "source/big", CopySourceIfMatch: '"0123456789abcdef0123456789abcdef"' }));
    expect(await s3Error(failing)).toEqual({ name: "PreconditionFailed", status: 412 });
  });
});
