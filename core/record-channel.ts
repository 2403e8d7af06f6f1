/**
 * The record channel: record batches (core/record-batch.ts) between a gateway and one node
 * over one long-lived connection of length-prefixed frames, instead of one HTTP exchange per
 * batch. On this 2-core machine a small object's record batch cost the node about as much
 * CPU in HTTP handling (parsing, request and response objects, routing hooks, the signature
 * of each request) as in the records themselves (issue 7's profiles); a frame costs a length,
 * a MAC and the JSON the batch carries anyway.
 *
 * Opening: an HTTP/1.1 `GET ROUTES.recordChannel` with `Upgrade: CHANNEL_PROTOCOL`, signed like
 * any internal request (core/internal-auth.ts: secret, date, nonce, node id), answered
 * `101 Switching Protocols`. From then on the connection carries:
 *
 *   request frame:  u32 payload bytes (big-endian) | 32-byte MAC | payload: {"ops":[...]}
 *   response frame: u32 payload bytes (big-endian) | payload: {"results":[...]} or {"error":{...}}
 *
 * Each request frame's MAC is HMAC-SHA256 under a key of this connection (internal-auth.ts channelKey: the
 * secret, the node id and the opening request's nonce) over the frame's sequence number (its
 * index on this connection, 8 bytes) and its payload. So, as with signed HTTP requests, only a
 * holder of the secret can send records to a node; a frame altered, dropped, reordered or
 * replayed (on this or any other connection) fails its MAC and the node closes the connection.
 * Responses are answered in order, one per request frame, and are not signed (nor are HTTP
 * responses: confidentiality and response integrity are the network's, see internal-auth.ts).
 *
 * A node that does not know the route (an older version during a rolling upgrade) answers 404;
 * the client then sends its batches as HTTP requests, as before.
 */
import { createHmac } from "node:crypto";
import { TesseraError } from "./errors.js";

/** The Upgrade token: names this framing, so a change of it is a new token. */
export const CHANNEL_PROTOCOL = "tessera-records/1";
/** Bytes of a frame's length prefix. */
export const FRAME_LENGTH_BYTES = 4;
/** Bytes of a request frame's MAC (HMAC-SHA256). */
export const FRAME_MAC_BYTES = 32;
/**
 * Request frames a node works on at once per connection; past this it stops reading the
 * connection until one is answered. The gateway keeps one batch in flight per node
 * (BATCHES_IN_FLIGHT_MAX), so this only bounds a client that pipelines more.
 */
export const CHANNEL_FRAMES_IN_FLIGHT_MAX = 8;

/** The MAC of request frame number `sequence` on a connection keyed `key`. */
export function frameMac(key: Buffer, sequence: number, payload: Buffer): Buffer {
  const number = Buffer.allocUnsafe(8);
  number.writeBigUInt64BE(BigInt(sequence));
  return createHmac("sha256", key).update(number).update(payload).digest();
}

/** A whole frame: the length prefix, the MAC when given, then the payload. */
export function encodeFrame(payload: Buffer, mac?: Buffer): Buffer {
  const header = Buffer.allocUnsafe(FRAME_LENGTH_BYTES);
  header.writeUInt32BE(payload.length);
  return Buffer.concat(mac === undefined ? [header, payload] : [header, mac, payload]);
}

export interface Frame {
  /** Empty for response frames. */
  readonly mac: Buffer;
  readonly payload: Buffer;
}

/**
 * Cuts a byte stream into frames. `macBytes` is FRAME_MAC_BYTES for request frames and 0 for
 * responses; a frame whose length prefix is over `payloadBytesMax` is a protocol error
 * (ERR_INVALID_ARGUMENT), thrown before any of its payload is buffered.
 */
export class FrameReader {
  readonly #macBytes: number;
  readonly #payloadBytesMax: number;
  #pending: Buffer[] = [];
  #pendingBytes = 0;

  constructor(macBytes: number, payloadBytesMax: number) {
    this.#macBytes = macBytes;
    this.#payloadBytesMax = payloadBytesMax;
  }

  /** Bytes received but not yet part of a whole frame. */
  get bufferedBytes(): number {
    return this.#pendingBytes;
  }

  /** Takes the next piece of the stream; returns the frames it completed, in order. */
  push(piece: Buffer): Frame[] {
    if (piece.length === 0) return [];
    this.#pending.push(piece);
    this.#pendingBytes += piece.length;
    const frames: Frame[] = [];
    const headerBytes = FRAME_LENGTH_BYTES + this.#macBytes;
    while (this.#pendingBytes >= FRAME_LENGTH_BYTES) {
      const head = this.#peek(FRAME_LENGTH_BYTES);
      const payloadBytes = head.readUInt32BE(0);
      if (payloadBytes > this.#payloadBytesMax) {
        throw new TesseraError("ERR_INVALID_ARGUMENT", `record channel: a frame of ${payloadBytes} bytes is over the ${this.#payloadBytesMax}-byte limit`, {
          frameBytes: payloadBytes,
          limit: this.#payloadBytesMax,
        });
      }
      if (this.#pendingBytes < headerBytes + payloadBytes) break;
      const whole = this.#take(headerBytes + payloadBytes);
      frames.push({ mac: whole.subarray(FRAME_LENGTH_BYTES, headerBytes), payload: whole.subarray(headerBytes) });
    }
    return frames;
  }

  #peek(bytes: number): Buffer {
    const first = this.#pending[0] as Buffer;
    if (first.length >= bytes) return first;
    this.#pending = [Buffer.concat(this.#pending, this.#pendingBytes)];
    return this.#pending[0] as Buffer;
  }

  #take(bytes: number): Buffer {
    const joined = this.#peek(bytes);
    const taken = joined.subarray(0, bytes);
    const rest = joined.subarray(bytes);
    this.#pending = rest.length === 0 ? [] : [rest, ...this.#pending.slice(1)];
    this.#pendingBytes -= bytes;
    return taken;
  }
}
