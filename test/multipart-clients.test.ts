/**
 * Multipart uploads, copies and conditional writes from real clients against a real cluster
 * (six storage-node processes and a gateway process): the aws CLI with its default settings
 * (multipart above 8 MiB, ranged parallel downloads, UploadPartCopy for a bucket-to-bucket
 * copy, a presigned URL), @aws-sdk/lib-storage with 4 parts in flight, rclone copying a directory of mixed
 * files up and down (and updating a modification time by a copy onto itself), boto3 through
 * test/boto3-client.py (multipart transfers, listings, presigned URLs, batch delete), and
 * every S3 error case of issue 5 over the wire. The 1 GiB aws CLI round trip has its own file.
 */
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster } from "./cluster-harness.js";
import { awsCli, boto3Session, rcloneCli, seededBytes, sha256File, sha256Of, writeSeededFile } from "./multipart-clients.js";
import { Prng, seedFromEnv } from "./prng.js";

const seed = seedFromEnv(0x5eed_c11e);
const MiB = 1024 * 1024;
/** A 100 MiB round trip is seconds here; minutes means a hang. */
const CLIENT_TIMEOUT_MS = 240_000;
/** S3's smallest part but the last. */
const PART_MIN = 5 * MiB;

let cluster: TestCluster;
let work: string;
let s3: S3Client;
let aws: Awaited<ReturnType<typeof awsCli>>;
let rclone: Awaited<ReturnType<typeof rcloneCli>>;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 6, k: 4, m: 2 });
  work = await mkdtemp(join(tmpdir(), "tessera-multipart-clients-"));
  s3 = new S3Client({ endpoint: cluster.endpoint, region: cluster.region, credentials: cluster.credentials, forcePathStyle: true, maxAttempts: 1 });
  aws = await awsCli(cluster, work);
  rclone = await rcloneCli(cluster, work);
}, 120_000);

afterAll(async () => {
  s3?.destroy();
  await cluster?.stop();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

async function s3Error(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof S3ServiceException) return `${error.name} ${error.$metadata.httpStatusCode}`;
    throw error;
  }
  throw new Error("expected an S3 error");
}

/** Every file under `root` with its sha256, by relative path. */
async function tree(root: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files.set(relative(root, path), await sha256File(path));
  }
  return files;
}

