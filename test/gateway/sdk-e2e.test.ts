/**
 * End to end against the real AWS SDK: an in-process fastify server that uses only the S3
 * protocol layer (router, SigV4, payload pipeline with aws-chunked, XML, error table) and
 * keeps objects in a Map. It proves the layer accepts what @aws-sdk/client-s3 really sends.
 */
import { createHash } from "node:crypto";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListBucketsCommand, PutObjectCommand, S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { request as undiciRequest } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checksumHeaderName } from "../../gateway/s3/checksums.js";
import { renderErrorXml, S3Error, toS3Error } from "../../gateway/s3/errors.js";
import { openPayload, storedContentEncoding, type VerifiedChecksum } from "../../gateway/s3/payload.js";
import { type Route, routeRequest } from "../../gateway/s3/router.js";
import { headersFromRaw, headerValue, type RequestHeaders, SigV4Verifier, staticCredentials } from "../../gateway/s3/sigv4.js";
import { DELETE_XML_BYTES_MAX } from "../../gateway/s3/limits.js";
import { deleteResultXml, parseDeleteXml, readXmlBody } from "../../gateway/s3/xml.js";
import { Prng, seedFromEnv } from "../prng.js";

const ACCESS_KEY = "TESSERAE2E";
const SECRET_KEY = "e2e-secret-key/with+odd=chars";

interface StoredObject {
  body: Buffer;
  etag: string;
  contentType: string | undefined;
  contentEncoding: string | undefined;
  checksum: VerifiedChecksum | undefined;
}

/** What the SDK sent, for the report and the assertions below. */
interface Observed {
  method: string;
  payloadMode: string | undefined;
  contentEncoding: string | undefined;
  trailer: string | undefined;
  checksumHeaders: string[];
}

class TinyS3 {
  readonly objects = new Map<string, StoredObject>();
  readonly observed: Observed[] = [];
  readonly #verifier = new SigV4Verifier({ credentials: staticCredentials([{ accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY }]) });
  #requests = 0;

  async handle(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const requestId = `req-${++this.#requests}`;
    const url = request.raw.url ?? "/";
    const questionMark = url.indexOf("?");
    const path = questionMark === -1 ? url : url.slice(0, questionMark);
    const query = questionMark === -1 ? "" : url.slice(questionMark + 1);
    const headers = headersFromRaw(request.raw.rawHeaders);
    const method = request.raw.method ?? "GET";
    this.observed.push({
      method,
      payloadMode: headerValue(headers, "x-amz-content-sha256"),
      contentEncoding: headerValue(headers, "content-encoding"),
      trailer: headerValue(headers, "x-amz-trailer"),
      checksumHeaders: Object.keys(headers).filter((name) => name.startsWith("x-amz-checksum-") || name === "x-amz-sdk-checksum-algorithm"),
    });
    let resource = path;
    try {
      const route = routeRequest({ method, path, query, headers }, { baseDomains: ["localhost"] });
      resource = route.resource;
      const auth = this.#verifier.verify({ method, path, query, headers });
      await this.#serve(route, request, reply, headers, auth);
    } catch (error) {
      const s3 = toS3Error(error);
      reply.code(s3.status).header("x-amz-request-id", requestId).header("content-type", "application/xml");
      await reply.send(method === "HEAD" ? undefined : renderErrorXml(s3, requestId, resource));
    }
  }

