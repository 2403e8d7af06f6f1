/**
 * The storage node over HTTP, in real processes: the storage contract through HttpNodeClient,
 * then auth, bad input, CLI flags, shutdown, health and metrics. Seeded (TEST_SEED replays).
 */
import { once } from "node:events";
import { open, readdir, stat, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { Readable } from "node:stream";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { Client } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isTesseraError } from "../../core/errors.js";
import type { HttpNodeClient } from "../../core/http-node-client.js";
import { RECORD_BODY_BYTES_MAX, SHARD_FILE_BYTES_MAX, recordsPath, shardPath } from "../../core/internal-api.js";
import { AUTH_CLOCK_SKEW_MS_MAX, ClusterSecret, EMPTY_BODY_SHA256, UNSIGNED_STREAMING, sha256Hex, signRequest } from "../../core/internal-auth.js";
import { OBJECT_KEY_BYTES_MAX, SHARD_HEADER_BYTES } from "../../core/limits.js";
import { shardLayout } from "../../core/shard-format.js";
import type { ObjectRecord } from "../../core/storage-api.js";
import { SHUTDOWN_DEADLINE_MS } from "../../storage-node/main.js";
import { Prng, seedFromEnv } from "../prng.js";
import { contractRecord, storageContract } from "../storage-contract.js";
import { BATCH_OPS_MAX } from "../../core/record-batch.js";
import { makeNodeDirs, makeTempDir, runTessera, startNode, useNodeHarness, type NodeDirs, type NodeProcess } from "./harness.js";
import { hexId, inPieces, makeShard, readAll, readOutcome, type TestShard } from "./shards.js";

const seed = seedFromEnv(0x5eed_0301);
console.log(`http.test seed ${seed} (replay with TEST_SEED=${seed})`);
const prng = new Prng(seed);
useNodeHarness();

/** Small stripes so a shard of a few KB has several chunks to corrupt: 4 chunks of 1 KiB. */
const BLOCK_BYTES = 4 * 1024;
/** Margin over the node's own shutdown deadline for process exit and the harness to notice. */
const EXIT_MARGIN_MS = 1_500;

// --- The storage contract, through HttpNodeClient to a real process ----------------------

storageContract("HttpNodeClient -> storage-node process", async () => {
  const node = await startNode(prng);
  return { node: node.client(), diskIds: [...node.dirs.diskIds], cleanup: async () => void (await node.stop()) };
});

// --- Helpers --------------------------------------------------------------------------------

interface RawResponse {
  readonly status: number;
  readonly body: { code?: string; message?: string } & Record<string, unknown>;
}

interface RawRequest {
  readonly method: "GET" | "PUT" | "POST" | "DELETE";
  readonly path: string;
  readonly body?: Buffer;
  readonly headers?: Record<string, string>;
  /** Sign as a streamed shard body (UNSIGNED-STREAMING) rather than by its hash. */
  readonly streaming?: boolean;
}

function signedHeaders(node: NodeProcess, request: RawRequest, options: { secret?: ClusterSecret; now?: number; nodeId?: string } = {}): Record<string, string> {
  const body = request.body ?? Buffer.alloc(0);
  const contentSha256 = request.streaming === true ? UNSIGNED_STREAMING : request.body === undefined ? EMPTY_BODY_SHA256 : sha256Hex(body);
  const signed = signRequest(
    options.secret ?? node.dirs.secret,
    { nodeId: options.nodeId ?? node.nodeId, method: request.method, pathAndQuery: request.path, contentSha256, contentLength: String(body.length) },
    options.now,
  );
  if (request.body === undefined) return signed;
  return { ...signed, "content-type": request.streaming === true ? "application/octet-stream" : "application/json" };
}

async function send(node: NodeProcess, request: RawRequest): Promise<RawResponse> {
  const client = new Client(node.url);
  try {
    const response = await client.request({ method: request.method, path: request.path, headers: request.headers ?? {}, body: request.body ?? null });
    const text = await response.body.text();
    let body: RawResponse["body"] = {};
    try {
      body = JSON.parse(text) as RawResponse["body"];
    } catch {
      body = { text };
    }
    return { status: response.statusCode, body };
  } finally {
    await client.close();
  }
}

async function shardIsAbsent(client: HttpNodeClient, diskId: string, shard: TestShard): Promise<boolean> {
  const outcome = await readOutcome(client.readShard(diskId, shard.id));
  if (isTesseraError(outcome.error, "ERR_NOT_FOUND")) return true;
  throw new Error(`expected no shard, got ${outcome.bytes.length} bytes / ${String(outcome.error)}`);
}

function record(shard: TestShard, overrides: Partial<ObjectRecord> = {}): ObjectRecord {
  return {
    bucket: "bucket-1",
    key: `key/${shard.id.objectId}`,
    versionId: shard.id.versionId,
    revision: 0,
    objectId: shard.id.objectId,
    deleteMarker: false,
    size: shard.header.objectLength,
    etag: "0123456789abcdef0123456789abcdef",
    lastModified: 1_700_000_000_000,
    userMetadata: {},
    systemMetadata: {},
    ec: { k: shard.header.k, m: shard.header.m, blockBytes: shard.header.blockBytes, checksumAlgorithm: shard.header.checksumAlgorithm },
    placement: [],
    parts: [],
    ...overrides,
  };
}

