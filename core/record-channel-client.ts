/**
 * The client end of a record channel (core/record-channel.ts) to one node: opens it on first
 * use, sends each batch as a frame and hands back the node's answer payload, in order. A
 * channel that breaks (the node died, stopped answering, or refused a frame) fails every
 * batch waiting on it with ERR_NODE_UNAVAILABLE and is opened again for the next batch.
 */
import * as http from "node:http";
import * as https from "node:https";
import type { Socket } from "node:net";
import { TesseraError } from "./errors.js";
import { JSON_RESPONSE_BYTES_MAX, ROUTES } from "./internal-api.js";
import { AUTH_HEADERS, EMPTY_BODY_SHA256, channelKey, signRequest, type ClusterSecret } from "./internal-auth.js";
import { CHANNEL_PROTOCOL, FrameReader, encodeFrame, frameMac } from "./record-channel.js";

/** Bytes of a refusal's body read at most when a node answers the opening with an error. */
const REFUSAL_BODY_BYTES_MAX = 64 * 1024;

export interface RecordChannelOptions {
  readonly nodeId: string;
  /** The node's origin, e.g. http://127.0.0.1:9101. */
  readonly url: string;
  readonly secret: ClusterSecret;
  /** TCP connect plus the node's 101, as an HTTP request's connect timeout. */
  readonly connectTimeoutMs: number;
  /** From a frame sent to its answer; as an HTTP request's headers timeout. */
  readonly answerTimeoutMs: number;
  /** An idle channel is closed after this, as an idle keep-alive connection. */
  readonly idleTimeoutMs: number;
  /** The node's refusal of the opening, as a TesseraError (the HTTP client's own translation). */
  readonly refusal: (status: number, body: string) => TesseraError;
  /** A connection refused (nothing listens), or an answer received: StorageNode.refusing(). */
  readonly onRefused: () => void;
  readonly onAnswered: () => void;
}

interface Waiter {
  readonly resolve: (payload: Buffer) => void;
  readonly reject: (error: unknown) => void;
  readonly timer: NodeJS.Timeout;
}

/** One open channel: a socket, its key and the batches waiting for answers, oldest first. */
class Channel {
  readonly #socket: Socket;
  readonly #key: Buffer;
  readonly #options: RecordChannelOptions;
  readonly #reader = new FrameReader(0, JSON_RESPONSE_BYTES_MAX);
  readonly #waiters: Waiter[] = [];
  #sequence = 0;
  #idleTimer: NodeJS.Timeout | undefined;
  #failure: Error | undefined;

  constructor(socket: Socket, key: Buffer, head: Buffer, options: RecordChannelOptions, onClosed: () => void) {
    this.#socket = socket;
    this.#key = key;
    this.#options = options;
    socket.setNoDelay(true);
    socket.setTimeout(0);
    socket.on("data", (piece: Buffer) => this.#onData(piece));
    socket.on("error", (error) => this.#fail(this.#unavailable(`channel broke: ${error.message}`, error)));
    socket.on("close", () => {
      this.#fail(this.#unavailable("channel closed by the node"));
      onClosed();
    });
    if (head.length > 0) this.#onData(head);
    this.#idle();
  }

  get broken(): boolean {
    return this.#failure !== undefined || this.#socket.destroyed;
  }

  send(payload: Buffer): Promise<Buffer> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    clearTimeout(this.#idleTimer);
    this.#socket.ref();
    const mac = frameMac(this.#key, this.#sequence, payload);
    this.#sequence += 1;
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#fail(this.#unavailable(`no answer within ${this.#options.answerTimeoutMs} ms`));
      }, this.#options.answerTimeoutMs);
      this.#waiters.push({ resolve, reject, timer });
      this.#socket.write(encodeFrame(payload, mac));
    });
  }

  close(): void {
    this.#fail(this.#unavailable("channel closed"));
  }

  #onData(piece: Buffer): void {
    let frames;
    try {
      frames = this.#reader.push(piece);
    } catch (error) {
      this.#fail(this.#unavailable(`bad frame from the node: ${error instanceof Error ? error.message : String(error)}`));
      return;
    }
    for (const frame of frames) {
      const waiter = this.#waiters.shift();
      if (waiter === undefined) {
        this.#fail(this.#unavailable("the node answered a frame that was not sent"));
        return;
      }
      clearTimeout(waiter.timer);
      this.#options.onAnswered();
      waiter.resolve(frame.payload);
    }
    if (this.#waiters.length === 0) this.#idle();
  }

  /** No batch waits: the channel may close after the idle timeout, and keeps no process alive. */
  #idle(): void {
    if (this.#failure !== undefined) return;
    this.#socket.unref();
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => this.close(), this.#options.idleTimeoutMs);
    this.#idleTimer.unref();
  }

