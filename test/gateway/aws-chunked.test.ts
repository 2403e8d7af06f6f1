import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { AwsChunkedDecoder, type AwsChunkedOptions, type AwsChunkedTrailers } from "../../gateway/s3/aws-chunked.js";
import { checksumBase64 } from "../../gateway/s3/checksums.js";
import { S3Error } from "../../gateway/s3/errors.js";
import { AWS_CHUNK_LINE_BYTES_MAX, AWS_CHUNK_SIGNED_BYTES_MAX } from "../../gateway/s3/limits.js";
import { type SigningContext, SigV4Verifier, staticCredentials } from "../../gateway/s3/sigv4.js";
import { Prng, seedFromEnv } from "../prng.js";
import { type ChunkSigning, encodeAwsChunked } from "./aws-chunked-encoder.js";
import { ACCESS_KEY, SECRET_KEY, signHeader, SIGNING_TIME } from "./signing.js";

const verifier = new SigV4Verifier({ credentials: staticCredentials([{ accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY }]), now: () => SIGNING_TIME });

/** A real signed request header (by @smithy/signature-v4), verified, gives the chunk signing context. */
async function streamingContext(mode: string, decodedLength: number): Promise<{ signing: SigningContext; chunkSigning: ChunkSigning }> {
  const request = await signHeader({
    method: "PUT",
    path: "/bucket/key",
    headers: { "x-amz-content-sha256": mode, "content-encoding": "aws-chunked", "x-amz-decoded-content-length": String(decodedLength) },
  });
  const signing = verifier.verify(request).signing;
  if (signing === undefined) throw new Error("a version 4 signature has a signing context");
  const chunkSigning = { secret: SECRET_KEY, amzDate: signing.amzDate, region: "us-east-1", seedSignature: signing.seedSignature };
  return { signing, chunkSigning };
}

/** Feeds `wire` to a decoder in random piece sizes; returns the output and trailers, or the error. */
async function decode(wire: Buffer, options: AwsChunkedOptions, prng?: Prng): Promise<{ output: Buffer; trailers?: AwsChunkedTrailers; error?: S3Error }> {
  const pieces: Buffer[] = [];
  for (let offset = 0; offset < wire.length; ) {
    const size = prng === undefined ? wire.length : prng.int(1, Math.max(1, Math.min(wire.length, prng.int(1, 4) === 1 ? 7 : 70_000)));
    pieces.push(wire.subarray(offset, offset + size));
    offset += size;
  }
  const decoder = new AwsChunkedDecoder(options);
  const output: Buffer[] = [];
  // Flowing mode: every byte the decoder releases is seen, even when an error follows.
  const ended = new Promise<void>((resolve, reject) => {
    decoder.on("data", (chunk: Buffer) => output.push(chunk));
    decoder.on("end", resolve);
    decoder.on("error", reject);
  });
  Readable.from(pieces).pipe(decoder);
  try {
    await ended;
    return { output: Buffer.concat(output), trailers: await decoder.trailers };
  } catch (error) {
    await expect(decoder.trailers).rejects.toBe(error);
    return { output: Buffer.concat(output), error: error as S3Error };
  }
}

function randomChunkSizes(prng: Prng, total: number, maxChunk: number): number[] {
  const sizes: number[] = [];
  for (let left = total; left > 0; ) {
    const size = Math.min(left, prng.int(1, maxChunk));
    sizes.push(size);
    left -= size;
  }
  return sizes;
}

describe("aws-chunked: AWS's documented example", () => {
  it("verifies the STREAMING-AWS4-HMAC-SHA256-PAYLOAD example from the S3 documentation", async () => {
    const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const authorization =
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request," +
      "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class," +
      "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
    const docVerifier = new SigV4Verifier({
      credentials: staticCredentials([{ accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: secret }]),
      now: () => Date.UTC(2013, 4, 24),
    });
    const auth = docVerifier.verify({
      method: "PUT",
      path: "/examplebucket/chunkObject.txt",
      query: "",
      headers: {
        host: "s3.amazonaws.com",
        "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        authorization,
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": "66560",
        "content-length": "66824",
      },
    });
    const data = Buffer.alloc(66560, "a");
    const wire = Buffer.concat([
      Buffer.from("10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n"),
      data.subarray(0, 65536),
      Buffer.from("\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n"),
      data.subarray(65536),
      Buffer.from("\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n"),
    ]);
    expect(wire.length).toBe(66824);
    const result = await decode(wire, { decodedLength: 66560, signing: auth.signing, trailer: false });
    expect(result.error).toBeUndefined();
    expect(result.output.equals(data)).toBe(true);
  });
});

