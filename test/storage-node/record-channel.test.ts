/**
 * Record channels (core/record-channel.ts): the framing, and real node processes answering
 * frames over real sockets: opening, MACs, replays, bad frames, a node that stops answering,
 * shutdown, and the fall back to HTTP batches for a node that predates channels. Seeded.
 */
import { once } from "node:events";
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { isTesseraError } from "../../core/errors.js";
import { HttpNodeClient } from "../../core/http-node-client.js";
import { ROUTES } from "../../core/internal-api.js";
import { AUTH_HEADERS, ClusterSecret, EMPTY_BODY_SHA256, RequestVerifier, channelKey, signRequest } from "../../core/internal-auth.js";
import { getRecordsOp } from "../../core/record-batch.js";
import { CHANNEL_PROTOCOL, FRAME_LENGTH_BYTES, FRAME_MAC_BYTES, FrameReader, encodeFrame, frameMac } from "../../core/record-channel.js";
import { pino } from "pino";
import type { StorageNode } from "../../core/storage-api.js";
import { NodeMetrics } from "../../storage-node/metrics.js";
import { RecordChannelServer } from "../../storage-node/record-channel-server.js";
import { Prng, seedFromEnv } from "../prng.js";
import { contractRecord } from "../storage-contract.js";
import { startNode, useNodeHarness, type NodeProcess } from "./harness.js";

const seed = seedFromEnv(0x5eed_0c4a);
console.log(`record-channel.test seed ${seed} (replay with TEST_SEED=${seed})`);
const prng = new Prng(seed);
useNodeHarness();

/** How long a test waits for a socket to close or answer: far above a loopback exchange. */
const SOCKET_WAIT_MS = 5_000;
/** The client's answer timeout in the hung-node test: short, so the test is quick. */
const HUNG_ANSWER_TIMEOUT_MS = 1_000;

describe("FrameReader", () => {
  it("cuts any split of a stream of frames into the frames sent", () => {
    for (let round = 0; round < 50; round++) {
      const payloads = Array.from({ length: prng.int(1, 6) }, () => prng.bytes(prng.int(0, 300)));
      const macs = payloads.map(() => prng.bytes(FRAME_MAC_BYTES));
      const stream = Buffer.concat(payloads.map((payload, index) => encodeFrame(payload, macs[index])));
      const reader = new FrameReader(FRAME_MAC_BYTES, 1024);
      const frames = [];
      for (let at = 0; at < stream.length; ) {
        const next = Math.min(stream.length, at + prng.int(1, 40));
        frames.push(...reader.push(stream.subarray(at, next)));
        at = next;
      }
      expect(frames.map((frame) => frame.payload)).toEqual(payloads);
      expect(frames.map((frame) => frame.mac)).toEqual(macs);
      expect(reader.bufferedBytes).toBe(0);
    }
  });

  it("refuses a frame longer than its limit from the length prefix alone", () => {
    const reader = new FrameReader(0, 100);
    const head = Buffer.alloc(FRAME_LENGTH_BYTES);
    head.writeUInt32BE(101);
    expect(() => reader.push(head)).toThrow(/101 bytes is over the 100-byte limit/);
    expect(new FrameReader(0, 100).push(encodeFrame(Buffer.alloc(100)))).toHaveLength(1);
  });

  it("keys each frame's MAC by its sequence number and its channel", () => {
    const secret = ClusterSecret.fromBytes(prng.bytes(32));
    const key = channelKey(secret, "n1", "a".repeat(32));
    const payload = Buffer.from("{}");
    expect(frameMac(key, 0, payload)).not.toEqual(frameMac(key, 1, payload));
    expect(frameMac(key, 0, payload)).not.toEqual(frameMac(channelKey(secret, "n1", "b".repeat(32)), 0, payload));
    expect(frameMac(key, 0, payload)).not.toEqual(frameMac(channelKey(secret, "n2", "a".repeat(32)), 0, payload));
    expect(frameMac(key, 7, payload)).toEqual(frameMac(key, 7, Buffer.from("{}")));
  });
});

