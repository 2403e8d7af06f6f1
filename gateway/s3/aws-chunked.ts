/**
 * Streaming decoder of aws-chunked request bodies (Content-Encoding: aws-chunked), as sent
 * with x-amz-content-sha256 STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER] or
 * STREAMING-UNSIGNED-PAYLOAD-TRAILER:
 *
 *   <hex size>[;chunk-signature=<64 hex>]\r\n<data>\r\n  ... repeated
 *   0[;chunk-signature=<64 hex>]\r\n
 *   [<trailer name>:<value>\r\n ...][x-amz-trailer-signature:<64 hex>\r\n]\r\n
 *
 * Signed chunks chain: each signature covers the previous one (the first, the request's
 * own signature) and the chunk's SHA-256; a signed chunk is held until its signature checks,
 * so no unverified byte leaves this stream (memory: one chunk, AWS_CHUNK_SIGNED_BYTES_MAX).
 * Unsigned chunks stream straight through. A trailing checksum declared in x-amz-trailer is
 * computed over the decoded bytes and compared at the end; the stream errors (never ends
 * cleanly) on any mismatch, so a consumer that commits only on 'end' stores nothing bad.
 */
import { createHash, createHmac, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { requireArgument } from "../../core/errors.js";
import { type ChecksumAlgorithm, type ChecksumCalculator, checksumMismatch, createChecksum, parseChecksumAlgorithm, parseChecksumValue } from "./checksums.js";
import { S3Error } from "./errors.js";
import { AWS_CHUNK_LINE_BYTES_MAX, AWS_CHUNK_SIGNED_BYTES_MAX, AWS_CHUNK_TRAILER_LINE_BYTES_MAX, AWS_CHUNK_TRAILERS_MAX } from "./limits.js";
import { EMPTY_SHA256, type SigningContext, signaturesEqual } from "./sigv4.js";

export const CHUNK_STRING_TO_SIGN_PREFIX = "AWS4-HMAC-SHA256-PAYLOAD";
export const TRAILER_STRING_TO_SIGN_PREFIX = "AWS4-HMAC-SHA256-TRAILER";
export const TRAILER_SIGNATURE_NAME = "x-amz-trailer-signature";
const CR = 0x0d;
const LF = 0x0a;
const HEX_SIZE = /^[0-9a-fA-F]{1,16}$/;
const TRAILER_NAME = /^[a-z0-9-]+$/;

export interface AwsChunkedOptions {
  /** x-amz-decoded-content-length: the bytes the chunks must add up to. */
  decodedLength: number;
  /** Present for signed payloads: every chunk (and the trailer) must carry a valid signature. */
  signing?: SigningContext;
  /** The payload mode declares trailers (…-TRAILER). */
  trailer: boolean;
  /** Trailer names announced in x-amz-trailer, lower-case; only these may appear. */
  declaredTrailers?: readonly string[];
}

export interface AwsChunkedTrailers {
  /** Every trailer but the signature, by lower-case name, values trimmed. */
  headers: ReadonlyMap<string, string>;
  /** The trailing checksum, already verified against the decoded body. */
  checksum: { algorithm: ChecksumAlgorithm; value: string } | undefined;
}

type State = "size" | "data" | "data-end" | "trailer" | "done";

function malformed(detail: string): S3Error {
  return new S3Error("InvalidRequest", `The aws-chunked body is malformed: ${detail}.`);
}

function malformedTrailer(detail: string): S3Error {
  return new S3Error("MalformedTrailerError", `The aws-chunked trailer is malformed: ${detail}.`);
}

function printable(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}

/** The string-to-sign of one chunk: AWS's chained PAYLOAD signature. */
export function chunkStringToSign(signing: SigningContext, previousSignature: string, chunkSha256Hex: string): string {
  return [CHUNK_STRING_TO_SIGN_PREFIX, signing.amzDate, signing.scope, previousSignature, EMPTY_SHA256, chunkSha256Hex].join("\n");
}

/** The string-to-sign of the trailer: canonical trailers are `name:value\n` each. */
export function trailerStringToSign(signing: SigningContext, previousSignature: string, canonicalTrailers: string): string {
  const hash = createHash("sha256").update(canonicalTrailers, "utf8").digest("hex");
  return [TRAILER_STRING_TO_SIGN_PREFIX, signing.amzDate, signing.scope, previousSignature, hash].join("\n");
}

export class AwsChunkedDecoder extends Transform {
  /** Resolves when the body ended cleanly; rejects with the stream's error. */
  readonly trailers: Promise<AwsChunkedTrailers>;
  readonly #options: AwsChunkedOptions;
  readonly #checksum: ChecksumCalculator | undefined;
  #resolve!: (trailers: AwsChunkedTrailers) => void;
  #reject!: (error: Error) => void;
  #state: State = "size";
  #line: Buffer[] = [];
  #lineBytes = 0;
  #chunkRemaining = 0;
  #chunkSignature = "";
  #chunkHash: Hash | undefined;
  #pending: Buffer[] = [];
  #crlfSeen = 0;
  #decoded = 0;
  #previousSignature: string;
  #trailers = new Map<string, string>();
  #trailerSignature: string | undefined;
  #result: AwsChunkedTrailers | undefined;

  constructor(options: AwsChunkedOptions) {
    super();
    requireArgument(Number.isSafeInteger(options.decodedLength) && options.decodedLength >= 0, "decodedLength", "must be a non-negative safe integer");
    requireArgument(options.trailer || (options.declaredTrailers ?? []).length === 0, "declaredTrailers", "needs a trailer payload mode");
    this.#options = options;
    this.#previousSignature = options.signing?.seedSignature ?? "";
    this.#checksum = this.#declaredChecksum();
    this.trailers = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // The stream's own 'error' reports failures; the promise must not crash the process unobserved.
    this.trailers.catch(() => undefined);
  }

  #declaredChecksum(): ChecksumCalculator | undefined {
    const algorithms = (this.#options.declaredTrailers ?? []).map(parseChecksumAlgorithm).filter((one) => one !== undefined);
    if (algorithms.length > 1) throw new S3Error("InvalidRequest", "Expecting a single x-amz-checksum- trailer.");
    return algorithms[0] === undefined ? undefined : createChecksum(algorithms[0]);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.#consume(chunk);
      callback();
    } catch (error) {
      this.#fail(error as Error, callback);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      if (this.#state === "trailer") this.#endOfTrailers(true);
      if (this.#state !== "done" || this.#result === undefined) throw new S3Error("IncompleteBody", "The aws-chunked body ended before its final chunk.");
      this.#resolve(this.#result);
      callback();
    } catch (error) {
      this.#fail(error as Error, callback);
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.#state !== "done") this.#reject(error ?? new S3Error("IncompleteBody", "The aws-chunked body was aborted."));
    callback(error);
  }

  #fail(error: Error, callback: TransformCallback): void {
    this.#reject(error);
    callback(error);
  }

  #consume(buffer: Buffer): void {
    let offset = 0;
    while (offset < buffer.length) {
      switch (this.#state) {
        case "size":
          offset = this.#readLine(buffer, offset, AWS_CHUNK_LINE_BYTES_MAX, (line) => this.#onSizeLine(line));
          break;
        case "data":
          offset = this.#readData(buffer, offset);
          break;
        case "data-end":
          offset = this.#readDataEnd(buffer, offset);
          break;
        case "trailer":
          offset = this.#readLine(buffer, offset, AWS_CHUNK_TRAILER_LINE_BYTES_MAX, (line) => this.#onTrailerLine(line));
          break;
        case "done":
          throw malformed("bytes follow the final chunk");
      }
    }
  }

  /** Gathers one CRLF-terminated line (bounded), hands it over without its CRLF. */
  #readLine(buffer: Buffer, offset: number, limit: number, onLine: (line: string) => void): number {
    const newline = buffer.indexOf(LF, offset);
    const end = newline === -1 ? buffer.length : newline;
    this.#lineBytes += end - offset;
    if (this.#lineBytes > limit) throw malformed(`a line is longer than ${limit} bytes`);
    this.#line.push(buffer.subarray(offset, end));
    if (newline === -1) return buffer.length;
    const line = Buffer.concat(this.#line);
    this.#line = [];
    this.#lineBytes = 0;
    if (line[line.length - 1] !== CR) throw malformed("a line does not end with CRLF");
    onLine(line.toString("latin1", 0, line.length - 1));
    return newline + 1;
  }

  #onSizeLine(line: string): void {
    const [sizeText = "", ...extensions] = line.split(";");
    if (!HEX_SIZE.test(sizeText)) throw malformed(`bad chunk size ${printable(sizeText)}`);
    const size = Number.parseInt(sizeText, 16);
    if (size > this.#options.decodedLength - this.#decoded) {
      throw malformed("the chunks carry more bytes than x-amz-decoded-content-length declares");
    }
    if (this.#options.signing !== undefined) {
      const signature = extensions.find((extension) => extension.startsWith("chunk-signature="));
      if (signature === undefined) throw malformed("a chunk has no chunk-signature");
      if (size > AWS_CHUNK_SIGNED_BYTES_MAX) throw malformed(`a signed chunk is larger than ${AWS_CHUNK_SIGNED_BYTES_MAX} bytes`);
      this.#chunkSignature = signature.slice("chunk-signature=".length);
      this.#chunkHash = createHash("sha256");
    }
    this.#chunkRemaining = size;
    if (size === 0) return this.#endOfChunk(true);
    this.#state = "data";
  }

  #readData(buffer: Buffer, offset: number): number {
    const take = Math.min(this.#chunkRemaining, buffer.length - offset);
    const data = buffer.subarray(offset, offset + take);
    this.#chunkRemaining -= take;
    this.#decoded += take;
    this.#checksum?.update(data);
    if (this.#chunkHash === undefined) this.push(data);
    else {
      this.#chunkHash.update(data);
      this.#pending.push(data);
    }
    if (this.#chunkRemaining === 0) this.#endOfChunk(false);
    return offset + take;
  }

  /** Checks the chunk's signature and releases its bytes; the zero chunk leads to the trailer. */
  #endOfChunk(final: boolean): void {
    const signing = this.#options.signing;
    if (signing !== undefined) {
      const hash = (this.#chunkHash as Hash).digest("hex");
      const expected = createHmac("sha256", signing.signingKey).update(chunkStringToSign(signing, this.#previousSignature, hash)).digest("hex");
      if (!signaturesEqual(expected, this.#chunkSignature)) throw new S3Error("SignatureDoesNotMatch", "The chunk signature we calculated does not match the signature you provided.");
      this.#previousSignature = expected;
      for (const data of this.#pending) this.push(data);
      this.#pending = [];
      this.#chunkHash = undefined;
    }
    this.#state = final ? "trailer" : "data-end";
  }

  #readDataEnd(buffer: Buffer, offset: number): number {
    const expected = this.#crlfSeen === 0 ? CR : LF;
    if (buffer[offset] !== expected) throw malformed("chunk data is not followed by CRLF");
    this.#crlfSeen += 1;
    if (this.#crlfSeen === 2) {
      this.#crlfSeen = 0;
      this.#state = "size";
    }
    return offset + 1;
  }

  #onTrailerLine(line: string): void {
    if (line === "") return this.#endOfTrailers(false);
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).trim().toLowerCase();
    if (colon <= 0 || !TRAILER_NAME.test(name)) throw malformedTrailer(`bad trailer line ${printable(line)}`);
    const value = line.slice(colon + 1).trim();
    if (name === TRAILER_SIGNATURE_NAME) {
      if (this.#options.signing === undefined || this.#trailerSignature !== undefined) throw malformedTrailer("unexpected x-amz-trailer-signature");
      this.#trailerSignature = value;
      return;
    }
    if (!this.#options.trailer || !(this.#options.declaredTrailers ?? []).includes(name)) {
      throw malformedTrailer(`trailer ${printable(name)} was not declared in x-amz-trailer`);
    }
    if (this.#trailers.has(name) || this.#trailers.size >= AWS_CHUNK_TRAILERS_MAX) throw malformedTrailer(`trailer ${printable(name)} repeated or too many trailers`);
    this.#trailers.set(name, value);
  }

  /** After the zero chunk: the trailer's signature, the declared checksum, the decoded length. */
  #endOfTrailers(atEof: boolean): void {
    if (atEof && this.#lineBytes > 0) {
      // The last trailer line arrived without its CRLF: take it as it is.
      const line = Buffer.concat(this.#line).toString("latin1");
      this.#line = [];
      this.#lineBytes = 0;
      this.#onTrailerLine(line);
    }
    if (this.#decoded !== this.#options.decodedLength) {
      throw new S3Error("IncompleteBody", `The aws-chunked body carried ${this.#decoded} bytes but x-amz-decoded-content-length declared ${this.#options.decodedLength}.`);
    }
    this.#checkTrailerSignature();
    const checksum = this.#checkChecksum();
    this.#state = "done";
    this.#result = { headers: this.#trailers, checksum };
  }

  #checkTrailerSignature(): void {
    const signing = this.#options.signing;
    if (signing === undefined || !this.#options.trailer) return;
    if (this.#trailerSignature === undefined) throw malformedTrailer("x-amz-trailer-signature is missing");
    const canonical = [...this.#trailers].map(([name, value]) => `${name}:${value}\n`).join("");
    const expected = createHmac("sha256", signing.signingKey).update(trailerStringToSign(signing, this.#previousSignature, canonical)).digest("hex");
    if (!signaturesEqual(expected, this.#trailerSignature)) {
      throw new S3Error("SignatureDoesNotMatch", "The trailer signature we calculated does not match the signature you provided.");
    }
  }

  #checkChecksum(): AwsChunkedTrailers["checksum"] {
    if (this.#checksum === undefined) return undefined;
    const algorithm = this.#checksum.algorithm;
    const name = `x-amz-checksum-${algorithm.toLowerCase()}`;
    const value = this.#trailers.get(name);
    if (value === undefined) throw malformedTrailer(`${name} was declared in x-amz-trailer but not sent`);
    if (!parseChecksumValue(algorithm, value).equals(this.#checksum.digest())) throw checksumMismatch(algorithm);
    return { algorithm, value };
  }
}