describe("aws-chunked: round trips in random piece sizes", () => {
  const SIZES = [0, 1, 8191, 65_536 + 3, 200_000];

  it.each(SIZES)("decodes a signed body of %d bytes (STREAMING-AWS4-HMAC-SHA256-PAYLOAD)", async (size) => {
    const prng = new Prng(seedFromEnv(1000 + size));
    const data = prng.bytes(size);
    const { signing, chunkSigning } = await streamingContext("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", size);
    const wire = encodeAwsChunked({ data, chunkSizes: randomChunkSizes(prng, size, 70_000), signing: chunkSigning });
    const result = await decode(wire, { decodedLength: size, signing, trailer: false }, prng);
    expect(result.error, `seed ${prng.seed}`).toBeUndefined();
    expect(result.output.equals(data), `seed ${prng.seed}`).toBe(true);
    expect(result.trailers).toEqual({ headers: new Map(), checksum: undefined });
  });

  it.each(SIZES)("decodes a signed body with a signed CRC32C trailer of %d bytes", async (size) => {
    const prng = new Prng(seedFromEnv(2000 + size));
    const data = prng.bytes(size);
    const { signing, chunkSigning } = await streamingContext("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", size);
    const value = checksumBase64("CRC32C", data);
    const wire = encodeAwsChunked({ data, chunkSizes: randomChunkSizes(prng, size, 70_000), signing: chunkSigning, trailers: [["x-amz-checksum-crc32c", value]] });
    const result = await decode(wire, { decodedLength: size, signing, trailer: true, declaredTrailers: ["x-amz-checksum-crc32c"] }, prng);
    expect(result.error, `seed ${prng.seed}`).toBeUndefined();
    expect(result.output.equals(data)).toBe(true);
    expect(result.trailers?.checksum).toEqual({ algorithm: "CRC32C", value });
  });

  it.each(SIZES)("decodes an unsigned body with a CRC32 trailer of %d bytes (STREAMING-UNSIGNED-PAYLOAD-TRAILER)", async (size) => {
    const prng = new Prng(seedFromEnv(3000 + size));
    const data = prng.bytes(size);
    const value = checksumBase64("CRC32", data);
    const wire = encodeAwsChunked({ data, chunkSizes: randomChunkSizes(prng, size, 70_000), trailers: [["x-amz-checksum-crc32", value]] });
    const result = await decode(wire, { decodedLength: size, trailer: true, declaredTrailers: ["x-amz-checksum-crc32"] }, prng);
    expect(result.error, `seed ${prng.seed}`).toBeUndefined();
    expect(result.output.equals(data)).toBe(true);
    expect(result.trailers?.checksum).toEqual({ algorithm: "CRC32", value });
    expect(result.trailers?.headers.get("x-amz-checksum-crc32")).toBe(value);
  });

  it("accepts a body ending right after the zero chunk, or with the last trailer line unterminated", async () => {
    const data = Buffer.from("hello");
    const bare = encodeAwsChunked({ data, chunkSizes: [5], omitFinalCrlf: true });
    expect(bare.toString()).toBe("5\r\nhello\r\n0\r\n");
    expect((await decode(bare, { decodedLength: 5, trailer: true })).output.toString()).toBe("hello");
    const value = checksumBase64("SHA256", data);
    const open = Buffer.from(`5\r\nhello\r\n0\r\nx-amz-checksum-sha256:${value}`);
    const result = await decode(open, { decodedLength: 5, trailer: true, declaredTrailers: ["x-amz-checksum-sha256"] });
    expect(result.trailers?.checksum).toEqual({ algorithm: "SHA256", value });
  });

  it("streams an unsigned multi-megabyte body without holding it", async () => {
    const chunk = Buffer.alloc(64 * 1024, 7);
    const count = 256;
    async function* wire(): AsyncGenerator<Buffer> {
      for (let i = 0; i < count; i++) yield Buffer.concat([Buffer.from("10000\r\n"), chunk, Buffer.from("\r\n")]);
      yield Buffer.from("0\r\n\r\n");
    }
    const decoder = new AwsChunkedDecoder({ decodedLength: count * chunk.length, trailer: false });
    let total = 0;
    for await (const piece of Readable.from(wire()).pipe(decoder)) total += (piece as Buffer).length;
    expect(total).toBe(count * chunk.length);
  });
});