// --- A channel opened by hand, to send what HttpNodeClient never would ------------------------

interface RawChannel {
  readonly socket: Socket;
  readonly status: number;
  /** The response head's text (status line and headers). */
  readonly head: string;
  /** The frame key, if the opening was signed with the node's secret. */
  readonly key: Buffer;
  /** Answer payloads as they arrive. */
  readonly answers: Buffer[];
  readonly closed: Promise<void>;
}

interface OpenOptions {
  readonly secret?: ClusterSecret;
  readonly path?: string;
  readonly protocol?: string;
  readonly signed?: boolean;
}

async function openRaw(node: NodeProcess, options: OpenOptions = {}): Promise<RawChannel> {
  const path = options.path ?? ROUTES.recordChannel;
  const secret = options.secret ?? node.dirs.secret;
  const signed = options.signed === false ? {} : signRequest(secret, { nodeId: node.nodeId, method: "GET", pathAndQuery: path, contentSha256: EMPTY_BODY_SHA256 });
  const lines = [`GET ${path} HTTP/1.1`, `host: 127.0.0.1:${node.port}`, "connection: Upgrade", `upgrade: ${options.protocol ?? CHANNEL_PROTOCOL}`];
  for (const [name, value] of Object.entries(signed)) lines.push(`${name}: ${value}`);
  const socket = connect(node.port, "127.0.0.1");
  const closed = once(socket, "close").then(() => undefined);
  socket.on("error", () => undefined);
  await once(socket, "connect");
  socket.write(`${lines.join("\r\n")}\r\n\r\n`);
  let received = Buffer.alloc(0);
  const headEnd = (): number => received.indexOf("\r\n\r\n");
  const deadline = Date.now() + SOCKET_WAIT_MS;
  while (headEnd() === -1) {
    if (Date.now() > deadline || socket.destroyed) throw new Error(`no response head; got ${JSON.stringify(received.toString())}`);
    const piece = socket.read() as Buffer | null;
    if (piece === null) await Promise.race([once(socket, "readable"), closed, delay(50)]);
    else received = Buffer.concat([received, piece]);
  }
  const head = received.subarray(0, headEnd()).toString("latin1");
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
  const rest = received.subarray(headEnd() + 4);
  const answers: Buffer[] = [];
  const reader = new FrameReader(0, 64 * 1024 * 1024);
  if (status === 101) {
    answers.push(...reader.push(rest).map((frame) => frame.payload));
    socket.on("data", (piece: Buffer) => answers.push(...reader.push(piece).map((frame) => frame.payload)));
  } else {
    answers.push(rest);
    socket.on("data", (piece: Buffer) => answers.push(piece));
  }
  const key = channelKey(secret, node.nodeId, String((signed as Record<string, string>)[AUTH_HEADERS.nonce]));
  return { socket, status, head, key, answers, closed };
}

function sendFrame(channel: RawChannel, sequence: number, payload: Buffer, mac: Buffer = frameMac(channel.key, sequence, payload)): void {
  channel.socket.write(encodeFrame(payload, mac));
}

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + SOCKET_WAIT_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

async function closesWithin(channel: RawChannel): Promise<boolean> {
  return Promise.race([channel.closed.then(() => true), delay(SOCKET_WAIT_MS).then(() => false)]);
}

function batchOf(...ops: string[]): Buffer {
  return Buffer.from(`{"ops":[${ops.join(",")}]}`);
}

async function metric(node: NodeProcess, pattern: RegExp): Promise<number> {
  const text = await node.client().metrics();
  return [...text.matchAll(pattern)].reduce((sum, match) => sum + Number(match[1]), 0);
}