  async #serve(route: Route, request: FastifyRequest, reply: FastifyReply, headers: RequestHeaders, auth: ReturnType<SigV4Verifier["verify"]>): Promise<void> {
    const endpoint = route.endpoint;
    switch (endpoint.kind) {
      case "PutObject": {
        const payload = openPayload(request.raw, auth, headers);
        const parts: Buffer[] = [];
        for await (const part of payload.body) parts.push(part as Buffer);
        const body = Buffer.concat(parts);
        const checksum = await payload.checksum;
        const etag = `"${createHash("md5").update(body).digest("hex")}"`;
        this.objects.set(`${endpoint.bucket}/${endpoint.key}`, { body, etag, contentType: headerValue(headers, "content-type"), contentEncoding: storedContentEncoding(headers), checksum });
        reply.header("etag", etag);
        if (checksum !== undefined) reply.header(checksumHeaderName(checksum.algorithm), checksum.value);
        await reply.code(200).send();
        return;
      }
      case "GetObject":
      case "HeadObject": {
        const stored = this.objects.get(`${endpoint.bucket}/${endpoint.key}`);
        if (stored === undefined) throw new S3Error("NoSuchKey", undefined, { extra: { Key: endpoint.key } });
        reply.header("etag", stored.etag).header("content-length", String(stored.body.length)).header("content-type", stored.contentType ?? "binary/octet-stream");
        if (stored.contentEncoding !== undefined) reply.header("content-encoding", stored.contentEncoding);
        if (stored.checksum !== undefined && headerValue(headers, "x-amz-checksum-mode") === "ENABLED") reply.header(checksumHeaderName(stored.checksum.algorithm), stored.checksum.value);
        await reply.code(200).send(endpoint.kind === "GetObject" ? stored.body : undefined);
        return;
      }
      case "DeleteObjects": {
        const batch = parseDeleteXml(await readXmlBody(openPayload(request.raw, auth, headers).body, DELETE_XML_BYTES_MAX));
        for (const object of batch.objects) this.objects.delete(`${endpoint.bucket}/${object.key}`);
        const xml = deleteResultXml({ quiet: batch.quiet, deleted: batch.objects.map((object) => ({ key: object.key })), errors: [] });
        await reply.code(200).header("content-type", "application/xml").send(xml);
        return;
      }
      default:
        throw new S3Error("NotImplemented", `${endpoint.kind} is not implemented by this test server.`);
    }
  }
}

let app: FastifyInstance;
let server: TinyS3;
let endpointUrl: string;

function client(options: { secret?: string } = {}): S3Client {
  return new S3Client({
    region: "us-east-1",
    endpoint: endpointUrl,
    forcePathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: options.secret ?? SECRET_KEY },
    maxAttempts: 1,
  });
}

beforeAll(async () => {
  server = new TinyS3();
  app = Fastify({ exposeHeadRoutes: false });
  // Bodies are streams for the S3 layer to read: fastify must not consume them.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", (_request, _payload, done) => done(null, undefined));
  app.route({ method: ["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH"], url: "*", handler: (request, reply) => server.handle(request, reply) });
  await app.listen({ host: "127.0.0.1", port: 0 });
  endpointUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await app.close();
});