describe("aws-chunked: tampering and malformed framing", () => {
  const DATA = Buffer.from("The quick brown fox jumps over the lazy dog, twice over.");

  async function signedWire(trailer: boolean): Promise<{ wire: Buffer; options: AwsChunkedOptions }> {
    const mode = trailer ? "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" : "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
    const { signing, chunkSigning } = await streamingContext(mode, DATA.length);
    const trailers: Array<[string, string]> = trailer ? [["x-amz-checksum-crc32", checksumBase64("CRC32", DATA)]] : [];
    const wire = encodeAwsChunked({ data: DATA, chunkSizes: [20, 20, DATA.length - 40], signing: chunkSigning, trailers });
    return { wire, options: { decodedLength: DATA.length, signing, trailer, declaredTrailers: trailer ? ["x-amz-checksum-crc32"] : [] } };
  }

  it("rejects a flipped data byte with SignatureDoesNotMatch, emitting only the chunks verified before it", async () => {
    const { wire, options } = await signedWire(false);
    const tampered = Buffer.from(wire);
    const secondChunkData = tampered.indexOf("\r\n", tampered.indexOf("\r\n14;") + 2) + 2;
    tampered.writeUInt8((tampered[secondChunkData + 3] as number) ^ 1, secondChunkData + 3);
    const result = await decode(tampered, options);
    expect(result.error).toMatchObject({ code: "SignatureDoesNotMatch", message: "The chunk signature we calculated does not match the signature you provided." });
    expect(result.output.equals(DATA.subarray(0, 20))).toBe(true);
  });

  it("rejects a changed chunk signature, swapped chunks and a changed final signature", async () => {
    const { wire, options } = await signedWire(false);
    const text = wire.toString("latin1");
    const signatures = [...text.matchAll(/chunk-signature=([0-9a-f]{64})/g)].map((match) => match[1] as string);
    expect(signatures).toHaveLength(4);
    const changed = text.replace(signatures[0] as string, (signatures[0] as string).replace(/^./, (c) => (c === "0" ? "1" : "0")));
    expect((await decode(Buffer.from(changed, "latin1"), options)).error?.code).toBe("SignatureDoesNotMatch");
    const swapped = text.replace(signatures[0] as string, "X").replace(signatures[1] as string, signatures[0] as string).replace("X", signatures[1] as string);
    expect((await decode(Buffer.from(swapped, "latin1"), options)).error?.code).toBe("SignatureDoesNotMatch");
    const final = text.replace(signatures[3] as string, signatures[2] as string);
    const result = await decode(Buffer.from(final, "latin1"), options);
    expect(result.error?.code).toBe("SignatureDoesNotMatch");
    expect(result.output.equals(DATA)).toBe(true);
  });

  it("rejects a changed trailer value or trailer signature with SignatureDoesNotMatch", async () => {
    const { wire, options } = await signedWire(true);
    const text = wire.toString("latin1");
    const otherChecksum = checksumBase64("CRC32", Buffer.from("other"));
    const value = text.replace(/x-amz-checksum-crc32:[^\r]+/, `x-amz-checksum-crc32:${otherChecksum}`);
    expect((await decode(Buffer.from(value, "latin1"), options)).error).toMatchObject({
      code: "SignatureDoesNotMatch",
      message: "The trailer signature we calculated does not match the signature you provided.",
    });
    const signature = text.replace(/x-amz-trailer-signature:./, "x-amz-trailer-signature:f");
    expect((await decode(Buffer.from(signature, "latin1"), options)).error?.code).toBe("SignatureDoesNotMatch");
    const missing = text.replace(/x-amz-trailer-signature:[^\r]+\r\n/, "");
    expect((await decode(Buffer.from(missing, "latin1"), options)).error).toMatchObject({
      code: "MalformedTrailerError",
      message: "The aws-chunked trailer is malformed: x-amz-trailer-signature is missing.",
    });
  });

  it("rejects a wrong unsigned trailing checksum with BadDigest", async () => {
    const wire = encodeAwsChunked({ data: DATA, chunkSizes: [DATA.length], trailers: [["x-amz-checksum-crc32", checksumBase64("CRC32", Buffer.from("x"))]] });
    const result = await decode(wire, { decodedLength: DATA.length, trailer: true, declaredTrailers: ["x-amz-checksum-crc32"] });
    expect(result.error).toMatchObject({ code: "BadDigest", message: "The CRC32 you specified did not match the calculated checksum." });
  });

  const UNSIGNED: AwsChunkedOptions = { decodedLength: 5, trailer: true, declaredTrailers: ["x-amz-checksum-crc32"] };
  const CRC = checksumBase64("CRC32", Buffer.from("hello"));
  const FRAMING: Array<[string, string, AwsChunkedOptions, string, string]> = [
    ["bad hex size", "zz\r\nhello\r\n0\r\n\r\n", UNSIGNED, "InvalidRequest", 'The aws-chunked body is malformed: bad chunk size "zz".'],
    ["data not followed by CRLF", "5\r\nhelloX\r\n0\r\n\r\n", UNSIGNED, "InvalidRequest", "The aws-chunked body is malformed: chunk data is not followed by CRLF."],
    ["size line without CR", "5\nhello\r\n0\r\n\r\n", UNSIGNED, "InvalidRequest", "The aws-chunked body is malformed: a line does not end with CRLF."],
    ["truncated data", "5\r\nhel", UNSIGNED, "IncompleteBody", "The aws-chunked body ended before its final chunk."],
    ["no zero chunk", "5\r\nhello\r\n", UNSIGNED, "IncompleteBody", "The aws-chunked body ended before its final chunk."],
    ["too few bytes", "3\r\nhel\r\n0\r\n\r\n", UNSIGNED, "IncompleteBody", "The aws-chunked body carried 3 bytes but x-amz-decoded-content-length declared 5."],
    ["too many bytes", "6\r\nhello!\r\n0\r\n\r\n", UNSIGNED, "InvalidRequest", "The aws-chunked body is malformed: the chunks carry more bytes than x-amz-decoded-content-length declares."],
    ["bytes after the end", "5\r\nhello\r\n0\r\n\r\nmore", { decodedLength: 5, trailer: true }, "InvalidRequest", "The aws-chunked body is malformed: bytes follow the final chunk."],
    ["overlong line", `${"0".repeat(AWS_CHUNK_LINE_BYTES_MAX + 1)}5\r\n`, UNSIGNED, "InvalidRequest", `The aws-chunked body is malformed: a line is longer than ${AWS_CHUNK_LINE_BYTES_MAX} bytes.`],
    ["undeclared trailer", "5\r\nhello\r\n0\r\nx-amz-meta-a:b\r\n\r\n", UNSIGNED, "MalformedTrailerError", 'The aws-chunked trailer is malformed: trailer "x-amz-meta-a" was not declared in x-amz-trailer.'],
    ["declared trailer missing", "5\r\nhello\r\n0\r\n\r\n", UNSIGNED, "MalformedTrailerError", "The aws-chunked trailer is malformed: x-amz-checksum-crc32 was declared in x-amz-trailer but not sent."],
    ["trailer line without colon", "5\r\nhello\r\n0\r\ngarbage\r\n\r\n", UNSIGNED, "MalformedTrailerError", 'The aws-chunked trailer is malformed: bad trailer line "garbage".'],
    ["repeated trailer", `5\r\nhello\r\n0\r\nx-amz-checksum-crc32:${CRC}\r\nx-amz-checksum-crc32:${CRC}\r\n\r\n`, UNSIGNED, "MalformedTrailerError", 'The aws-chunked trailer is malformed: trailer "x-amz-checksum-crc32" repeated or too many trailers.'],
    ["malformed checksum", "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:nope\r\n\r\n", UNSIGNED, "InvalidRequest", "Value for x-amz-checksum-crc32 header is invalid."],
    ["trailer in a mode without trailers", "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n", { decodedLength: 5, trailer: false }, "MalformedTrailerError", 'The aws-chunked trailer is malformed: trailer "x-amz-checksum-crc32" was not declared in x-amz-trailer.'],
  ];

  it.each(FRAMING)("rejects %s", async (_what, wire, options, code, message) => {
    const result = await decode(Buffer.from(wire, "latin1"), options);
    expect(result.error).toBeInstanceOf(S3Error);
    expect(result.error).toMatchObject({ code, message });
  });

  it("rejects a signed chunk without chunk-signature and an oversized signed chunk before reading its data", async () => {
    const { options } = await signedWire(false);
    expect((await decode(Buffer.from("5\r\nhello\r\n"), options)).error).toMatchObject({ code: "InvalidRequest", message: "The aws-chunked body is malformed: a chunk has no chunk-signature." });
    const big = { ...options, decodedLength: AWS_CHUNK_SIGNED_BYTES_MAX + 1 };
    const line = `${(AWS_CHUNK_SIGNED_BYTES_MAX + 1).toString(16)};chunk-signature=${"0".repeat(64)}\r\n`;
    expect((await decode(Buffer.from(line), big)).error).toMatchObject({ message: `The aws-chunked body is malformed: a signed chunk is larger than ${AWS_CHUNK_SIGNED_BYTES_MAX} bytes.` });
  });

  it("validates its options", () => {
    expect(() => new AwsChunkedDecoder({ decodedLength: -1, trailer: false })).toThrow("decodedLength: must be a non-negative safe integer");
    expect(() => new AwsChunkedDecoder({ decodedLength: 1, trailer: false, declaredTrailers: ["x-amz-checksum-crc32"] })).toThrow("declaredTrailers: needs a trailer payload mode");
    expect(() => new AwsChunkedDecoder({ decodedLength: 1, trailer: true, declaredTrailers: ["x-amz-checksum-crc32", "x-amz-checksum-sha1"] })).toThrow("Expecting a single x-amz-checksum- trailer.");
  });
});