const FRAMES_ANSWERED = /tessera_node_requests_total\{route="\/v1\/records\/batch",method="FRAME",status="200"\} (\d+)/g;
const POSTS_ANSWERED = /tessera_node_requests_total\{route="\/v1\/records\/batch",method="POST",status="\d+"\} (\d+)/g;
const AUTH_FAILURES = /tessera_node_auth_failures_total (\d+)/g;

describe("record channels against a real node", () => {
  it("carries HttpNodeClient's record batches as frames, answered each to its caller", async () => {
    const node = await startNode(prng);
    const client = node.client();
    const bucket = "channel-bucket";
    await client.putBucket({ name: bucket, created: Date.now() });
    const disk = node.dirs.diskIds[0] as string;
    const records = Array.from({ length: 30 }, (_, index) => contractRecord(prng, { bucket, key: `k${index}` }));
    await Promise.all(records.map((each) => client.putRecord(disk, each)));
    const read = await Promise.allSettled([...records.map((each) => client.getRecords(disk, bucket, each.key)), client.getRecords("no-such-disk", bucket, "k0")]);
    for (const [index, each] of records.entries()) expect(read[index]).toEqual({ status: "fulfilled", value: [each] });
    expect(read.at(-1)?.status === "rejected" && isTesseraError((read.at(-1) as PromiseRejectedResult).reason, "ERR_NOT_FOUND")).toBe(true);
    expect(await metric(node, FRAMES_ANSWERED)).toBeGreaterThan(0);
    expect(await metric(node, POSTS_ANSWERED)).toBe(0);
  });

  it("answers frames in order, keyed by the opening, and goes on after a batch it refuses", async () => {
    const node = await startNode(prng);
    const channel = await openRaw(node);
    expect(channel.status).toBe(101);
    expect(channel.head.toLowerCase()).toContain(`upgrade: ${CHANNEL_PROTOCOL}`);
    const disk = node.dirs.diskIds[0] as string;
    sendFrame(channel, 0, batchOf(getRecordsOp(disk, "some-bucket", "k1"), getRecordsOp("nope", "some-bucket", "k1")));
    sendFrame(channel, 1, Buffer.from("not json"));
    sendFrame(channel, 2, Buffer.from('{"ops":[]}'));
    sendFrame(channel, 3, batchOf(getRecordsOp(disk, "some-bucket", "k2")));
    await until("four answers", () => channel.answers.length === 4);
    const [first, notJson, empty, last] = channel.answers.map((payload) => JSON.parse(payload.toString()) as Record<string, unknown>);
    expect(first).toMatchObject({ results: [{ ok: { records: [] } }, { error: { code: "ERR_NOT_FOUND" } }] });
    expect(notJson).toMatchObject({ error: { code: "ERR_INVALID_ARGUMENT", message: expect.stringContaining("not JSON") } });
    expect(empty).toMatchObject({ error: { code: "ERR_INVALID_ARGUMENT" } });
    expect(last).toEqual({ results: [{ ok: { records: [] } }] });
    channel.socket.destroy();
  });

  it("closes the connection on a frame with a wrong MAC, a replayed frame, or a frame over the limit", async () => {
    const node = await startNode(prng);
    const disk = node.dirs.diskIds[0] as string;
    const payload = batchOf(getRecordsOp(disk, "some-bucket", "k"));
    const failuresBefore = await metric(node, AUTH_FAILURES);

    const forged = await openRaw(node);
    sendFrame(forged, 0, payload, prng.bytes(FRAME_MAC_BYTES));
    expect(await closesWithin(forged)).toBe(true);
    expect(forged.answers).toHaveLength(0);

    const replayed = await openRaw(node);
    const mac = frameMac(replayed.key, 0, payload);
    sendFrame(replayed, 0, payload, mac);
    await until("the first answer", () => replayed.answers.length === 1);
    sendFrame(replayed, 1, payload, mac); // frame 0's MAC again as frame 1
    expect(await closesWithin(replayed)).toBe(true);
    expect(replayed.answers).toHaveLength(1);

    const moved = await openRaw(node);
    sendFrame(moved, 0, payload, frameMac(replayed.key, 0, payload)); // another channel's frame
    expect(await closesWithin(moved)).toBe(true);

    expect(await metric(node, AUTH_FAILURES)).toBe(failuresBefore + 3);

    const huge = await openRaw(node);
    const head = Buffer.alloc(FRAME_LENGTH_BYTES + FRAME_MAC_BYTES);
    head.writeUInt32BE(0xffff_ffff);
    huge.socket.write(head);
    expect(await closesWithin(huge)).toBe(true);
    expect(node.output()).toContain("bad framing");
  });

  it("refuses openings that are unsigned, wrongly signed, for another route or another protocol", async () => {
    const node = await startNode(prng);
    const unsigned = await openRaw(node, { signed: false });
    expect(unsigned.status).toBe(401);
    const wrong = await openRaw(node, { secret: ClusterSecret.fromBytes(prng.bytes(32)) });
    expect(wrong.status).toBe(401);
    expect(Buffer.concat(wrong.answers).toString()).toContain("ERR_UNAUTHORIZED");
    const elsewhere = await openRaw(node, { path: "/v1/health" });
    expect(elsewhere.status).toBe(404);
    const websocket = await openRaw(node, { protocol: "websocket" });
    expect(websocket.status).toBe(400);
    for (const channel of [unsigned, wrong, elsewhere, websocket]) expect(await closesWithin(channel)).toBe(true);

    const client = new HttpNodeClient({ nodeId: node.nodeId, url: node.url, secret: ClusterSecret.fromBytes(prng.bytes(32)) });
    try {
      await expect(client.getRecords(node.dirs.diskIds[0] as string, "b", "k")).rejects.toMatchObject({ code: "ERR_UNAUTHORIZED" });
    } finally {
      await client.close();
    }
  });

  it("fails the batches of a node that stops answering, and opens a new channel once it answers again", async () => {
    const node = await startNode(prng);
    const client = new HttpNodeClient({ nodeId: node.nodeId, url: node.url, secret: node.dirs.secret, headersTimeoutMs: HUNG_ANSWER_TIMEOUT_MS });
    const disk = node.dirs.diskIds[0] as string;
    try {
      expect(await client.getRecords(disk, "b", "k")).toEqual([]);
      node.kill("SIGSTOP");
      const started = Date.now();
      try {
        await expect(client.getRecords(disk, "b", "k")).rejects.toMatchObject({ code: "ERR_NODE_UNAVAILABLE", message: expect.stringContaining("no answer within") });
        expect(Date.now() - started).toBeGreaterThanOrEqual(HUNG_ANSWER_TIMEOUT_MS - 50);
      } finally {
        node.kill("SIGCONT");
      }
      expect(await client.getRecords(disk, "b", "k")).toEqual([]);
      expect(await metric(node, POSTS_ANSWERED)).toBe(0);
    } finally {
      await client.close();
    }
  });

  it("fails a batch in flight when its node is killed; a node stopped with channels open exits cleanly", async () => {
    const killed = await startNode(prng);
    const client = killed.client();
    const disk = killed.dirs.diskIds[0] as string;
    expect(await client.getRecords(disk, "b", "k")).toEqual([]);
    killed.kill("SIGKILL");
    await killed.exited;
    await expect(client.getRecords(disk, "b", "k")).rejects.toMatchObject({ code: "ERR_NODE_UNAVAILABLE" });
    // That batch may have gone out on the channel's socket before the client saw it close (a
    // reset, not a refused connection: seen once in a loaded full run); the next one connects
    // afresh, and nothing listens.
    if (!client.refusing()) await expect(client.getRecords(disk, "b", "k")).rejects.toMatchObject({ code: "ERR_NODE_UNAVAILABLE" });
    expect(client.refusing()).toBe(true);

    const stopped = await startNode(prng);
    const idle = await openRaw(stopped);
    expect(await stopped.client().getRecords(disk, "b", "k")).toEqual([]);
    expect(await stopped.stop()).toEqual({ code: 0, signal: null });
    expect(await closesWithin(idle)).toBe(true);
  });
});