  #fail(error: Error): void {
    if (this.#failure === undefined) this.#failure = error;
    clearTimeout(this.#idleTimer);
    for (const waiter of this.#waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(this.#failure);
    }
    this.#socket.destroy();
  }

  #unavailable(reason: string, cause?: unknown): TesseraError {
    const { nodeId, url } = this.#options;
    return new TesseraError("ERR_NODE_UNAVAILABLE", `node ${nodeId} (${url}): record channel: ${reason}`, { nodeId, url }, cause === undefined ? undefined : { cause });
  }
}

/** What opening a channel found: a channel, or a node that does not serve channels. */
type Opened = { readonly channel: Channel } | { readonly unsupported: true };

export class RecordChannelClient {
  readonly #options: RecordChannelOptions;
  readonly #origin: URL;
  #current: Channel | undefined;
  #opening: Promise<Opened> | undefined;
  /** The node answered 404 to an opening: it predates channels; batches go by HTTP. */
  #unsupported = false;
  #closed = false;

  constructor(options: RecordChannelOptions) {
    this.#options = options;
    this.#origin = new URL(options.url);
  }

  /**
   * Sends one batch payload and returns the node's answer payload, or undefined if the node
   * does not serve channels (the caller sends the batch by HTTP instead).
   */
  async exchange(payload: Buffer): Promise<Buffer | undefined> {
    if (this.#unsupported) return undefined;
    let channel = this.#current;
    if (channel === undefined || channel.broken) {
      const opened = await (this.#opening ??= this.#open().finally(() => (this.#opening = undefined)));
      if ("unsupported" in opened) return undefined;
      channel = opened.channel;
    }
    return channel.send(payload);
  }

  close(): void {
    this.#closed = true;
    this.#current?.close();
  }

  #open(): Promise<Opened> {
    const { nodeId, secret } = this.#options;
    if (this.#closed) return Promise.reject(new TesseraError("ERR_NODE_UNAVAILABLE", `node ${nodeId}: the client is closed`, { nodeId }));
    const signed = signRequest(secret, { nodeId, method: "GET", pathAndQuery: ROUTES.recordChannel, contentSha256: EMPTY_BODY_SHA256 });
    const key = channelKey(secret, nodeId, signed[AUTH_HEADERS.nonce] as string);
    const transport = this.#origin.protocol === "https:" ? https : http;
    return new Promise<Opened>((resolve, reject) => {
      const request = transport.request({
        host: this.#origin.hostname.replace(/^\[|\]$/g, ""),
        port: this.#origin.port === "" ? undefined : Number(this.#origin.port),
        method: "GET",
        path: ROUTES.recordChannel,
        headers: { ...signed, connection: "Upgrade", upgrade: CHANNEL_PROTOCOL },
        agent: false,
      });
      const timer = setTimeout(() => request.destroy(new Error(`no answer to the channel opening within ${this.#options.connectTimeoutMs} ms`)), this.#options.connectTimeoutMs);
      request.on("upgrade", (response, socket: Socket, head: Buffer) => {
        clearTimeout(timer);
        if (response.headers.upgrade?.toLowerCase() !== CHANNEL_PROTOCOL) {
          socket.destroy();
          reject(new TesseraError("ERR_NODE_UNAVAILABLE", `node ${nodeId}: switched to ${String(response.headers.upgrade)}, not ${CHANNEL_PROTOCOL}`, { nodeId }));
          return;
        }
        this.#options.onAnswered();
        const channel = new Channel(socket, key, head, this.#options, () => {
          if (this.#current === channel) this.#current = undefined;
        });
        this.#current = channel;
        if (this.#closed) channel.close();
        resolve({ channel });
      });
      request.on("response", (response) => {
        clearTimeout(timer);
        this.#options.onAnswered();
        const pieces: Buffer[] = [];
        let bytes = 0;
        response.on("data", (piece: Buffer) => {
          bytes += piece.length;
          if (bytes <= REFUSAL_BODY_BYTES_MAX) pieces.push(piece);
        });
        response.on("error", () => undefined);
        response.on("close", () => {
          if (response.statusCode === 404) {
            this.#unsupported = true;
            resolve({ unsupported: true });
            return;
          }
          reject(this.#options.refusal(response.statusCode ?? 0, Buffer.concat(pieces).toString("utf8")));
        });
      });
      request.on("error", (error: Error & { code?: string }) => {
        clearTimeout(timer);
        if (error.code === "ECONNREFUSED") this.#options.onRefused();
        reject(new TesseraError("ERR_NODE_UNAVAILABLE", `node ${nodeId} (${this.#options.url}): ${error.message}`, { nodeId, url: this.#options.url, cause: error.code }, { cause: error }));
      });
      request.end();
    });
  }
}