/** Every file under `dir`, recursively, with its size. */
async function listFiles(dir: string): Promise<Map<string, number>> {
  const files = new Map<string, number>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files.set(path, (await stat(path)).size);
  }
  return files;
}

/** The path of the stored file whose first bytes are `shard`'s header (layout-agnostic). */
async function findShardFile(dirs: NodeDirs, shard: TestShard): Promise<string> {
  const header = shard.file.subarray(0, SHARD_HEADER_BYTES);
  for (const disk of dirs.disks) {
    for (const [path, size] of await listFiles(disk)) {
      if (size !== shard.file.length) continue;
      const handle = await open(path, "r");
      try {
        const start = Buffer.alloc(SHARD_HEADER_BYTES);
        await handle.read(start, 0, SHARD_HEADER_BYTES, 0);
        if (start.equals(header)) return path;
      } finally {
        await handle.close();
      }
    }
  }
  throw new Error("shard file not found on any disk");
}

/** Sends a signed shard PUT over a raw socket: `declared` in Content-Length, then `sent` bytes, then hangs up. */
async function rawShardUpload(node: NodeProcess, diskId: string, shard: TestShard, declared: number, sent: Buffer): Promise<string> {
  const path = shardPath(diskId, shard.id);
  const signed = signRequest(node.dirs.secret, { nodeId: node.nodeId, method: "PUT", pathAndQuery: path, contentSha256: UNSIGNED_STREAMING, contentLength: String(declared) });
  const socket = connect(node.port, "127.0.0.1");
  await once(socket, "connect");
  const headerLines = Object.entries(signed).map(([name, value]) => `${name}: ${value}\r\n`).join("");
  socket.write(`PUT ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/octet-stream\r\ncontent-length: ${declared}\r\n${headerLines}\r\n`);
  socket.write(sent);
  let answer = "";
  socket.on("data", (piece: Buffer) => (answer += piece.toString("latin1")));
  await delay(300);
  socket.destroy();
  return answer;
}

// --- Auth ------------------------------------------------------------------------------------