describe("the real S3Client against the protocol layer", () => {
  it("PutObject then GetObject of a string body, with the SDK's default checksums", async () => {
    const s3 = client();
    const put = await s3.send(new PutObjectCommand({ Bucket: "bucket", Key: "hello world/ü+=.txt", Body: "hello, tessera", ContentType: "text/plain" }));
    expect(put.ETag).toBe(`"${createHash("md5").update("hello, tessera").digest("hex")}"`);
    const get = await s3.send(new GetObjectCommand({ Bucket: "bucket", Key: "hello world/ü+=.txt" }));
    expect(await get.Body?.transformToString()).toBe("hello, tessera");
    expect(get.ContentType).toBe("text/plain");
    s3.destroy();
  });

  it("PutObject of a streamed 3 MiB body goes aws-chunked with a trailing checksum, verified end to end", async () => {
    const prng = new Prng(seedFromEnv(0xe2e));
    const data = prng.bytes(3 * 1024 * 1024 + 5);
    const pieces: Buffer[] = [];
    for (let offset = 0; offset < data.length; ) {
      const size = prng.int(1, 300_000);
      pieces.push(data.subarray(offset, offset + size));
      offset += size;
    }
    const s3 = client();
    const before = server.observed.length;
    const put = await s3.send(new PutObjectCommand({ Bucket: "bucket", Key: "streamed.bin", Body: Readable.from(pieces), ContentLength: data.length }));
    const sent = server.observed[before] as Observed;
    expect(sent.payloadMode).toBe("STREAMING-UNSIGNED-PAYLOAD-TRAILER");
    expect(sent.contentEncoding).toContain("aws-chunked");
    expect(sent.trailer).toBe("x-amz-checksum-crc32");
    const stored = server.objects.get("bucket/streamed.bin");
    expect(stored?.body.equals(data), `seed ${prng.seed}`).toBe(true);
    expect(stored?.checksum?.algorithm).toBe("CRC32");
    expect(stored?.contentEncoding).toBeUndefined();
    expect(put.ChecksumCRC32).toBe(stored?.checksum?.value);
    const get = await s3.send(new GetObjectCommand({ Bucket: "bucket", Key: "streamed.bin", ChecksumMode: "ENABLED" }));
    expect(Buffer.from(await (get.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()).equals(data)).toBe(true);
    expect(get.ChecksumCRC32).toBe(stored?.checksum?.value);
    s3.destroy();
  });

  it("PutObject of empty and binary Buffer bodies round-trips", async () => {
    const s3 = client();
    for (const [key, body] of [["empty", Buffer.alloc(0)], ["binary", Buffer.from([0, 1, 2, 255, 13, 10])]] as const) {
      await s3.send(new PutObjectCommand({ Bucket: "bucket", Key: key, Body: body }));
      const get = await s3.send(new GetObjectCommand({ Bucket: "bucket", Key: key }));
      expect(Buffer.from(await (get.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()).equals(body)).toBe(true);
    }
    s3.destroy();
  });

  it("DeleteObjects sends XML the parser accepts", async () => {
    const s3 = client();
    await s3.send(new PutObjectCommand({ Bucket: "bucket", Key: "a & b", Body: "x" }));
    const output = await s3.send(new DeleteObjectsCommand({ Bucket: "bucket", Delete: { Objects: [{ Key: "a & b" }, { Key: "empty" }] } }));
    expect(output.Deleted?.map((entry) => entry.Key)).toEqual(["a & b", "empty"]);
    expect(server.objects.has("bucket/a & b")).toBe(false);
    s3.destroy();
  });

  it("a presigned GET works with plain undici, and expires", async () => {
    const s3 = client();
    await s3.send(new PutObjectCommand({ Bucket: "bucket", Key: "shared file.txt", Body: "shared" }));
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: "bucket", Key: "shared file.txt" }), { expiresIn: 60 });
    const response = await undiciRequest(url);
    expect(response.statusCode).toBe(200);
    expect(await response.body.text()).toBe("shared");
    const stale = await getSignedUrl(s3, new GetObjectCommand({ Bucket: "bucket", Key: "shared file.txt" }), { expiresIn: 60, signingDate: new Date(Date.now() - 120_000) });
    const expired = await undiciRequest(stale);
    expect(expired.statusCode).toBe(403);
    expect(await expired.body.text()).toContain("<Code>AccessDenied</Code><Message>Request has expired</Message>");
    s3.destroy();
  });

  it("a wrong secret gets SignatureDoesNotMatch and stores nothing; an unknown operation gets NotImplemented", async () => {
    const s3 = client({ secret: "wrong" });
    const failure = await s3.send(new PutObjectCommand({ Bucket: "bucket", Key: "never", Body: "x" })).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(S3ServiceException);
    expect(failure).toMatchObject({ name: "SignatureDoesNotMatch", $metadata: { httpStatusCode: 403 } });
    expect(server.objects.has("bucket/never")).toBe(false);
    const missing = await client().send(new HeadObjectCommand({ Bucket: "bucket", Key: "nope" })).catch((error: unknown) => error);
    expect(missing).toMatchObject({ $metadata: { httpStatusCode: 404 } });
    const list = await client().send(new ListBucketsCommand({})).catch((error: unknown) => error);
    expect(list).toMatchObject({ name: "NotImplemented", message: "ListBuckets is not implemented by this test server.", $metadata: { httpStatusCode: 501 } });
  });

  it("records what the SDK sent", () => {
    const puts = server.observed.filter((entry) => entry.method === "PUT");
    const mode = (value: string | undefined): string => (value !== undefined && /^[0-9a-f]{64}$/.test(value) ? "<hex sha256>" : String(value));
    const modes = new Set(puts.map((entry) => `x-amz-content-sha256: ${mode(entry.payloadMode)}; content-encoding: ${entry.contentEncoding ?? "-"}; x-amz-trailer: ${entry.trailer ?? "-"}; headers: ${entry.checksumHeaders.join(", ")}`));
    console.log(`SDK PutObject payload modes observed:\n  ${[...modes].join("\n  ")}`);
    expect(modes).toEqual(
      new Set([
        "x-amz-content-sha256: <hex sha256>; content-encoding: -; x-amz-trailer: -; headers: x-amz-sdk-checksum-algorithm, x-amz-checksum-crc32",
        "x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER; content-encoding: aws-chunked; x-amz-trailer: x-amz-checksum-crc32; headers: x-amz-sdk-checksum-algorithm",
      ]),
    );
  });
});
