/**
 * Memory stays bounded whatever the object size (issue 4): a 1 GiB PUT and GET through a
 * real gateway process must not grow its RSS by more than GATEWAY_RSS_GROWTH_MAX_BYTES over
 * its RSS after a warm-up. The body is generated and hashed as it streams, so the test
 * process holds no copy of the object either.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { rssBytes, sampleRss } from "../process-rss.js";
import { useClusterWithS3 } from "./cluster-with-s3.js";
import { Prng, seedFromEnv } from "../prng.js";

const seed = seedFromEnv(0x5eed_0e30);
const OBJECT_BYTES = 1024 * 1024 * 1024;
/** The bound on how much a 1 GiB transfer may grow the gateway's resident memory. */
const GATEWAY_RSS_GROWTH_MAX_BYTES = 128 * 1024 * 1024;
/** Bytes per generated piece of the body. */
const PIECE_BYTES = 1024 * 1024;

const real = useClusterWithS3();



/** A seeded 1 GiB body: one random MiB, each copy stamped with its index so no two match. */
function generatedBody(hash: ReturnType<typeof createHash>): Readable {
  const block = new Prng(seed).bytes(PIECE_BYTES);
  return Readable.from(
    (function* () {
      for (let index = 0; index < OBJECT_BYTES / PIECE_BYTES; index++) {
        const piece = Buffer.from(block);
        piece.writeUInt32LE(index, 0);
        hash.update(piece);
        yield piece;
      }
    })(),
  );
}

describe(`gateway memory bound (seed ${seed})`, () => {
  it("streams a 1 GiB PUT and GET without growing the gateway's RSS by more than 128 MiB", async () => {
    await real.s3.send(new CreateBucketCommand({ Bucket: "big" }));
    await real.s3.send(new PutObjectCommand({ Bucket: "big", Key: "warm-up", Body: Buffer.alloc(8 * 1024 * 1024, 1) }));
    await (await real.s3.send(new GetObjectCommand({ Bucket: "big", Key: "warm-up" }))).Body?.transformToByteArray();
    const baseline = await rssBytes(real.cluster.gateway.pid);

    const sampler = sampleRss(real.cluster.gateway.pid);
    const sent = createHash("sha256");
    await real.s3.send(new PutObjectCommand({ Bucket: "big", Key: "one-gib", Body: generatedBody(sent), ContentLength: OBJECT_BYTES }));
    const received = createHash("sha256");
    const output = await real.s3.send(new GetObjectCommand({ Bucket: "big", Key: "one-gib" }));
    let length = 0;
    for await (const piece of output.Body as Readable) {
      received.update(piece as Buffer);
      length += (piece as Buffer).length;
    }
    const peak = await sampler.stop();

    expect(length).toBe(OBJECT_BYTES);
    expect(received.digest("hex")).toBe(sent.digest("hex"));
    const growth = peak - baseline;
    console.log(`gateway RSS: baseline ${(baseline / 2 ** 20).toFixed(1)} MiB, peak ${(peak / 2 ** 20).toFixed(1)} MiB, growth ${(growth / 2 ** 20).toFixed(1)} MiB`);
    expect(growth).toBeLessThanOrEqual(GATEWAY_RSS_GROWTH_MAX_BYTES);
  }, 600_000);
});
