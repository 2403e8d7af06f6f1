import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { checksumBase64 } from "../../gateway/s3/checksums.js";
import { declaredTrailers, headerChecksum, openPayload, storedContentEncoding } from "../../gateway/s3/payload.js";
import { type Authenticated, type PayloadMode, sha256Hex, SigV4Verifier, staticCredentials } from "../../gateway/s3/sigv4.js";
import { encodeAwsChunked } from "./aws-chunked-encoder.js";
import { ACCESS_KEY, SECRET_KEY, signHeader, SIGNING_TIME } from "./signing.js";

const BODY = Buffer.from("payload pipeline body");

function auth(payload: PayloadMode): Authenticated {
  return { accessKeyId: ACCESS_KEY, mechanism: "header", region: "us-east-1", signedHeaders: ["host"], payload, signing: { signingKey: Buffer.alloc(32), amzDate: "20240524T131415Z", scope: "20240524/us-east-1/s3/aws4_request", seedSignature: "0".repeat(64) } };
}

async function collect(body: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of body) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

describe("openPayload", () => {
  it("checks a signed SHA-256 payload hash", async () => {
    const good = openPayload(Readable.from([BODY]), auth({ kind: "sha256", sha256: sha256Hex(BODY) }), { "content-length": String(BODY.length) });
    expect(good.length).toBe(BODY.length);
    expect((await collect(good.body)).equals(BODY)).toBe(true);
    expect(await good.checksum).toBeUndefined();
    const bad = openPayload(Readable.from([BODY]), auth({ kind: "sha256", sha256: sha256Hex("other") }), {});
    await expect(collect(bad.body)).rejects.toMatchObject({ code: "XAmzContentSHA256Mismatch" });
    await expect(bad.checksum).rejects.toMatchObject({ code: "XAmzContentSHA256Mismatch" });
  });

  it("verifies an x-amz-checksum-* header on an unsigned payload and reports it", async () => {
    const value = checksumBase64("CRC32C", BODY);
    const opened = openPayload(Readable.from([BODY]), auth({ kind: "unsigned" }), { "x-amz-checksum-crc32c": value });
    expect((await collect(opened.body)).equals(BODY)).toBe(true);
    expect(await opened.checksum).toEqual({ algorithm: "CRC32C", value });
    const wrong = openPayload(Readable.from([BODY]), auth({ kind: "unsigned" }), { "x-amz-checksum-crc32c": checksumBase64("CRC32C", Buffer.from("x")) });
    await expect(collect(wrong.body)).rejects.toMatchObject({ code: "BadDigest", message: "The CRC32C you specified did not match the calculated checksum." });
  });

  it("decodes STREAMING-UNSIGNED-PAYLOAD-TRAILER and returns the verified trailing checksum", async () => {
    const value = checksumBase64("CRC32", BODY);
    const wire = encodeAwsChunked({ data: BODY, chunkSizes: [7, BODY.length - 7], trailers: [["x-amz-checksum-crc32", value]] });
    const headers = { "content-encoding": "aws-chunked", "x-amz-decoded-content-length": String(BODY.length), "x-amz-trailer": "x-amz-checksum-crc32", "content-length": String(wire.length) };
    const opened = openPayload(Readable.from([wire]), auth({ kind: "streaming", signed: false, trailer: true }), headers);
    expect(opened.length).toBe(BODY.length);
    expect((await collect(opened.body)).equals(BODY)).toBe(true);
    expect(await opened.checksum).toEqual({ algorithm: "CRC32", value });
  });

  it("decodes a signed aws-chunked payload with the signing context of a verified request", async () => {
    const headers = { "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "content-encoding": "aws-chunked", "x-amz-decoded-content-length": String(BODY.length) };
    const request = await signHeader({ method: "PUT", path: "/bucket/key", headers });
    const verified = new SigV4Verifier({ credentials: staticCredentials([{ accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY }]), now: () => SIGNING_TIME }).verify(request);
    const signing = verified.signing;
    if (signing === undefined) throw new Error("a version 4 signature has a signing context");
    const wire = encodeAwsChunked({ data: BODY, chunkSizes: [BODY.length], signing: { secret: SECRET_KEY, amzDate: signing.amzDate, region: "us-east-1", seedSignature: signing.seedSignature } });
    const opened = openPayload(Readable.from([wire]), verified, request.headers);
    expect((await collect(opened.body)).equals(BODY)).toBe(true);
    const forged = openPayload(Readable.from([wire]), { ...verified, signing: { ...signing, seedSignature: "1".repeat(64) } }, request.headers);
    await expect(collect(forged.body)).rejects.toMatchObject({ code: "SignatureDoesNotMatch" });
  });

  it("rejects inconsistent headers before reading the body", () => {
    const streaming = auth({ kind: "streaming", signed: false, trailer: true });
    expect(() => openPayload(Readable.from([]), streaming, {})).toThrow(expect.objectContaining({ code: "MissingContentLength", message: "You must provide the x-amz-decoded-content-length header with aws-chunked payloads." }));
    expect(() => openPayload(Readable.from([]), streaming, { "x-amz-decoded-content-length": "12x" })).toThrow(expect.objectContaining({ code: "InvalidArgument", message: "x-amz-decoded-content-length must be a non-negative integer." }));
    expect(() => openPayload(Readable.from([]), auth({ kind: "unsigned" }), { "x-amz-trailer": "x-amz-checksum-crc32" })).toThrow(expect.objectContaining({ code: "InvalidRequest", message: "x-amz-trailer needs a STREAMING-…-TRAILER payload." }));
    expect(() => openPayload(Readable.from([]), auth({ kind: "streaming", signed: true, trailer: false }), { "x-amz-decoded-content-length": "1", "x-amz-trailer": "x-amz-checksum-crc32" })).toThrow(expect.objectContaining({ code: "InvalidRequest" }));
  });

  it("accepts one checksum header, validated", () => {
    expect(headerChecksum({})).toBeUndefined();
    expect(headerChecksum({ "x-amz-checksum-sha1": ` ${checksumBase64("SHA1", BODY)} ` })).toEqual({ algorithm: "SHA1", value: checksumBase64("SHA1", BODY) });
    expect(() => headerChecksum({ "x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-sha1": "x" })).toThrow(expect.objectContaining({ code: "InvalidRequest", message: "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed." }));
    expect(() => headerChecksum({ "x-amz-checksum-crc32": "AAAA" })).toThrow(expect.objectContaining({ code: "InvalidRequest", message: "Value for x-amz-checksum-crc32 header is invalid." }));
  });

  it("parses x-amz-trailer and strips aws-chunked from the stored Content-Encoding", () => {
    expect(declaredTrailers({ "x-amz-trailer": " X-Amz-Checksum-CRC32 , " })).toEqual(["x-amz-checksum-crc32"]);
    expect(storedContentEncoding({ "content-encoding": "aws-chunked" })).toBeUndefined();
    expect(storedContentEncoding({ "content-encoding": "aws-chunked, gzip" })).toBe("gzip");
    expect(storedContentEncoding({ "content-encoding": "br" })).toBe("br");
    expect(storedContentEncoding({})).toBeUndefined();
  });
});