// --- A node from before channels ---------------------------------------------------------------

describe("a node that does not serve record channels", () => {
  it("gets its batches as HTTP requests after one opening answered 404", async () => {
    const seen: string[] = [];
    const server = createServer((request: IncomingMessage, response: ServerResponse) => {
      seen.push(`${request.method} ${request.url}`);
      request.resume();
      request.on("end", () => response.writeHead(200, { "content-type": "application/json" }).end('{"results":[{"ok":{"records":[]}}]}'));
    });
    // An older node: no 'upgrade' listener of its own, so it answers 404 as to any unknown route.
    server.on("upgrade", (request: IncomingMessage, socket: Socket) => {
      seen.push(`UPGRADE ${request.url}`);
      socket.end("HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}");
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    const client = new HttpNodeClient({ nodeId: "n1", url: `http://127.0.0.1:${port}`, secret: ClusterSecret.fromBytes(prng.bytes(32)) });
    try {
      expect(await client.getRecords("a", "b", "k1")).toEqual([]);
      expect(await client.getRecords("a", "b", "k2")).toEqual([]);
      expect(seen).toEqual([`UPGRADE ${ROUTES.recordChannel}`, `POST ${ROUTES.recordBatch}`, `POST ${ROUTES.recordBatch}`]);
    } finally {
      await client.close();
      server.close();
    }
  });
});

// --- Order of answers, with batches that finish out of order (in process) ---------------------

describe("RecordChannelServer", () => {
  it("answers frames in the order they came, however their batches finish", async () => {
    const secret = ClusterSecret.fromBytes(prng.bytes(32));
    // Each batch resolves after a delay that runs against its order: the last sent finishes first.
    const frames = 12;
    const channels = new RecordChannelServer({
      verifier: new RequestVerifier({ secret, nodeId: "n1" }),
      log: pino({ level: "silent" }),
      metrics: new NodeMetrics({} as StorageNode),
      idleTimeoutMs: SOCKET_WAIT_MS,
      runBatch: async (payload) => {
        const { index } = JSON.parse(payload.toString()) as { index: number };
        await delay((frames - index) * 15);
        return JSON.stringify({ answered: index });
      },
      toWireError: () => ({ status: 500, body: { code: "ERR_INTERNAL", message: "unexpected", details: {} } }),
    });
    const server = createServer((_request, response) => response.writeHead(404).end());
    server.on("upgrade", (request: IncomingMessage, socket: Socket, head: Buffer) => channels.handleUpgrade(request, socket, head));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    try {
      const signed = signRequest(secret, { nodeId: "n1", method: "GET", pathAndQuery: ROUTES.recordChannel, contentSha256: EMPTY_BODY_SHA256 });
      const opening = httpRequest({ host: "127.0.0.1", port, path: ROUTES.recordChannel, headers: { ...signed, connection: "Upgrade", upgrade: CHANNEL_PROTOCOL } });
      opening.end();
      const [, socket] = (await once(opening, "upgrade")) as [IncomingMessage, Socket];
      const key = channelKey(secret, "n1", signed[AUTH_HEADERS.nonce] as string);
      const reader = new FrameReader(0, 1024);
      const answers: number[] = [];
      socket.on("data", (piece: Buffer) => answers.push(...reader.push(piece).map((frame) => (JSON.parse(frame.payload.toString()) as { answered: number }).answered)));
      for (let index = 0; index < frames; index++) {
        const payload = Buffer.from(JSON.stringify({ index }));
        socket.write(encodeFrame(payload, frameMac(key, index, payload)));
      }
      await until("every answer", () => answers.length === frames);
      expect(answers).toEqual(Array.from({ length: frames }, (_, index) => index));
      socket.destroy();
    } finally {
      await channels.close();
      server.close();
    }
  });
});