describe(`real clients against a real cluster (seed ${seed})`, () => {
  it("aws s3 cp (defaults: multipart) of 100 MiB up, down, and bucket to bucket (UploadPartCopy), sha256 identical", async () => {
    const up = join(work, "up-100m.bin");
    await writeSeededFile(up, seed, "aws-100m", 100 * MiB);
    await aws(CLIENT_TIMEOUT_MS, "s3", "mb", "s3://aws-mp");
    await aws(CLIENT_TIMEOUT_MS, "s3", "mb", "s3://aws-mp-copy");
    await aws(CLIENT_TIMEOUT_MS, "s3", "cp", up, "s3://aws-mp/big.bin");
    const head = JSON.parse(await aws(CLIENT_TIMEOUT_MS, "s3api", "head-object", "--bucket", "aws-mp", "--key", "big.bin")) as { ETag: string; ContentLength: number };
    expect(head.ETag).toMatch(/^"[0-9a-f]{32}-13"$/);
    expect(head.ContentLength).toBe(100 * MiB);
    const down = join(work, "down-100m.bin");
    await aws(CLIENT_TIMEOUT_MS, "s3", "cp", "s3://aws-mp/big.bin", down);
    const expected = await sha256File(up);
    expect(await sha256File(down)).toBe(expected);
    await aws(CLIENT_TIMEOUT_MS, "s3", "cp", "s3://aws-mp/big.bin", "s3://aws-mp-copy/copied.bin");
    const copied = join(work, "copied-100m.bin");
    await aws(CLIENT_TIMEOUT_MS, "s3", "cp", "s3://aws-mp-copy/copied.bin", copied);
    expect(await sha256File(copied)).toBe(expected);
    expect(await aws(CLIENT_TIMEOUT_MS, "s3api", "list-multipart-uploads", "--bucket", "aws-mp")).not.toContain("UploadId");
    // `aws s3 presign` (Signature Version 2 from the aws CLI v1, version 4 from v2), fetched
    // as a browser would: no SDK, no credentials.
    const url = (await aws(CLIENT_TIMEOUT_MS, "s3", "presign", "s3://aws-mp/big.bin", "--expires-in", "600")).trim();
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(await sha256Of(response.body as unknown as AsyncIterable<Uint8Array>)).toBe(expected);
    await rm(down);
    await rm(copied);
  }, 600_000);

  it("@aws-sdk/lib-storage Upload of 200 MiB with 4 parts in flight, read back with the same sha256", async () => {
    await s3.send(new CreateBucketCommand({ Bucket: "lib-storage" }));
    const size = 200 * MiB;
    const expected = await sha256Of(seededBytes(seed, "lib-storage", size));
    const upload = new Upload({ client: s3, params: { Bucket: "lib-storage", Key: "two-hundred.bin", Body: seededBytes(seed, "lib-storage", size) }, queueSize: 4 });
    await upload.done();
    const got = await s3.send(new GetObjectCommand({ Bucket: "lib-storage", Key: "two-hundred.bin" }));
    expect(got.ContentLength).toBe(size);
    expect(got.ETag).toMatch(/-40"$/);
    expect(await sha256Of(got.Body as AsyncIterable<Uint8Array>)).toBe(expected);
  }, 600_000);

  it("rclone copies a directory of mixed files up and down (multipart above 5 MiB), then updates a modtime in place", async () => {
    const source = join(work, "rclone-up");
    const prng = new Prng(seed);
    const sizes: Record<string, number> = { "empty": 0, "one": 1, "small.txt": 100, "nested/a/medium.bin": 300_000, "nested/b/five.bin": PART_MIN + 1, "nested/b/large.bin": 17 * MiB + 3 };
    for (let i = 0; i < 20; i++) sizes[`many/file-${i}`] = prng.int(0, 70_000);
    for (const [name, size] of Object.entries(sizes)) {
      await mkdir(join(source, name, ".."), { recursive: true });
      await writeFile(join(source, name), prng.bytes(size));
    }
    const flags = ["--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", "--transfers", "4"];
    await rclone(CLIENT_TIMEOUT_MS, "mkdir", "tessera:rclone");
    await rclone(CLIENT_TIMEOUT_MS, "copy", ...flags, source, "tessera:rclone/set");
    const down = join(work, "rclone-down");
    await rclone(CLIENT_TIMEOUT_MS, "copy", "tessera:rclone/set", down);
    expect(await tree(down)).toEqual(await tree(source));
    // A newer modification time with the same bytes: rclone updates the object's metadata by
    // copying it onto itself (CopyObject, REPLACE); nothing is uploaded again.
    const touched = join(source, "nested/b/large.bin");
    const later = new Date(Date.now() + 3_600_000);
    await utimes(touched, later, later);
    await rclone(CLIENT_TIMEOUT_MS, "copy", ...flags, source, "tessera:rclone/set");
    const listing = await rclone(CLIENT_TIMEOUT_MS, "lsl", "tessera:rclone/set/nested/b");
    expect(listing).toMatch(new RegExp(`${17 * MiB + 3} ${later.toISOString().slice(0, 10)}`));
    await rclone(CLIENT_TIMEOUT_MS, "check", source, "tessera:rclone/set");
    expect((await stat(join(down, "nested/b/large.bin"))).size).toBe(17 * MiB + 3);
  }, 600_000);

  it("boto3: put with metadata, ranged get, upload_file/download_file (multipart), paginated and grouped listings, presigned URLs, delete_objects", async () => {
    const large = join(work, "boto3-large.bin");
    const size = 20 * MiB + 3;
    await writeSeededFile(large, seed, "boto3", size);
    const seen = await boto3Session(cluster, work, "boto3", large, CLIENT_TIMEOUT_MS);
    // The multipart ETag S3 gives an upload in boto3's 8 MiB parts: md5 of the parts' md5s, "-3".
    const partMd5s: Buffer[] = [];
    const bytes = await readFile(large);
    for (let at = 0; at < size; at += 8 * MiB) partMd5s.push(createHash("md5").update(bytes.subarray(at, Math.min(size, at + 8 * MiB))).digest());
    const multipartEtag = `"${createHash("md5").update(Buffer.concat(partMd5s)).digest("hex")}-${partMd5s.length}"`;
    const small = seen.small as Record<string, unknown>;
    expect(seen).toEqual({
      small: { etag: small.md5, md5: small.md5, length: 3200, contentType: "text/x-test", metadata: { colour: "blue" } },
      range: { contentRange: "bytes 100-199/3200", equal: true },
      large: { sha256: await sha256File(large), etag: multipartEtag, length: size },
      listing: { pages: 4, keys: ["dir/large.bin", "dir/sub0/file", "dir/sub1/file", "dir/sub2/file", "dir/sub3/file", "dir/sub4/file", "small.bin"] },
      grouped: { prefixes: ["dir/sub0/", "dir/sub1/", "dir/sub2/", "dir/sub3/", "dir/sub4/"], keys: ["dir/large.bin"] },
      presignedV4: { status: 200, equal: true },
      // Signature Version 2: boto3's presigning default for an endpoint of its own.
      presignedV2: { status: 200, equal: true, code: null, signature: true },
      presignedV2Altered: { status: 403, code: "SignatureDoesNotMatch" },
      ifNoneMatch: "PreconditionFailed",
      deleteObjects: { deleted: ["dir/large.bin", "dir/sub0/file", "dir/sub1/file", "dir/sub2/file", "dir/sub3/file", "dir/sub4/file", "never-there", "small.bin"], errors: [] },
      afterDelete: "404",
      bucketGone: true,
    });
  }, 300_000);

  it("answers every multipart, copy and conditional error case over the wire", async () => {
    await s3.send(new CreateBucketCommand({ Bucket: "errors" }));
    const prng = new Prng(seed + 1);
    const small = prng.bytes(1000);
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: "errors", Key: "k" }));
    const one = await s3.send(new UploadPartCommand({ Bucket: "errors", Key: "k", UploadId, PartNumber: 1, Body: small }));
    const two = await s3.send(new UploadPartCommand({ Bucket: "errors", Key: "k", UploadId, PartNumber: 2, Body: small }));
    const complete = (parts: { PartNumber: number; ETag?: string }[], extra: { IfNoneMatch?: string } = {}): Promise<unknown> =>
      s3.send(new CompleteMultipartUploadCommand({ Bucket: "errors", Key: "k", UploadId, MultipartUpload: { Parts: parts }, ...extra }));
    expect(await s3Error(complete([{ PartNumber: 1, ETag: one.ETag }, { PartNumber: 2, ETag: two.ETag }]))).toBe("EntityTooSmall 400");
    expect(await s3Error(complete([{ PartNumber: 2, ETag: two.ETag }, { PartNumber: 1, ETag: one.ETag }]))).toBe("InvalidPartOrder 400");
    expect(await s3Error(complete([{ PartNumber: 3, ETag: one.ETag }]))).toBe("InvalidPart 400");
    const missing = "0123456789abcdef0123456789abcdef";
    expect(await s3Error(s3.send(new UploadPartCommand({ Bucket: "errors", Key: "k", UploadId: missing, PartNumber: 1, Body: small })))).toBe("NoSuchUpload 404");
    expect(await s3Error(s3.send(new UploadPartCommand({ Bucket: "errors", Key: "k", UploadId, PartNumber: 10_001, Body: small })))).toBe("InvalidArgument 400");
    await s3.send(new PutObjectCommand({ Bucket: "errors", Key: "k", Body: "exists" }));
    expect(await s3Error(complete([{ PartNumber: 2, ETag: two.ETag }], { IfNoneMatch: "*" }))).toBe("PreconditionFailed 412");
    await complete([{ PartNumber: 2, ETag: two.ETag }]);
    expect(await s3Error(s3.send(new GetObjectCommand({ Bucket: "errors", Key: "k", PartNumber: 2 })))).toBe("InvalidPartNumber 416");
    expect(await s3Error(s3.send(new PutObjectCommand({ Bucket: "errors", Key: "k", Body: "x", IfNoneMatch: "*" })))).toBe("PreconditionFailed 412");
    expect(await s3Error(s3.send(new PutObjectCommand({ Bucket: "errors", Key: "absent", Body: "x", IfMatch: '"abc"' })))).toBe("NoSuchKey 404");
    expect(await s3Error(s3.send(new CopyObjectCommand({ Bucket: "errors", Key: "k", CopySource: "errors/k" })))).toBe("InvalidRequest 400");
    expect(await s3Error(s3.send(new CopyObjectCommand({ Bucket: "errors", Key: "c", CopySource: "errors/k", CopySourceIfMatch: '"abc"' })))).toBe("PreconditionFailed 412");
    const { UploadId: other } = await s3.send(new CreateMultipartUploadCommand({ Bucket: "errors", Key: "p" }));
    const copyPart = s3.send(new UploadPartCopyCommand({ Bucket: "errors", Key: "p", UploadId: other, PartNumber: 1, CopySource: "errors/k", CopySourceRange: "bytes=0-999999" }));
    expect(await s3Error(copyPart)).toBe("InvalidArgument 400");
    await s3.send(new AbortMultipartUploadCommand({ Bucket: "errors", Key: "p", UploadId: other }));
    expect(await s3Error(s3.send(new AbortMultipartUploadCommand({ Bucket: "errors", Key: "p", UploadId: other })))).toBe("NoSuchUpload 404");
  }, 120_000);
});