describe("auth: without valid proof of the secret, 401 and nothing touched", () => {
  let node: NodeProcess;
  let client: HttpNodeClient;
  let shard: TestShard;

  beforeAll(async () => {
    node = await startNode(prng);
    client = node.client();
    shard = await makeShard(prng, { objectLength: 3 * BLOCK_BYTES, blockBytes: BLOCK_BYTES });
  });
  afterAll(async () => void (await node.stop()));

  const shardPut = (): RawRequest => ({ method: "PUT", path: shardPath("a", shard.id), body: shard.file, streaming: true });

  it("refuses a request without a signature", async () => {
    const response = await send(node, { ...shardPut(), headers: { "content-type": "application/octet-stream" } });
    expect(response).toMatchObject({ status: 401, body: { code: "ERR_UNAUTHORIZED", message: "internal request refused: missing x-tessera-date header" } });
    expect(await shardIsAbsent(client, "a", shard)).toBe(true);
  });

  it("refuses a signature made with another secret", async () => {
    const wrong = ClusterSecret.fromBytes(prng.bytes(32));
    const response = await send(node, { ...shardPut(), headers: signedHeaders(node, shardPut(), { secret: wrong }) });
    expect(response).toMatchObject({ status: 401, body: { code: "ERR_UNAUTHORIZED" } });
    expect(response.body.message).toMatch(/signature does not match/);
    expect(await shardIsAbsent(client, "a", shard)).toBe(true);
  });

  it("refuses stale and future dates", async () => {
    for (const skew of [-AUTH_CLOCK_SKEW_MS_MAX - 60_000, AUTH_CLOCK_SKEW_MS_MAX + 60_000]) {
      const response = await send(node, { ...shardPut(), headers: signedHeaders(node, shardPut(), { now: Date.now() + skew }) });
      expect(response).toMatchObject({ status: 401, body: { code: "ERR_UNAUTHORIZED" } });
      expect(response.body.message).toMatch(/ms from the node's clock/);
    }
    expect(await shardIsAbsent(client, "a", shard)).toBe(true);
  });

  it("refuses a replayed request (same nonce) even after the first one's effect was undone", async () => {
    const headers = signedHeaders(node, shardPut());
    expect((await send(node, { ...shardPut(), headers })).status).toBe(204);
    expect(await client.deleteShard("a", shard.id)).toBe(true);
    const replay = await send(node, { ...shardPut(), headers });
    expect(replay).toMatchObject({ status: 401, body: { code: "ERR_UNAUTHORIZED", message: "internal request refused: replayed nonce" } });
    expect(await shardIsAbsent(client, "a", shard)).toBe(true);
  });

  it("refuses a request signed for another node", async () => {
    const response = await send(node, { ...shardPut(), headers: signedHeaders(node, shardPut(), { nodeId: "n2" }) });
    expect(response).toMatchObject({ status: 401, body: { message: "internal request refused: signed for node n2, this is node n1" } });
  });

  it("refuses a JSON body changed after signing, and a JSON body signed as streaming", async () => {
    const signedBody = Buffer.from(JSON.stringify(record(shard)));
    const request: RawRequest = { method: "PUT", path: recordsPath("a"), body: signedBody };
    const tampered = Buffer.from(JSON.stringify(record(shard, { size: 1 })));
    const changed = await send(node, { ...request, body: tampered, headers: signedHeaders(node, request) });
    expect(changed).toMatchObject({ status: 401, body: { message: "internal request refused: body does not match its signed SHA-256" } });
    const streamed = await send(node, { ...request, headers: signedHeaders(node, { ...request, streaming: true }) });
    expect(streamed).toMatchObject({ status: 401, body: { message: "internal request refused: a JSON body must be signed with its SHA-256" } });
    expect(await client.getRecords("a", "bucket-1", `key/${shard.id.objectId}`)).toEqual([]);
  });

  it("refuses unsigned health and metrics too", async () => {
    expect((await send(node, { method: "GET", path: "/v1/health" })).status).toBe(401);
    expect((await send(node, { method: "GET", path: "/metrics" })).status).toBe(401);
    const health = await client.health();
    expect(health.disks.map((disk) => [disk.diskId, disk.shardCount, disk.recordCount])).toEqual([
      ["a", 0, 0],
      ["b", 0, 0],
    ]);
  });
});

// --- Bad input -------------------------------------------------------------------------------

describe("bad input: refused with a clear error, nothing committed", () => {
  let node: NodeProcess;
  let client: HttpNodeClient;
  let before: Map<string, number>;

  beforeAll(async () => {
    node = await startNode(prng);
    client = node.client();
    before = await listFiles(node.dirs.root);
  });
  afterAll(async () => void (await node.stop()));

  const validIds = (): string => `${hexId(prng)}/${hexId(prng)}/0/1`;

  it.each([
    ["disk id with a dot", () => `/v1/disks/a.b/shards/${validIds()}`, /diskId/],
    ["upper-case object id", () => `/v1/disks/a/shards/${hexId(prng).toUpperCase()}/${hexId(prng)}/0/1`, /objectId: must be 32 lowercase hex/],
    ["short version id", () => `/v1/disks/a/shards/${hexId(prng)}/abc/0/1`, /versionId: must be 32 lowercase hex/],
    ["part number over 10000", () => `/v1/disks/a/shards/${hexId(prng)}/${hexId(prng)}/10001/1`, /partNumber: must be at most 10000/],
    ["shard index over the largest k+m", () => `/v1/disks/a/shards/${hexId(prng)}/${hexId(prng)}/0/99`, /shardIndex: must be at most 29/],
    ["negative stripe range", () => `/v1/disks/a/shards/${validIds()}?first=-1&count=1`, /first: must be a decimal integer/],
    ["traversal in the disk id", () => `/v1/disks/..%2F..%2Fetc/shards/${validIds()}`, /diskId/],
    ["encoded traversal %2e%2e%2f in an id", () => `/v1/disks/a/shards/%2e%2e%2f%2e%2e%2fx/${hexId(prng)}/0/1`, /objectId/],
    ["encoded dot-dot disk", () => `/v1/disks/%2e%2e/shards/${validIds()}`, /diskId/],
    ["raw ../ segments", () => `/v1/disks/a/../../../tmp/shards/${validIds()}`, /no such route/],
    ["bucket name with a slash", () => `/v1/buckets/..%2Fescape`, /bucket: must match/],
  ])("refuses %s with 400 ERR_INVALID_ARGUMENT", async (_name, makePath, message) => {
    const request: RawRequest = { method: "GET", path: makePath() };
    const response = await send(node, { ...request, headers: signedHeaders(node, request) });
    expect(response.status).toBe(400);
    expect(response.body.code).toBe("ERR_INVALID_ARGUMENT");
    expect(response.body.message).toMatch(message);
  });

  it("refuses shard PUTs with traversal ids before reading a byte", async () => {
    const shard = await makeShard(prng, { objectLength: 2 * BLOCK_BYTES, blockBytes: BLOCK_BYTES });
    for (const path of [`/v1/disks/%2e%2e/shards/${validIds()}`, `/v1/disks/a/shards/..%2f..%2f${"0".repeat(26)}/${hexId(prng)}/0/1`]) {
      const request: RawRequest = { method: "PUT", path, body: shard.file, streaming: true };
      const response = await send(node, { ...request, headers: signedHeaders(node, request) });
      expect(response.status).toBe(400);
    }
  });

  it("refuses a shard PUT without Content-Length (chunked) and one over the largest shard", async () => {
    const shard = await makeShard(prng, { objectLength: 2 * BLOCK_BYTES, blockBytes: BLOCK_BYTES });
    const path = shardPath("a", shard.id);
    // Signed as it is sent: no Content-Length at all.
    const signed = signRequest(node.dirs.secret, { nodeId: node.nodeId, method: "PUT", pathAndQuery: path, contentSha256: UNSIGNED_STREAMING });
    const headers = { ...signed, "content-type": "application/octet-stream" };
    const client2 = new Client(node.url);
    try {
      const chunked = await client2.request({ method: "PUT", path, headers, body: Readable.from(inPieces(shard.file, 100)) });
      expect(chunked.statusCode).toBe(400);
      expect(await chunked.body.json()).toMatchObject({ code: "ERR_INVALID_ARGUMENT", message: "shard body: chunked transfer encoding is refused; send Content-Length" });
    } finally {
      await client2.close();
    }
    const huge = String(SHARD_FILE_BYTES_MAX + 1);
    const answer = await rawShardUploadDeclared(node, path, huge);
    expect(answer).toMatch(/^HTTP\/1\.1 413/);
    expect(answer).toContain("ERR_SHARD_TOO_LONG");
    expect(await shardIsAbsent(client, "a", shard)).toBe(true);
  });

  it("a truncated body (client declares more, sends less, hangs up) commits nothing", async () => {
    const shard = await makeShard(prng, { objectLength: 40 * BLOCK_BYTES, blockBytes: BLOCK_BYTES });
    await rawShardUpload(node, "a", shard, shard.file.length, shard.file.subarray(0, shard.file.length >> 1));
    expect(await shardIsAbsent(client, "a", shard)).toBe(true);
  });

  it("a body longer than its shard header declares is refused (ERR_SHARD_TOO_LONG)", async () => {
    const shard = await makeShard(prng, { objectLength: 3 * BLOCK_BYTES, blockBytes: BLOCK_BYTES });
    const longer = Buffer.concat([shard.file, Buffer.alloc(shardLayout(shard.header).frameBytes)]);
    await expect(client.writeShard("a", shard.id, inPieces(longer, 1000), longer.length)).rejects.toMatchObject({ code: "ERR_SHARD_TOO_LONG" });
    expect(await shardIsAbsent(client, "a", shard)).toBe(true);
  });

  it("a body that runs past or stops short of its declared length fails in the client, as it would locally", async () => {
    const shard = await makeShard(prng, { objectLength: 3 * BLOCK_BYTES, blockBytes: BLOCK_BYTES });
    const length = shard.file.length;
    await expect(client.writeShard("a", shard.id, inPieces(shard.file, 1000), length - 10)).rejects.toMatchObject({ code: "ERR_SHARD_TOO_LONG" });
    // The extra bytes start exactly at a piece boundary: the node must not get the declared bytes and commit.
    const exactThenMore = Buffer.concat([shard.file, Buffer.alloc(1000)]);
    await expect(client.writeShard("a", shard.id, inPieces(exactThenMore, length), length)).rejects.toMatchObject({ code: "ERR_SHARD_TOO_LONG" });
    await expect(client.writeShard("a", shard.id, inPieces(shard.file.subarray(0, length - 10), 1000), length)).rejects.toMatchObject({ code: "ERR_SHARD_TRUNCATED" });
    expect(await shardIsAbsent(client, "a", shard)).toBe(true);
  });

  it("a body whose source fails reports the source's error, and commits nothing", async () => {
    const shard = await makeShard(prng, { objectLength: 3 * BLOCK_BYTES, blockBytes: BLOCK_BYTES });
    const failing = async function* (): AsyncGenerator<Buffer> {
      yield shard.file.subarray(0, 2000);
      throw new Error("encoder broke");
    };
    await expect(client.writeShard("a", shard.id, failing(), shard.file.length)).rejects.toThrow("encoder broke");
    expect(await shardIsAbsent(client, "a", shard)).toBe(true);
  });

  it("a raw body over its Content-Length: only the declared bytes are the shard (too short for its header), the rest a bad request", async () => {
    const shard = await makeShard(prng, { objectLength: 3 * BLOCK_BYTES, blockBytes: BLOCK_BYTES });
    const answer = await rawShardUpload(node, "a", shard, shard.file.length - 10, shard.file);
    // The node's ERR_SHARD_TRUNCATED or the HTTP parser's refusal of the 10 stray bytes: both 400.
    expect(answer).toMatch(/^HTTP\/1\.1 400/);
    expect(await shardIsAbsent(client, "a", shard)).toBe(true);
  });

  it("a chunk with a wrong checksum fails the write (ERR_SHARD_CHECKSUM, 422)", async () => {
    const shard = await makeShard(prng, { objectLength: 8 * BLOCK_BYTES, blockBytes: BLOCK_BYTES });
    const corrupt = Buffer.from(shard.file);
    const byte = SHARD_HEADER_BYTES + 5 * shardLayout(shard.header).frameBytes + 17;
    corrupt[byte] = (corrupt[byte] ?? 0) ^ 0x40;
    const error = await client.writeShard("a", shard.id, inPieces(corrupt, 700), corrupt.length).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: "ERR_SHARD_CHECKSUM", details: { chunkIndex: 5, status: 422 } });
    expect(await shardIsAbsent(client, "a", shard)).toBe(true);
  });

  it("a header of another shard index, or a broken header, fails the write (ERR_SHARD_HEADER)", async () => {
    const shard = await makeShard(prng, { objectLength: 2 * BLOCK_BYTES, blockBytes: BLOCK_BYTES, shardIndex: 1 });
    const elsewhere = { ...shard.id, shardIndex: 2 };
    await expect(client.writeShard("a", elsewhere, inPieces(shard.file, 500), shard.file.length)).rejects.toMatchObject({ code: "ERR_SHARD_HEADER" });
    const broken = Buffer.from(shard.file);
    broken[0] = 0;
    await expect(client.writeShard("a", shard.id, inPieces(broken, 500), broken.length)).rejects.toMatchObject({ code: "ERR_SHARD_HEADER" });
    expect(await shardIsAbsent(client, "a", shard)).toBe(true);
    expect(await shardIsAbsent(client, "a", { ...shard, id: elsewhere })).toBe(true);
  });

  it("an early refusal of a large upload still reaches the client as its real error", async () => {
    const shard = await makeShard(prng, { objectLength: 2 * BLOCK_BYTES, blockBytes: BLOCK_BYTES });
    const big = Buffer.alloc(32 * 1024 * 1024);
    shard.file.copy(big);
    big[0] = 0; // bad magic: refused after 80 bytes, while megabytes are still on their way
    await expect(client.writeShard("a", shard.id, inPieces(big, 64 * 1024), big.length)).rejects.toMatchObject({ code: "ERR_SHARD_HEADER" });
  });

  it("refuses bad JSON: over the body limit, malformed, wrong field types", async () => {
    const over: RawRequest = { method: "PUT", path: recordsPath("a"), body: Buffer.alloc(RECORD_BODY_BYTES_MAX + 1, 0x20) };
    expect(await send(node, { ...over, headers: signedHeaders(node, over) })).toMatchObject({
      status: 413,
      body: { code: "ERR_INVALID_ARGUMENT", message: `body: over the ${RECORD_BODY_BYTES_MAX}-byte limit` },
    });
    const malformed: RawRequest = { method: "PUT", path: recordsPath("a"), body: Buffer.from("{nope") };
    expect(await send(node, { ...malformed, headers: signedHeaders(node, malformed) })).toMatchObject({ status: 400, body: { code: "ERR_INVALID_ARGUMENT", message: "body: not valid JSON" } });
    const shard = await makeShard(prng, { objectLength: BLOCK_BYTES, blockBytes: BLOCK_BYTES });
    const wrongType: RawRequest = { method: "PUT", path: recordsPath("a"), body: Buffer.from(JSON.stringify({ record: { ...record(shard), size: "big" } })) };
    expect(await send(node, { ...wrongType, headers: signedHeaders(node, wrongType) })).toMatchObject({
      status: 400,
      body: { code: "ERR_INVALID_ARGUMENT", message: `record.size: must be an integer in 0..${5 * 1024 ** 4}` },
    });
    expect(await client.getRecords("a", "bucket-1", `key/${shard.id.objectId}`)).toEqual([]);
  });

  it("a chunk corrupted on disk cuts a streaming read: the client sees an error, never a short success", async () => {
    const shard = await makeShard(prng, { objectLength: 64 * BLOCK_BYTES, blockBytes: BLOCK_BYTES });
    await client.writeShard("b", shard.id, inPieces(shard.file, 64 * 1024), shard.file.length);
    const path = await findShardFile(node.dirs, shard);
    const layout = shardLayout(shard.header);
    const handle = await open(path, "r+");
    await handle.write(Buffer.from([0xff, 0x00, 0xff]), 0, 3, SHARD_HEADER_BYTES + 60 * layout.frameBytes + 3);
    await handle.close();
    const whole = await readOutcome(client.readShard("b", shard.id));
    expect(whole.error).toBeDefined();
    expect(whole.bytes.length).toBeLessThan(shard.file.length);
    expect(whole.error).toMatchObject({ code: expect.stringMatching(/^ERR_SHARD_(TRUNCATED|CHECKSUM)$/) });
    // A range that starts at the bad chunk fails before any byte: the node's own error code.
    const range = await readOutcome(client.readShard("b", shard.id, { firstStripe: 60, stripeCount: 2 }));
    expect(range.error).toMatchObject({ code: "ERR_SHARD_CHECKSUM", details: { status: 422 } });
    const clean = await readAll(client.readShard("b", shard.id, { firstStripe: 10, stripeCount: 5 }));
    expect(clean.equals(shard.file.subarray(SHARD_HEADER_BYTES + 10 * layout.frameBytes, SHARD_HEADER_BYTES + 15 * layout.frameBytes))).toBe(true);
  });

  it("no file outside the disk directories was created by any of it", async () => {
    const after = await listFiles(node.dirs.root);
    for (const path of after.keys()) {
      if (!before.has(path)) expect(node.dirs.disks.some((disk) => path.startsWith(`${disk}/`))).toBe(true);
    }
    // Where the traversal attempts above would have landed, relative to a disk directory.
    for (const escaped of [join(node.dirs.root, "..", "etc"), join(node.dirs.root, "escape"), join(node.dirs.root, "..", "escape"), join(node.dirs.root, "tmp")]) {
      await expect(stat(escaped)).rejects.toMatchObject({ code: "ENOENT" });
    }
  });
});

