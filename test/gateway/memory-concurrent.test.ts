/**
 * The gateway's memory stays bounded under concurrency (issue 7): 16 large PUTs at once, then
 * 16 GETs at once, then 8 of each together, through a real gateway process, must keep its
 * peak RSS (VmHWM, kept by the kernel, so no spike is missed) under GATEWAY_RSS_MAX_BYTES.
 * What bounds it is the stripe budget (gateway/erasure/stripe-budget.ts): without it every
 * request adds its stripes, its shard writers' queues and its readers' buffers. Bodies are
 * generated and hashed as they stream; every GET is checked against its PUT.
 */
import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { Readable } from "node:stream";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { useClusterWithS3 } from "./cluster-with-s3.js";
import { Prng, seedFromEnv } from "../prng.js";

const seed = seedFromEnv(0x5eed_0e31);
const MiB = 1024 * 1024;
/** The bound on the gateway's resident memory, whatever the load. */
const GATEWAY_RSS_MAX_BYTES = 256 * MiB;
/** 16 stripes per object: the bound depends on concurrency, not size; larger only takes longer. */
const OBJECT_BYTES = 16 * MiB;
const CONCURRENCY = 16;
const PIECE_BYTES = 1 * MiB;

const real = useClusterWithS3();

async function peakRss(pid: number): Promise<number> {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(await readFile(`/proc/${pid}/status`, "utf8"));
  if (match === null) throw new Error(`no VmHWM for pid ${pid}`);
  return Number(match[1]) * 1024;
}

/** Object `index`'s body: one seeded MiB, each copy stamped with the object and piece index. */
function body(index: number, block: Buffer): { stream: Readable; sha256: Promise<string> } {
  const hash = createHash("sha256");
  let resolve: (digest: string) => void = () => undefined;
  const sha256 = new Promise<string>((done) => (resolve = done));
  const stream = Readable.from(
    (function* () {
      for (let piece = 0; piece < OBJECT_BYTES / PIECE_BYTES; piece++) {
        const bytes = Buffer.from(block);
        bytes.writeUInt32LE(index, 0);
        bytes.writeUInt32LE(piece, 4);
        hash.update(bytes);
        yield bytes;
      }
      resolve(hash.digest("hex"));
    })(),
  );
  return { stream, sha256 };
}

async function put(key: string, index: number, block: Buffer): Promise<string> {
  const { stream, sha256 } = body(index, block);
  await real.s3.send(new PutObjectCommand({ Bucket: "busy", Key: key, Body: stream, ContentLength: OBJECT_BYTES }));
  return sha256;
}

async function get(key: string): Promise<string> {
  const output = await real.s3.send(new GetObjectCommand({ Bucket: "busy", Key: key }));
  const hash = createHash("sha256");
  let length = 0;
  for await (const piece of output.Body as Readable) {
    hash.update(piece as Buffer);
    length += (piece as Buffer).length;
  }
  expect(length).toBe(OBJECT_BYTES);
  return hash.digest("hex");
}

describe(`gateway memory under concurrency (seed ${seed})`, () => {
  it(`keeps the gateway under 256 MiB with ${CONCURRENCY} large PUTs, then GETs, then both at once`, async () => {
    const block = new Prng(seed).bytes(PIECE_BYTES);
    await real.s3.send(new CreateBucketCommand({ Bucket: "busy" }));
    const gateway = real.cluster.gateway.pid;
    // The peak counts from here: start-up (tsx compiling the sources) is not the data path.
    await writeFile(`/proc/${gateway}/clear_refs`, "5");

    const keys = Array.from({ length: CONCURRENCY }, (_, index) => `object-${index}`);
    const digests = await Promise.all(keys.map((key, index) => put(key, index, block)));
    const read = await Promise.all(keys.map((key) => get(key)));
    expect(read).toEqual(digests);
    const half = CONCURRENCY / 2;
    const mixed = await Promise.all([
      ...keys.slice(0, half).map((key) => get(key)),
      ...keys.slice(half).map((key, index) => put(`${key}-again`, half + index, block)),
    ]);
    expect(mixed.slice(0, half)).toEqual(digests.slice(0, half));
    expect(mixed.slice(half)).toEqual(digests.slice(half));

    const peak = await peakRss(gateway);
    console.log(`gateway peak RSS with ${CONCURRENCY} concurrent ${OBJECT_BYTES / MiB} MiB transfers: ${(peak / MiB).toFixed(1)} MiB`);
    expect(peak).toBeLessThan(GATEWAY_RSS_MAX_BYTES);
  }, 120_000);
});
