/**
 * Helpers of the real-process multipart tests (test/multipart-clients*.test.ts): seeded
 * large files written without holding them in memory, sha256 of files and streams, and the
 * aws CLI, rclone and a boto3 script run as a user would, configured for a test cluster in a
 * temp directory.
 */
import { execFile } from "node:child_process";
import { createCipheriv, createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import type { TestCluster } from "./cluster-harness.js";

const run = promisify(execFile);
/** Bytes generated per step: large enough to be fast, small enough never to matter for memory. */
const SEEDED_PIECE_BYTES = 4 * 1024 * 1024;
/** stdout kept from a client command (listings are small). */
const COMMAND_OUTPUT_BYTES_MAX = 16 * 1024 * 1024;

/**
 * `size` seeded pseudo-random bytes, streamed: the AES-128-CTR keystream under a key derived
 * from the seed and a label, so each (seed, label) is its own reproducible file, at GB/s
 * (the test PRNG writes 4 bytes a step, too slow for a GiB).
 */
export function seededBytes(seed: number, label: string, size: number): Readable {
  const key = createHash("sha256").update(`${seed}/${label}`).digest().subarray(0, 16);
  const cipher = createCipheriv("aes-128-ctr", key, Buffer.alloc(16));
  const zeros = Buffer.alloc(SEEDED_PIECE_BYTES);
  return Readable.from(
    (function* () {
      for (let at = 0; at < size; at += SEEDED_PIECE_BYTES) yield cipher.update(zeros.subarray(0, Math.min(SEEDED_PIECE_BYTES, size - at)));
    })(),
    { objectMode: false },
  );
}

export async function writeSeededFile(path: string, seed: number, label: string, size: number): Promise<void> {
  await pipeline(seededBytes(seed, label, size), createWriteStream(path));
}

export async function sha256Of(source: AsyncIterable<Uint8Array>): Promise<string> {
  const hash = createHash("sha256");
  for await (const piece of source) hash.update(piece);
  return hash.digest("hex");
}

export function sha256File(path: string): Promise<string> {
  return sha256Of(createReadStream(path));
}

/** The aws CLI with its default settings (multipart above 8 MiB) and the cluster's credentials. */
export async function awsCli(cluster: TestCluster, work: string): Promise<(timeoutMs: number, ...args: string[]) => Promise<string>> {
  const config = join(work, "aws-config");
  await writeFile(config, `[default]\nregion = ${cluster.region}\n`);
  const env = {
    PATH: process.env.PATH,
    HOME: work,
    AWS_CONFIG_FILE: config,
    AWS_SHARED_CREDENTIALS_FILE: join(work, "no-credentials"),
    AWS_ACCESS_KEY_ID: cluster.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: cluster.credentials.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_PAGER: "",
  };
  return async (timeoutMs, ...args) => (await run("aws", ["--endpoint-url", cluster.endpoint, ...args], { env, timeout: timeoutMs, maxBuffer: COMMAND_OUTPUT_BYTES_MAX })).stdout;
}

/** rclone with a remote "tessera" for the cluster (path-style S3, provider Other). */
export async function rcloneCli(cluster: TestCluster, work: string): Promise<(timeoutMs: number, ...args: string[]) => Promise<string>> {
  const config = join(work, "rclone.conf");
  const remote = [
    "[tessera]",
    "type = s3",
    "provider = Other",
    `access_key_id = ${cluster.credentials.accessKeyId}`,
    `secret_access_key = ${cluster.credentials.secretAccessKey}`,
    `endpoint = ${cluster.endpoint}`,
    `region = ${cluster.region}`,
    "force_path_style = true",
    "",
  ].join("\n");
  await writeFile(config, remote);
  const env = { PATH: process.env.PATH, HOME: work };
  return async (timeoutMs, ...args) => (await run("rclone", ["--config", config, ...args], { env, timeout: timeoutMs, maxBuffer: COMMAND_OUTPUT_BYTES_MAX })).stdout;
}

/** test/boto3-client.py, which drives boto3 through a fixed sequence and prints what it saw. */
const BOTO3_SCRIPT = fileURLToPath(new URL("./boto3-client.py", import.meta.url));

/**
 * Python interpreters tried for boto3, in order: the one on PATH, then Debian's (where CI's
 * python3-boto3 goes when PATH leads to another Python).
 */
const PYTHONS = ["python3", "/usr/bin/python3"];

/** The first Python that imports boto3; throws, naming the package to install, when none does. */
async function pythonWithBoto3(env: NodeJS.ProcessEnv): Promise<string> {
  for (const python of PYTHONS) {
    try {
      await run(python, ["-c", "import boto3"], { env });
      return python;
    } catch {
      // Not this one: try the next.
    }
  }
  throw new Error(`no Python with boto3 (tried ${PYTHONS.join(", ")}): install Debian's python3-boto3 (.ci/run does)`);
}

/** Runs test/boto3-client.py against the cluster; resolves with the JSON it printed. */
export async function boto3Session(cluster: TestCluster, work: string, bucket: string, largeFile: string, timeoutMs: number): Promise<Record<string, unknown>> {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, AWS_CONFIG_FILE: join(work, "no-config"), AWS_SHARED_CREDENTIALS_FILE: join(work, "no-credentials"), AWS_EC2_METADATA_DISABLED: "true" };
  const args = [BOTO3_SCRIPT, cluster.endpoint, cluster.region, cluster.credentials.accessKeyId, cluster.credentials.secretAccessKey, bucket, largeFile, work];
  const { stdout } = await run(await pythonWithBoto3(env), args, { env, timeout: timeoutMs, maxBuffer: COMMAND_OUTPUT_BYTES_MAX });
  return JSON.parse(stdout) as Record<string, unknown>;
}
