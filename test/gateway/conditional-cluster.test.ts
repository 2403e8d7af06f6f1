/**
 * The put-if-absent race on real processes (six storage nodes and a gateway): 20 clients
 * PUT the same absent key with If-None-Match: * at once; exactly one wins, every other one
 * ends with 412, and the object holds the winner's bytes. Then again with a storage node
 * SIGKILLed while the race runs, and again after it restarts. A client that gets a retryable
 * answer (503 while the killed node's requests fail, 409 ConditionalRequestConflict) retries,
 * as SDKs do; a retry must never produce a second winner.
 */
import { setTimeout as delay } from "node:timers/promises";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster } from "../cluster-harness.js";
import { Prng, seedFromEnv } from "../prng.js";

const seed = seedFromEnv(0x5eed_2041);
/** Writers racing for one key, as issue 5 asks. */
const RACERS = 20;
/** Bodies large enough (shard files, a few stripes) that a kill lands while shards stream. */
const BODY_BYTES = 1024 * 1024;
/** When the node dies after the racers start: while bodies stream and leases are taken. */
const KILL_AFTER_MS = 150;
/** Retries of a retryable answer per client; a handful rides out the killed node's failures. */
const ATTEMPTS_MAX = 8;
/** Pause between a client's attempts. */
const RETRY_PAUSE_MS = 200;

let cluster: TestCluster;
let clients: S3Client[];

beforeAll(async () => {
  cluster = await startCluster({ nodes: 6, k: 4, m: 2 });
  clients = Array.from({ length: RACERS }, () => new S3Client({ endpoint: cluster.endpoint, region: cluster.region, credentials: cluster.credentials, forcePathStyle: true, maxAttempts: 1 }));
  await clients[0]?.send(new CreateBucketCommand({ Bucket: "race" }));
}, 120_000);

afterAll(async () => {
  for (const client of clients ?? []) client.destroy();
  await cluster?.stop();
});

type Outcome = { readonly result: "won" | "lost"; readonly retries: number };

function retryable(error: unknown): boolean {
  if (error instanceof S3ServiceException) return error.$metadata.httpStatusCode === 503 || error.name === "ConditionalRequestConflict";
  return error instanceof Error && /socket|ECONNRESET|EPIPE/i.test(error.message);
}

async function putIfAbsent(client: S3Client, key: string, body: Buffer): Promise<Outcome> {
  for (let attempt = 1; ; attempt++) {
    try {
      await client.send(new PutObjectCommand({ Bucket: "race", Key: key, Body: body, IfNoneMatch: "*" }));
      return { result: "won", retries: attempt - 1 };
    } catch (error) {
      if (error instanceof S3ServiceException && error.name === "PreconditionFailed" && error.$metadata.httpStatusCode === 412) return { result: "lost", retries: attempt - 1 };
      if (!retryable(error) || attempt === ATTEMPTS_MAX) throw error;
      await delay(RETRY_PAUSE_MS);
    }
  }
}

async function race(key: string, prng: Prng, during?: () => Promise<void>): Promise<void> {
  const bodies = Array.from({ length: RACERS }, () => prng.bytes(BODY_BYTES));
  const racing = Promise.all(bodies.map((body, index) => putIfAbsent(clients[index] as S3Client, key, body)));
  await during?.();
  const outcomes = await racing;
  const winners = outcomes.flatMap((outcome, index) => (outcome.result === "won" ? [index] : []));
  const retries = outcomes.reduce((sum, outcome) => sum + outcome.retries, 0);
  console.log(`race ${key}: ${winners.length} winner(s), ${RACERS - winners.length} x 412, ${retries} retried answers`);
  expect(winners, `${key} seed ${seed}: ${winners.length} winners, ${retries} retries`).toHaveLength(1);
  const got = await clients[0]?.send(new GetObjectCommand({ Bucket: "race", Key: key }));
  const stored = Buffer.from((await got?.Body?.transformToByteArray()) ?? new Uint8Array());
  expect(stored.equals(bodies[winners[0] as number] as Buffer), `${key} holds the winner's bytes (seed ${seed})`).toBe(true);
}

describe(`put-if-absent race on a real cluster (seed ${seed})`, () => {
  it(`${RACERS} clients: exactly one wins, the rest get 412`, async () => {
    const prng = new Prng(seed);
    for (let round = 0; round < 3; round++) await race(`calm-${round}`, prng);
  }, 300_000);

  it(`${RACERS} clients while a storage node is SIGKILLed, and again once it is back`, async () => {
    const prng = new Prng(seed + 1);
    const victim = cluster.nodes[2];
    if (victim === undefined) throw new Error("six nodes");
    await race("killed", prng, async () => {
      await delay(KILL_AFTER_MS);
      victim.kill("SIGKILL");
    });
    await race("while-down", prng);
    await victim.restart();
    await race("restarted", prng);
    const got = await clients[1]?.send(new GetObjectCommand({ Bucket: "race", Key: "killed" }));
    expect((await got?.Body?.transformToByteArray())?.length).toBe(BODY_BYTES);
  }, 300_000);
});
