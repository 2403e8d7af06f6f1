/**
 * The node end of record channels (core/record-channel.ts): takes the HTTP upgrade of
 * ROUTES.recordChannel, checks its signature as any request's, then reads request frames,
 * checks each one's MAC and sequence, runs its batch and writes the answers in order.
 *
 * A frame that fails its MAC, or breaks the framing (a length over the limit), closes the
 * connection: on a connection whose bytes cannot be trusted, no later frame can be either. A
 * batch the node refuses as a whole (bad JSON, bad ops) is answered {"error": ...} and the
 * channel goes on, as an HTTP 400 leaves a keep-alive connection open.
 */
import { timingSafeEqual } from "node:crypto";
import { STATUS_CODES, type IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import { TesseraError, isTesseraError } from "../core/errors.js";
import { RECORD_BODY_BYTES_MAX, ROUTES, type WireError } from "../core/internal-api.js";
import { AUTH_HEADERS, EMPTY_BODY_SHA256, type RequestVerifier } from "../core/internal-auth.js";
import { CHANNEL_FRAMES_IN_FLIGHT_MAX, CHANNEL_PROTOCOL, FRAME_MAC_BYTES, FrameReader, encodeFrame, frameMac } from "../core/record-channel.js";
import type { NodeMetrics } from "./metrics.js";

/** Metric labels of channel frames: the batch route's, with their own method. */
const FRAME_METRIC = { route: ROUTES.recordBatch, method: "FRAME" } as const;

export interface RecordChannelServerOptions {
  readonly verifier: RequestVerifier;
  readonly log: Logger;
  readonly metrics: NodeMetrics;
  /** A channel with no traffic either way for this long is closed (as an idle HTTP socket). */
  readonly idleTimeoutMs: number;
  /** Runs one batch payload; resolves with the answer payload (never rejects for a bad batch). */
  readonly runBatch: (payload: Buffer) => Promise<string>;
  /** The server's one mapping of an error to its status and wire body. */
  readonly toWireError: (error: unknown) => { status: number; body: WireError };
}

/** Writes an HTTP error response on a socket that asked to upgrade, and closes it. */
function refuse(socket: Duplex, status: number, body: WireError): void {
  const text = JSON.stringify(body);
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`);
}

class ServerChannel {
  readonly #socket: Duplex;
  readonly #key: Buffer;
  readonly #options: RecordChannelServerOptions;
  readonly #reader = new FrameReader(FRAME_MAC_BYTES, RECORD_BODY_BYTES_MAX);
  #sequence = 0;
  #working = 0;
  /** The answer written last: the next one is written after it, so answers keep frame order. */
  #tail: Promise<void> = Promise.resolve();
  #closing = false;

  constructor(socket: Duplex, key: Buffer, head: Buffer, options: RecordChannelServerOptions) {
    this.#socket = socket;
    this.#key = key;
    this.#options = options;
    socket.on("data", (piece: Buffer) => this.#onData(piece));
    socket.on("error", (error) => options.log.debug({ err: error }, "record channel broke"));
    if (head.length > 0) this.#onData(head);
  }

  get closed(): Promise<void> {
    return new Promise((resolve) => (this.#socket.destroyed ? resolve() : this.#socket.once("close", () => resolve())));
  }

  /** Reads no more frames; answers the ones already read, then ends the connection. */
  async close(): Promise<void> {
    this.#closing = true;
    this.#socket.pause();
    await this.#tail;
    this.#socket.end();
  }

  destroy(): void {
    this.#socket.destroy();
  }

  #onData(piece: Buffer): void {
    if (this.#closing) return;
    let frames;
    try {
      frames = this.#reader.push(piece);
    } catch (error) {
      this.#options.log.warn({ err: error }, "record channel: bad framing; connection closed");
      this.#socket.destroy();
      return;
    }
    for (const frame of frames) {
      const expected = frameMac(this.#key, this.#sequence, frame.payload);
      if (!timingSafeEqual(expected, frame.mac)) {
        this.#options.metrics.authFailures.inc();
        this.#options.log.warn({ sequence: this.#sequence }, "record channel: a frame failed its MAC (altered, replayed or out of order); connection closed");
        this.#socket.destroy();
        return;
      }
      this.#sequence += 1;
      this.#work(frame.payload);
    }
  }

  #work(payload: Buffer): void {
    const started = process.hrtime.bigint();
    this.#working += 1;
    if (this.#working >= CHANNEL_FRAMES_IN_FLIGHT_MAX) this.#socket.pause();
    const answer = this.#options.runBatch(payload);
    this.#tail = this.#tail.then(async () => {
      const text = await answer;
      this.#working -= 1;
      if (!this.#socket.destroyed) this.#socket.write(encodeFrame(Buffer.from(text, "utf8")));
      // Read on only while the client takes its answers: one that sends and never reads
      // stops being read, instead of filling this process with answers.
      if (this.#working < CHANNEL_FRAMES_IN_FLIGHT_MAX && !this.#closing) {
        if (this.#socket.writableNeedDrain) this.#socket.once("drain", () => this.#closing || this.#socket.resume());
        else this.#socket.resume();
      }
      const { metrics } = this.#options;
      metrics.requests.inc({ ...FRAME_METRIC, status: text.startsWith('{"error"') ? "400" : "200" });
      metrics.requestSeconds.observe(FRAME_METRIC, Number(process.hrtime.bigint() - started) / 1e9);
    });
  }
}

export class RecordChannelServer {
  readonly #options: RecordChannelServerOptions;
  readonly #channels = new Set<ServerChannel>();
  #closing = false;

  constructor(options: RecordChannelServerOptions) {
    this.#options = options;
  }

  /** The HTTP server's 'upgrade' event: a channel opening, or a refusal as an HTTP response. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => undefined);
    const url = request.url ?? "";
    if (url !== ROUTES.recordChannel || request.method !== "GET") {
      refuse(socket, 404, { code: "ERR_INVALID_ARGUMENT", message: `no such route to upgrade: ${request.method} ${url}`, details: {} });
      return;
    }
    if (request.headers.upgrade?.toLowerCase() !== CHANNEL_PROTOCOL) {
      refuse(socket, 400, { code: "ERR_INVALID_ARGUMENT", message: `upgrade: ${CHANNEL_PROTOCOL} is the only protocol served`, details: { upgrade: request.headers.upgrade } });
      return;
    }
    if (this.#closing) {
      refuse(socket, 503, { code: "ERR_NODE_UNAVAILABLE", message: "the node is shutting down", details: {} });
      return;
    }
    try {
      const signed = this.#options.verifier.verify("GET", url, request.headers);
      if (signed !== EMPTY_BODY_SHA256) throw new TesseraError("ERR_UNAUTHORIZED", "internal request refused: the channel opening takes no body; sign the empty body", { reason: "body" });
    } catch (error) {
      if (isTesseraError(error, "ERR_UNAUTHORIZED")) this.#options.metrics.authFailures.inc();
      const { status, body } = this.#options.toWireError(error);
      refuse(socket, status, body);
      return;
    }
    const key = this.#options.verifier.channelKey(request.headers[AUTH_HEADERS.nonce] as string);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${CHANNEL_PROTOCOL}\r\nconnection: Upgrade\r\n\r\n`);
    if ("setNoDelay" in socket && typeof socket.setNoDelay === "function") socket.setNoDelay(true);
    if ("setTimeout" in socket && typeof socket.setTimeout === "function") socket.setTimeout(this.#options.idleTimeoutMs, () => socket.destroy());
    const channel = new ServerChannel(socket, key, head, this.#options);
    this.#channels.add(channel);
    void channel.closed.then(() => this.#channels.delete(channel));
  }

  /** Refuses new channels; answers the frames already read on each, then ends it. */
  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all([...this.#channels].map((channel) => channel.close()));
  }

  /** Cuts every channel (shutdown after the drain time). */
  destroyAll(): void {
    for (const channel of this.#channels) channel.destroy();
  }
}