async function rawShardUploadDeclared(node: NodeProcess, path: string, declared: string): Promise<string> {
  const signed = signRequest(node.dirs.secret, { nodeId: node.nodeId, method: "PUT", pathAndQuery: path, contentSha256: UNSIGNED_STREAMING, contentLength: declared });
  const socket = connect(node.port, "127.0.0.1");
  await once(socket, "connect");
  const headerLines = Object.entries(signed).map(([name, value]) => `${name}: ${value}\r\n`).join("");
  socket.write(`PUT ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/octet-stream\r\ncontent-length: ${declared}\r\n${headerLines}\r\n`);
  let answer = "";
  socket.on("data", (piece: Buffer) => (answer += piece.toString("latin1")));
  await delay(300);
  socket.destroy();
  return answer;
}

// --- CLI flags ------------------------------------------------------------------------------------

describe("CLI: each bad flag exits 2 with its message and no stack trace", () => {
  let dirs: NodeDirs;
  let shortSecret: string;
  let aFile: string;
  let badConfig: string;

  beforeAll(async () => {
    dirs = await makeNodeDirs(prng);
    const scratch = await makeTempDir("tessera-cli-");
    shortSecret = join(scratch, "short-secret");
    await writeFile(shortSecret, "too-short\n");
    aFile = join(scratch, "a-file");
    await writeFile(aFile, "not a directory");
    badConfig = join(scratch, "node.yaml");
    await writeFile(badConfig, "id: n1\ndiskz: [/tmp/x]\n");
  });

  const base = (): string[] => ["storage-node", "--id", "n1", "--listen", "127.0.0.1:0", "--disk", dirs.disks[0] ?? "", "--secret-file", dirs.secretFile];
  const without = (flag: string): string[] => {
    const args = base();
    const at = args.indexOf(flag);
    args.splice(at, 2);
    return args;
  };

  const cases: [string, () => string[], RegExp, NodeJS.ProcessEnv?][] = [
    ["unknown flag", () => [...base(), "--bogus"], /Unknown option '--bogus'/],
    ["missing --id", () => without("--id"), /--id is required/],
    ["bad node id", () => [...without("--id"), "--id", "n 1"], /--id: 'n 1' is not a node id/],
    ["listen without a port", () => [...without("--listen"), "--listen", "127.0.0.1"], /--listen: '127.0.0.1' is not HOST:PORT/],
    ["listen port out of range", () => [...without("--listen"), "--listen", "127.0.0.1:70000"], /--listen: port 70000 is over 65535/],
    ["listen on a bad host", () => [...without("--listen"), "--listen", "no host!:80"], /--listen: 'no host!' is not an IP address or host name/],
    ["missing --disk", () => without("--disk"), /--disk is required at least once/],
    ["disk dir that cannot be created", () => [...base(), "--disk", `${aFile}/under-a-file`], /--disk: cannot create disk directory .*under-a-file \(ENOTDIR\)/],
    ["two disks with one id", () => [...base(), "--disk", `${dirs.root}/other/a`], /--disk: two disks have the id 'a'/],
    ["missing --secret-file", () => without("--secret-file"), /--secret-file is required/],
    ["secret file that does not exist", () => [...without("--secret-file"), "--secret-file", `${dirs.root}/nope`], /secret file .*nope: cannot read it \(ENOENT\)/],
    ["secret too short", () => [...without("--secret-file"), "--secret-file", shortSecret], /the secret must be 32\.\.4096 bytes, got 9/],
    ["bad capacity", () => [...base(), "--capacity-bytes", "12GB"], /--capacity-bytes: '12GB' is not a positive whole number of bytes/],
    ["bad direct I/O mode", () => [...base(), "--direct-io", "sometimes"], /--direct-io: 'sometimes' is not a direct I\/O mode \(auto or off\)/],
    ["bad direct I/O mode from the environment", () => base(), /TESSERA_DIRECT_IO: 'on' is not a direct I\/O mode/, { TESSERA_DIRECT_IO: "on" }],
    ["bad log level", () => [...base(), "--log-level", "loud"], /--log-level: 'loud' is not one of/],
    ["unknown config field", () => [...base(), "--config", badConfig], /unknown field 'diskz'/],
    ["bad listen from the environment", () => without("--listen"), /TESSERA_LISTEN: 'nowhere' is not HOST:PORT/, { TESSERA_LISTEN: "nowhere" }],
    ["heap growing percent not a number", () => base(), /TESSERA_HEAP_GROWING_PERCENT: 'lots' is not a whole number of percent in 0\.\.900/, { TESSERA_HEAP_GROWING_PERCENT: "lots" }],
    ["heap growing percent over the bound", () => base(), /TESSERA_HEAP_GROWING_PERCENT: '901' is not a whole number/, { TESSERA_HEAP_GROWING_PERCENT: "901" }],
    ["heap growing percent negative", () => base(), /TESSERA_HEAP_GROWING_PERCENT: '-5' is not a whole number/, { TESSERA_HEAP_GROWING_PERCENT: "-5" }],
  ];

  it("rejects every bad flag", async () => {
    const results = await Promise.all(cases.map(([, args, , env]) => runTessera(args(), env)));
    results.forEach((result, index) => {
      const [name, , message] = cases[index] ?? ["?", () => [], /./];
      expect({ name, code: result.code }).toEqual({ name, code: 2 });
      expect(result.stderr, name).toMatch(message);
      expect(result.stderr, name).not.toMatch(/\n\s+at /);
    });
  });

  it("--help prints the flags and exits 0", async () => {
    const result = await runTessera(["storage-node", "--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("--secret-file FILE");
  });

  it("starts from a YAML config file and TESSERA_* variables", async () => {
    const scratch = await makeTempDir("tessera-config-");
    const config = join(scratch, "node.yaml");
    await writeFile(config, `id: n7\nlisten: 127.0.0.1:0\ndirectIo: "off"\ndisks:\n  - ${join(scratch, "x")}\n  - ssd=${join(scratch, "y")}\n`);
    const node = await startNode(prng, {
      nodeId: "n7",
      dirs: { ...dirs, disks: [], diskIds: [] },
      extraArgs: ["--config", config],
      logLevel: "info",
    });
    const health = await node.client().health();
    expect(health).toMatchObject({ nodeId: "n7" });
    expect(health.disks.map((disk) => disk.diskId).sort()).toEqual(["ssd", "x"]);
    // Both disks were told: no O_DIRECT (the config file's directIo).
    expect(node.output().match(/direct I\/O is off/g)).toHaveLength(2);
    expect((await node.stop()).code).toBe(0);
  });
});

// --- Shutdown --------------------------------------------------------------------------------------

describe("graceful shutdown on SIGTERM", () => {
  it("finishes a write that completes during the drain, aborts a stalled one, and exits in time", async () => {
    const node = await startNode(prng);
    const client = node.client();
    const finishing = await makeShard(prng, { objectLength: 16 * BLOCK_BYTES, blockBytes: BLOCK_BYTES });
    const stalled = await makeShard(prng, { objectLength: 16 * BLOCK_BYTES, blockBytes: BLOCK_BYTES });
    const slowly = async function* (file: Buffer, pauseMs: number): AsyncGenerator<Buffer> {
      yield file.subarray(0, 1000);
      await delay(pauseMs);
      yield file.subarray(1000);
    };
    const finished = client.writeShard("a", finishing.id, slowly(finishing.file, 1_000), finishing.file.length);
    const aborted = client.writeShard("a", stalled.id, slowly(stalled.file, 60_000), stalled.file.length).catch((error: unknown) => error);
    await delay(300);
    const started = Date.now();
    node.kill("SIGTERM");
    const status = await node.exited;
    const tookMs = Date.now() - started;
    expect(status.code).toBe(0);
    expect(tookMs).toBeLessThan(SHUTDOWN_DEADLINE_MS + EXIT_MARGIN_MS);
    await expect(finished).resolves.toBeUndefined();
    expect(await aborted).toMatchObject({ code: expect.stringMatching(/^ERR_(NODE_UNAVAILABLE|INCOMPLETE_BODY)$/) });
    const again = await startNode(prng, { dirs: node.dirs });
    const client2 = again.client();
    expect((await readAll(client2.readShard("a", finishing.id))).equals(finishing.file)).toBe(true);
    expect(await shardIsAbsent(client2, "a", stalled)).toBe(true);
    expect((await again.stop()).code).toBe(0);
    console.log(`SIGTERM with a stalled upload: exited in ${tookMs} ms`);
  });

  it("an idle node exits promptly", async () => {
    const node = await startNode(prng);
    await node.client().health();
    const started = Date.now();
    const status = await node.stop();
    expect(status.code).toBe(0);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

// --- Leases over the wire ------------------------------------------------------------------------------

describe("leases and fenced record writes over HTTP", () => {
  it("grant, refuse a second holder, accept a fenced write under the grant, refuse a stale fence, release", async () => {
    const node = await startNode(prng);
    const client = node.client();
    const shard = await makeShard(prng, { objectLength: BLOCK_BYTES, blockBytes: BLOCK_BYTES });
    const target = record(shard);
    const holder = hexId(prng);
    const grant = await client.acquireLease("a", { bucket: target.bucket, key: target.key, holder, ttlMs: 10_000 });
    if (!grant.granted) throw new Error("first lease refused");
    const other = await client.acquireLease("a", { bucket: target.bucket, key: target.key, holder: hexId(prng), ttlMs: 10_000 });
    expect(other.granted).toBe(false);
    if (!other.granted) expect(other.retryAfterMs).toBeGreaterThan(0);
    expect((await client.putRecord("a", target, { holder, token: grant.token })).result).toBe("stored");
    const stale = await client.putRecord("a", { ...target, revision: 1 }, { holder, token: grant.token - 1 }).catch((error: unknown) => error);
    expect(stale).toMatchObject({ code: "ERR_VERSION_CONFLICT", details: { kind: "fenced", status: 409 } });
    expect(await client.releaseLease("a", target.bucket, target.key, { holder, token: grant.token })).toBe(true);
    expect(await client.releaseLease("a", target.bucket, target.key, { holder, token: grant.token })).toBe(false);
    await expect(client.acquireLease("a", { bucket: target.bucket, key: target.key, holder, ttlMs: 0 })).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
    expect(await client.getRecords("a", target.bucket, target.key)).toEqual([target]);
    expect((await node.stop()).code).toBe(0);
  });
});

// --- Health and metrics ----------------------------------------------------------------------------

describe("health and metrics", () => {
  it("report every disk and count requests", async () => {
    const node = await startNode(prng);
    const client = node.client();
    const shard = await makeShard(prng, { objectLength: 5 * BLOCK_BYTES, blockBytes: BLOCK_BYTES });
    await client.writeShard("a", shard.id, inPieces(shard.file, 4096), shard.file.length);
    await client.putRecord("a", record(shard));
    const health = await client.health();
    expect(health.nodeId).toBe("n1");
    expect(health.disks.map((disk) => disk.diskId)).toEqual(["a", "b"]);
    const diskA = health.disks[0];
    expect(diskA).toMatchObject({ state: "ok", shardCount: 1, recordCount: 1 });
    expect(diskA?.freeBytes).toBeGreaterThan(0);
    const text = await client.metrics();
    expect(text).toContain('tessera_disk_state{disk="a",state="ok"} 1');
    expect(text).toContain('tessera_disk_state{disk="b",state="failed"} 0');
    expect(text).toContain('tessera_disk_shards{disk="a"} 1');
    expect(text).toContain('tessera_disk_records{disk="a"} 1');
    expect(text).toMatch(/tessera_disk_free_bytes\{disk="b"\} [1-9]/);
    expect(text).toMatch(/tessera_node_requests_total\{route="\/v1\/disks\/:diskId\/shards\/:objectId\/:versionId\/:partNumber\/:shardIndex",method="PUT",status="204"\} 1/);
    expect(text).toContain(`tessera_node_shard_bytes_received_total ${shard.file.length}`);
    expect(text).toMatch(/tessera_node_request_duration_seconds_bucket\{le="[0-9.]+",route="\/v1\/health",method="GET"\}/);
    expect(text).toContain("tessera_node_process_cpu_seconds_total");
  });
});

// --- Record batches: many record operations in few requests ----------------------------------

describe("record batches (core/record-batch.ts) against a real node", () => {
  it("sends concurrent record operations in few requests, each answered on its own", async () => {
    const node = await startNode(prng);
    const client = node.client();
    const bucket = "batch-bucket";
    await client.putBucket({ name: bucket, created: Date.now() });
    const records = Array.from({ length: 40 }, (_, index) => contractRecord(prng, { bucket, key: `k${index}` }));
    const disk = node.dirs.diskIds[0] as string;
    const replies = await Promise.all(records.map((each) => client.putRecord(disk, each)));
    expect(replies.every((reply) => reply.result === "stored" && reply.olderVersions === 0)).toBe(true);
    const outcomes = await Promise.allSettled([
      ...records.map((each) => client.getRecords(disk, bucket, each.key)),
      client.getRecords("no-such-disk", bucket, "k0"),
      client.getRecords(disk, bucket, "k".repeat(OBJECT_KEY_BYTES_MAX + 1)),
    ]);
    for (const [index, each] of records.entries()) {
      const outcome = outcomes[index];
      expect(outcome?.status === "fulfilled" ? outcome.value : outcome).toEqual([each]);
    }
    const [noDisk, badKey] = outcomes.slice(records.length);
    expect(noDisk?.status === "rejected" && isTesseraError(noDisk.reason, "ERR_NOT_FOUND")).toBe(true);
    expect(badKey?.status === "rejected" ? badKey.reason : badKey).toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
    const text = await client.metrics();
    // Batches travel as frames on the record channel (core/record-channel.ts).
    const batches = [...text.matchAll(/tessera_node_requests_total\{route="\/v1\/records\/batch",method="FRAME",status="200"\} (\d+)/g)].reduce((sum, match) => sum + Number(match[1]), 0);
    // 82 operations; at most BATCHES_IN_FLIGHT_MAX go alone before the rest queue behind them.
    expect(batches).toBeGreaterThan(0);
    expect(batches).toBeLessThan(20);
    await node.stop();
  });

  it("refuses a malformed batch as a whole with ERR_INVALID_ARGUMENT", async () => {
    const node = await startNode(prng);
    for (const value of [{}, { ops: [] }, { ops: [{ op: "deleteEverything", diskId: "a" }] }, { ops: Array.from({ length: BATCH_OPS_MAX + 1 }, () => ({ op: "getRecords", diskId: "a", bucket: "b", key: "k" })) }]) {
      const body = Buffer.from(JSON.stringify(value));
      const request: RawRequest = { method: "POST", path: "/v1/records/batch", body };
      const response = await send(node, { ...request, headers: signedHeaders(node, request) });
      expect(response.status).toBe(400);
      expect(response.body.code).toBe("ERR_INVALID_ARGUMENT");
    }
    await node.stop();
  });
});
