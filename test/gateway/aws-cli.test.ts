/**
 * The aws CLI, as a user runs it, against a real cluster: cp up and down of 0 B, 1 B,
 * 5 MiB + 3 B and 100 MiB files (sha256 compared), ls and rm. multipart_threshold is set
 * above 100 MiB so every upload is a single PutObject (multipart is issue 5's).
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster } from "../cluster-harness.js";
import { Prng, seedFromEnv } from "../prng.js";

const run = promisify(execFile);
const seed = seedFromEnv(0x5eed_a3c1);
/** The 100 MiB round trip takes a few seconds here; a minute is a hang, not slowness. */
const AWS_COMMAND_TIMEOUT_MS = 120_000;
const SIZES = [0, 1, 5 * 1024 * 1024 + 3, 100 * 1024 * 1024];

let cluster: TestCluster;
let work: string;
let env: NodeJS.ProcessEnv;

async function aws(...args: string[]): Promise<string> {
  const { stdout } = await run("aws", ["--endpoint-url", cluster.endpoint, ...args], { env, timeout: AWS_COMMAND_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const piece of createReadStream(path)) hash.update(piece as Buffer);
  return hash.digest("hex");
}

beforeAll(async () => {
  cluster = await startCluster({ nodes: 6, k: 4, m: 2 });
  work = await mkdtemp(join(tmpdir(), "tessera-aws-cli-"));
  const config = join(work, "aws-config");
  await writeFile(config, `[default]\nregion = ${cluster.region}\ns3 =\n    multipart_threshold = 200MB\n`);
  env = {
    PATH: process.env.PATH,
    HOME: work,
    AWS_CONFIG_FILE: config,
    AWS_SHARED_CREDENTIALS_FILE: join(work, "no-credentials"),
    AWS_ACCESS_KEY_ID: cluster.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: cluster.credentials.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_PAGER: "",
  };
  const prng = new Prng(seed);
  for (const size of SIZES) {
    // Written in slices so the 100 MiB file never sits in memory twice.
    const slices: Buffer[] = [];
    for (let at = 0; at < size; at += 8 * 1024 * 1024) slices.push(prng.bytes(Math.min(8 * 1024 * 1024, size - at)));
    await writeFile(join(work, `up-${size}.bin`), Buffer.concat(slices));
  }
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe(`aws CLI against a real cluster (seed ${seed})`, () => {
  it("makes a bucket, copies files up and down byte-identically, lists and removes them", async () => {
    await aws("s3", "mb", "s3://cli");
    for (const size of SIZES) {
      const up = join(work, `up-${size}.bin`);
      const down = join(work, `down-${size}.bin`);
      await aws("s3", "cp", up, `s3://cli/dir/file-${size}.bin`);
      await aws("s3", "cp", `s3://cli/dir/file-${size}.bin`, down);
      expect(await sha256File(down), `${size} bytes`).toBe(await sha256File(up));
    }
    const listing = await aws("s3", "ls", "s3://cli/dir/");
    for (const size of SIZES) expect(listing).toMatch(new RegExp(`\\s${size} file-${size}\\.bin`));
    for (const size of SIZES) await aws("s3", "rm", `s3://cli/dir/file-${size}.bin`);
    // `aws s3 ls` of an empty prefix prints nothing and exits 1.
    await expect(aws("s3", "ls", "s3://cli/dir/")).rejects.toMatchObject({ code: 1, stdout: "" });
    await aws("s3", "rb", "s3://cli");
    expect(await aws("s3", "ls")).not.toContain("cli");
  }, 600_000);
});
