/**
 * Test helper: builds aws-chunked bodies by AWS's documented algorithm (sigv4-streaming,
 * sigv4-streaming-trailers), independently of gateway/s3/aws-chunked.ts. Chunk signatures
 * are computed with node:crypto from a signing key derived here from the secret.
 */
import { createHash, createHmac } from "node:crypto";

const EMPTY_SHA256 = createHash("sha256").update("").digest("hex");

export interface ChunkSigning {
  secret: string;
  amzDate: string;
  region: string;
  seedSignature: string;
}

export interface EncodeOptions {
  data: Buffer;
  /** Sizes of the data chunks, summing to data.length (the zero chunk is added). */
  chunkSizes: number[];
  signing?: ChunkSigning;
  trailers?: Array<[string, string]>;
  /** Omit the final CRLF after the trailers (some clients do when they send none). */
  omitFinalCrlf?: boolean;
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac("sha256", key).update(data).digest();
}

export function signingKey(signing: ChunkSigning): Buffer {
  const date = signing.amzDate.slice(0, 8);
  return hmac(hmac(hmac(hmac(`AWS4${signing.secret}`, date), signing.region), "s3"), "aws4_request");
}

function scopeOf(signing: ChunkSigning): string {
  return `${signing.amzDate.slice(0, 8)}/${signing.region}/s3/aws4_request`;
}

export function encodeAwsChunked(options: EncodeOptions): Buffer {
  const parts: Buffer[] = [];
  const key = options.signing === undefined ? undefined : signingKey(options.signing);
  let previous = options.signing?.seedSignature ?? "";
  let offset = 0;
  for (const size of [...options.chunkSizes, 0]) {
    const chunk = options.data.subarray(offset, offset + size);
    offset += size;
    let line = size.toString(16);
    if (options.signing !== undefined && key !== undefined) {
      const toSign = ["AWS4-HMAC-SHA256-PAYLOAD", options.signing.amzDate, scopeOf(options.signing), previous, EMPTY_SHA256, createHash("sha256").update(chunk).digest("hex")].join("\n");
      previous = hmac(key, toSign).toString("hex");
      line += `;chunk-signature=${previous}`;
    }
    parts.push(Buffer.from(`${line}\r\n`), chunk);
    if (size > 0) parts.push(Buffer.from("\r\n"));
  }
  if (offset !== options.data.length) throw new Error("chunk sizes must add up to the data length");
  const trailers = options.trailers ?? [];
  for (const [name, value] of trailers) parts.push(Buffer.from(`${name}:${value}\r\n`));
  if (trailers.length > 0 && options.signing !== undefined && key !== undefined) {
    const canonical = trailers.map(([name, value]) => `${name}:${value}\n`).join("");
    const toSign = ["AWS4-HMAC-SHA256-TRAILER", options.signing.amzDate, scopeOf(options.signing), previous, createHash("sha256").update(canonical).digest("hex")].join("\n");
    parts.push(Buffer.from(`x-amz-trailer-signature:${hmac(key, toSign).toString("hex")}\r\n`));
  }
  if (options.omitFinalCrlf !== true) parts.push(Buffer.from("\r\n"));
  return Buffer.concat(parts);
}
