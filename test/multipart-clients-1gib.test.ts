/**
 * The aws CLI with its default settings (multipart above 8 MiB, 10 parts in flight, ranged
 * parallel GETs) copying a 1 GiB file up to a real cluster and back down, sha256 compared.
 * In its own file: it is the slowest test of issue 5. Throughput is printed, not asserted
 * (numbers belong to bench/).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster } from "./cluster-harness.js";
import { awsCli, sha256File, writeSeededFile } from "./multipart-clients.js";
import { seedFromEnv } from "./prng.js";

const seed = seedFromEnv(0x5eed_1618);
const GiB = 1024 * 1024 * 1024;
/** One direction of 1 GiB takes about half a minute on a 2-core box; ten minutes is a hang. */
const CLIENT_TIMEOUT_MS = 600_000;

let cluster: TestCluster;
let work: string;
let aws: Awaited<ReturnType<typeof awsCli>>;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 6, k: 4, m: 2 });
  work = await mkdtemp(join(tmpdir(), "tessera-1gib-"));
  aws = await awsCli(cluster, work);
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

function megabytesPerSecond(bytes: number, started: number): string {
  return ((bytes / 1e6) / ((Date.now() - started) / 1000)).toFixed(1);
}

describe(`aws CLI 1 GiB multipart round trip (seed ${seed})`, () => {
  it("aws s3 cp of 1 GiB up and down with default settings: sha256 identical", async () => {
    const up = join(work, "up.bin");
    const down = join(work, "down.bin");
    await writeSeededFile(up, seed, "aws-1gib", GiB);
    await aws(CLIENT_TIMEOUT_MS, "s3", "mb", "s3://gib");
    let started = Date.now();
    await aws(CLIENT_TIMEOUT_MS, "s3", "cp", up, "s3://gib/one.bin");
    const upRate = megabytesPerSecond(GiB, started);
    started = Date.now();
    await aws(CLIENT_TIMEOUT_MS, "s3", "cp", "s3://gib/one.bin", down);
    const downRate = megabytesPerSecond(GiB, started);
    console.log(`aws s3 cp 1 GiB: up ${upRate} MB/s, down ${downRate} MB/s`);
    expect(await sha256File(down)).toBe(await sha256File(up));
    const head = JSON.parse(await aws(CLIENT_TIMEOUT_MS, "s3api", "head-object", "--bucket", "gib", "--key", "one.bin")) as { ETag: string; ContentLength: number };
    expect(head).toMatchObject({ ContentLength: GiB, ETag: expect.stringMatching(/-128"$/) });
  }, 1_500_000);
});
