/**
 * The bench's S3 client: the AWS signer (@smithy/signature-v4, what the SDK uses) over an
 * undici keep-alive pool, with `x-amz-content-sha256: UNSIGNED-PAYLOAD` so the client never
 * hashes bodies (the issue: the client's own hashing must not dominate on 2 shared cores).
 * Path-style addressing; bodies stream both ways, and a GET streams into a verifier.
 */
import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";
import { Readable } from "node:stream";
import { SignatureV4 } from "@smithy/signature-v4";
import { Pool } from "undici";
import { CLIENT_CONNECTIONS_MAX, OPERATION_TIMEOUT_MS } from "./limits.js";

/** Bytes of an error body kept for the message: S3 errors are short XML. */
const ERROR_TEXT_CHARS_MAX = 500;
const UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD";

type SourceData = string | ArrayBuffer | ArrayBufferView;
type SignableRequest = Parameters<SignatureV4["presign"]>[0];

function bytesOf(data: SourceData): Buffer {
  if (typeof data === "string") return Buffer.from(data, "utf8");
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/** node:crypto SHA-256 / HMAC-SHA-256 in the shape the signer takes (an async Checksum). */
class NodeSha256 {
  readonly #hash: Hash | Hmac;

  constructor(secret?: SourceData) {
    this.#hash = secret === undefined ? createHash("sha256") : createHmac("sha256", bytesOf(secret));
  }

  update(data: SourceData): void {
    this.#hash.update(bytesOf(data));
  }

  async digest(): Promise<Uint8Array> {
    return this.#hash.digest();
  }

  reset(): void {
    throw new Error("not used by SignatureV4");
  }
}

export interface S3Endpoint {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

export type PutBody = Buffer | Iterable<Buffer>;

export class BenchS3Client {
  readonly #pool: Pool;
  readonly #signer: SignatureV4;
  readonly #host: string;
  readonly #port: number;

  constructor(endpoint: S3Endpoint) {
    const url = new URL(endpoint.url);
    this.#host = url.host;
    this.#port = Number(url.port);
    this.#pool = new Pool(url.origin, { connections: CLIENT_CONNECTIONS_MAX, headersTimeout: OPERATION_TIMEOUT_MS, bodyTimeout: OPERATION_TIMEOUT_MS });
    this.#signer = new SignatureV4({
      credentials: { accessKeyId: endpoint.accessKeyId, secretAccessKey: endpoint.secretAccessKey },
      region: endpoint.region,
      service: "s3",
      sha256: NodeSha256,
      uriEscapePath: false,
    });
  }

  async close(): Promise<void> {
    await this.#pool.close();
  }

  async createBucket(bucket: string): Promise<void> {
    const response = await this.#send("PUT", `/${bucket}`, { "content-length": "0" }, null);
    // An existing bucket of ours is fine (a re-run against --endpoint).
    if (response.statusCode === 409) {
      await response.body.dump();
      return;
    }
    await expectSuccess(response, `create bucket ${bucket}`);
  }

  async putObject(bucket: string, key: string, body: PutBody, length: number): Promise<void> {
    const response = await this.#send("PUT", objectPath(bucket, key), { "content-length": String(length), "content-type": "application/octet-stream" }, body);
    await expectSuccess(response, `PUT ${key}`);
  }

  /** GETs the object and hands every piece to `sink`; resolves with the bytes received. */
  async getObject(bucket: string, key: string, sink: (piece: Buffer) => void): Promise<number> {
    const response = await this.#send("GET", objectPath(bucket, key), {}, null);
    if (response.statusCode !== 200) await expectSuccess(response, `GET ${key}`);
    let received = 0;
    for await (const piece of response.body as AsyncIterable<Buffer>) {
      received += piece.length;
      sink(piece);
    }
    return received;
  }

  async deleteObject(bucket: string, key: string): Promise<void> {
    const response = await this.#send("DELETE", objectPath(bucket, key), {}, null);
    await expectSuccess(response, `DELETE ${key}`);
  }

  async #send(method: "GET" | "PUT" | "DELETE", path: string, headers: Record<string, string>, body: PutBody | null): Promise<Awaited<ReturnType<Pool["request"]>>> {
    const request: SignableRequest = {
      method,
      protocol: "http:",
      hostname: "127.0.0.1",
      port: this.#port,
      path,
      query: {},
      headers: { host: this.#host, "x-amz-content-sha256": UNSIGNED_PAYLOAD, ...headers },
    };
    const signed = await this.#signer.sign(request);
    const payload = body === null || Buffer.isBuffer(body) ? body : Readable.from(body, { objectMode: false });
    return this.#pool.request({ method, path, headers: signed.headers, body: payload });
  }
}

function objectPath(bucket: string, key: string): string {
  return `/${bucket}/${key.split("/").map(encodeURIComponent).join("/")}`;
}

async function expectSuccess(response: Awaited<ReturnType<Pool["request"]>>, what: string): Promise<void> {
  const text = await response.body.text();
  if (response.statusCode >= 200 && response.statusCode < 300) return;
  throw new Error(`${what}: HTTP ${response.statusCode}: ${text.slice(0, ERROR_TEXT_CHARS_MAX)}`);
}
