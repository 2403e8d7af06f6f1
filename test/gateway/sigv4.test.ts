import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { S3Client, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { describe, expect, it } from "vitest";
import { CLOCK_SKEW_MS_MAX, SIGNING_KEY_CACHE_ENTRIES_MAX } from "../../gateway/s3/limits.js";
import {
  type Authenticated,
  canonicalUri,
  EMPTY_SHA256,
  headersFromRaw,
  parsePayloadMode,
  PayloadSha256Verifier,
  type SignedRequest,
  SigV4Verifier,
  sha256Hex,
  staticCredentials,
} from "../../gateway/s3/sigv4.js";
import { ACCESS_KEY, expectS3Error, objectPath, presign, SECRET_KEY, signHeader, SIGNING_TIME } from "./signing.js";

const credentials = staticCredentials([
  { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
  { accessKeyId: "SECONDKEY", secretAccessKey: "second-secret" },
]);

async function drain(source: AsyncIterable<Buffer>): Promise<void> {
  for await (const _chunk of source) void _chunk;
}

function verifier(now = SIGNING_TIME): SigV4Verifier {
  return new SigV4Verifier({ credentials, now: () => now });
}

const ODD_KEYS = [
  "plain.txt",
  "with space/and  two  spaces",
  "plus+equals=amp&question?hash#",
  "ünïcödé/ключ/鍵/😀",
  "percent%20literal%2F",
  "reserved!'()*~;:@$,",
  "double//slash/./dot/../dotdot",
  "trailing/",
  "tab\there",
];

describe("SigV4 Authorization header", () => {
  it.each(ODD_KEYS)("verifies a GET of key %j signed by @smithy/signature-v4", async (key) => {
    const request = await signHeader({ method: "GET", path: objectPath("bucket", key) });
    const auth = verifier().verify(request);
    expect(auth).toMatchObject({ accessKeyId: ACCESS_KEY, mechanism: "header", region: "us-east-1", payload: { kind: "sha256", sha256: EMPTY_SHA256 } });
    expect(auth.signedHeaders).toEqual(["host", "x-amz-content-sha256", "x-amz-date"]);
  });

  it.each<Record<string, string>>([
    { "list-type": "2", prefix: "a b/c+d", delimiter: "/", "max-keys": "10" },
    { acl: "" },
    { uploads: "", prefix: "ü=é&x" },
    { "x-id": "GetObject", "response-content-disposition": 'attachment; filename="a b.txt"' },
    { tagging: "", versionId: "3/L4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo" },
  ])("verifies query string %j", async (query) => {
    const request = await signHeader({ method: "GET", path: "/bucket", query });
    expect(verifier().verify(request).mechanism).toBe("header");
  });

  it("accepts a query sent with '+' for spaces and lower-case escapes, as some clients do", async () => {
    const request = await signHeader({ method: "GET", path: "/bucket", query: { prefix: "a b", marker: "é" } });
    const rewritten = request.query.replace("%20", "+").replace("%C3%A9", "%c3%a9");
    expect(rewritten).not.toBe(request.query);
    expect(verifier().verify({ ...request, query: rewritten }).accessKeyId).toBe(ACCESS_KEY);
  });

  it("verifies any region in the credential scope, and the signature must match that scope", async () => {
    for (const region of ["us-east-1", "eu-west-3", "garage", "auto"]) {
      const request = await signHeader({ method: "GET", path: "/bucket/key" }, { region });
      expect(verifier().verify(request).region).toBe(region);
      const otherScope = String(request.headers.authorization).replace(`/${region}/`, "/us-west-2/");
      const swapped = { ...request, headers: { ...request.headers, authorization: otherScope } };
      expectS3Error(() => verifier().verify(swapped), "SignatureDoesNotMatch");
    }
  });

  it("treats a bare query name (?acl) as name with an empty value", async () => {
    const request = await signHeader({ method: "GET", path: "/bucket", query: { acl: "" } });
    expect(request.query).toBe("acl=");
    expect(verifier().verify({ ...request, query: "acl" }).accessKeyId).toBe(ACCESS_KEY);
  });

  it("trims header values and folds runs of spaces as AWS does", async () => {
    const request = await signHeader({ method: "PUT", path: "/bucket/key", headers: { "x-amz-meta-note": "  a   b\t c  " }, body: "" });
    const auth = verifier().verify(request);
    expect(auth.signedHeaders).toContain("x-amz-meta-note");
    const refolded = { ...request, headers: { ...request.headers, "x-amz-meta-note": "a b c" } };
    expect(verifier().verify(refolded).accessKeyId).toBe(ACCESS_KEY);
  });

  it("joins repeated headers with ',' (rawHeaders keeps them apart)", () => {
    expect(headersFromRaw(["Host", "h", "X-Amz-Meta-A", "1", "x-amz-meta-a", "2"])).toEqual({ host: ["h"], "x-amz-meta-a": ["1", "2"] });
  });

  it("returns the payload mode the client declared", async () => {
    const body = "hello world";
    const signed = await signHeader({ method: "PUT", path: "/bucket/key", body });
    expect(verifier().verify(signed).payload).toEqual({ kind: "sha256", sha256: sha256Hex(body) });
    const unsigned = await signHeader({ method: "PUT", path: "/bucket/key", headers: { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" } });
    expect(verifier().verify(unsigned).payload).toEqual({ kind: "unsigned" });
    const streaming = await signHeader({ method: "PUT", path: "/bucket/key", headers: { "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER" } });
    expect(verifier().verify(streaming).payload).toEqual({ kind: "streaming", signed: false, trailer: true });
  });

  it("parses every payload mode and rejects the rest with S3's messages", () => {
    expect(parsePayloadMode("STREAMING-AWS4-HMAC-SHA256-PAYLOAD")).toEqual({ kind: "streaming", signed: true, trailer: false });
    expect(parsePayloadMode("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER")).toEqual({ kind: "streaming", signed: true, trailer: true });
    expect(parsePayloadMode(EMPTY_SHA256.toUpperCase())).toEqual({ kind: "sha256", sha256: EMPTY_SHA256 });
    expectS3Error(() => parsePayloadMode("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"), "NotImplemented", "Signature Version 4A (ECDSA) streaming payloads are not implemented.");
    expectS3Error(
      () => parsePayloadMode("abc"),
      "InvalidArgument",
      "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, " +
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, " +
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER or a valid sha256 value.",
    );
  });

  it("encodes path segments once, never normalising", () => {
    expect(canonicalUri("/b/a%20b/c%2Fd/./../%E2%82%AC")).toBe("/b/a%20b/c%2Fd/./../%E2%82%AC");
    expect(canonicalUri("/b/a+b/~x!")).toBe("/b/a%2Bb/~x%21");
    expect(canonicalUri("")).toBe("/");
    expectS3Error(() => canonicalUri("/b/%E2%82"), "InvalidURI", "Couldn't parse the specified URI.");
  });
});

describe("SigV4 tampering and failures", () => {
  async function signedPut(): Promise<SignedRequest> {
    return signHeader({ method: "PUT", path: objectPath("bucket", "dir/key one"), query: { "x-id": "PutObject" }, headers: { "x-amz-meta-color": "blue", "content-type": "text/plain" }, body: "payload" });
  }

  const TAMPERS: Array<[string, (request: SignedRequest) => SignedRequest]> = [
    ["method", (request) => ({ ...request, method: "DELETE" })],
    ["path", (request) => ({ ...request, path: request.path.replace("one", "two") })],
    ["query value", (request) => ({ ...request, query: "x-id=GetObject" })],
    ["added query", (request) => ({ ...request, query: `${request.query}&acl=` })],
    ["signed header", (request) => ({ ...request, headers: { ...request.headers, "x-amz-meta-color": "red" } })],
    ["content-type", (request) => ({ ...request, headers: { ...request.headers, "content-type": "text/html" } })],
    ["host", (request) => ({ ...request, headers: { ...request.headers, host: "evil.example" } })],
    ["payload hash", (request) => ({ ...request, headers: { ...request.headers, "x-amz-content-sha256": sha256Hex("other") } })],
    ["signature", (request) => ({ ...request, headers: { ...request.headers, authorization: String(request.headers.authorization).replace(/Signature=./, "Signature=0") } })],
  ];

  it.each(TAMPERS)("rejects a tampered %s with SignatureDoesNotMatch", async (_what, tamper) => {
    const request = await signedPut();
    expect(verifier().verify(request).accessKeyId).toBe(ACCESS_KEY);
    const error = expectS3Error(
      () => verifier().verify(tamper(request)),
      "SignatureDoesNotMatch",
      "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    );
    expect(error.status).toBe(403);
    expect(error.extra.AWSAccessKeyId).toBe(ACCESS_KEY);
  });

  it("rejects a body that does not match the signed hash, at the end of the stream", async () => {
    const request = await signHeader({ method: "PUT", path: "/bucket/key", body: "payload" });
    const auth = verifier().verify(request);
    expect(auth.payload.kind).toBe("sha256");
    const expected = (auth.payload as { sha256: string }).sha256;
    await pipeline(Readable.from([Buffer.from("pay"), Buffer.from("load")]), new PayloadSha256Verifier(expected), drain);
    const bad = pipeline(Readable.from([Buffer.from("paylaod")]), new PayloadSha256Verifier(expected), drain);
    await expect(bad).rejects.toMatchObject({ code: "XAmzContentSHA256Mismatch", message: "The provided 'x-amz-content-sha256' header does not match what was computed.", extra: { ClientComputedContentSHA256: expected, S3ComputedContentSHA256: sha256Hex("paylaod") } });
  });

  it("rejects a wrong secret with SignatureDoesNotMatch and an unknown key with InvalidAccessKeyId", async () => {
    const wrongSecret = await signHeader({ method: "GET", path: "/bucket/key" }, { secret: "not-the-secret" });
    expectS3Error(() => verifier().verify(wrongSecret), "SignatureDoesNotMatch");
    const unknown = await signHeader({ method: "GET", path: "/bucket/key" }, { accessKey: "NOSUCHKEY" });
    const error = expectS3Error(() => verifier().verify(unknown), "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.");
    expect(error.status).toBe(403);
    const second = await signHeader({ method: "GET", path: "/bucket/key" }, { accessKey: "SECONDKEY", secret: "second-secret" });
    expect(verifier().verify(second).accessKeyId).toBe("SECONDKEY");
  });

  it("answers AccessDenied to an unsigned request", () => {
    const error = expectS3Error(
      () => verifier().verify({ method: "GET", path: "/bucket/key", query: "", headers: { host: "h" } }),
      "AccessDenied",
      "Anonymous access is not allowed; sign the request with AWS Signature Version 4.",
    );
    expect(error.status).toBe(403);
  });

  it("answers InvalidRequest to a URL presigned with Signature Version 2, not AccessDenied as if it were unsigned", () => {
    const query = "AWSAccessKeyId=AKIDEXAMPLE&Signature=S6h6WuQ3LZPUUChFCu9Si7v4KD4%3D&Expires=1795741339";
    const error = expectS3Error(
      () => verifier().verify({ method: "GET", path: "/bucket/key", query, headers: { host: "h" } }),
      "InvalidRequest",
      "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256 (this URL is presigned with Signature Version 2).",
    );
    expect(error.status).toBe(400);
  });

  it("rejects clock skew over 15 minutes either way", async () => {
    const request = await signHeader({ method: "GET", path: "/bucket/key" });
    expect(verifier(SIGNING_TIME + CLOCK_SKEW_MS_MAX).verify(request).accessKeyId).toBe(ACCESS_KEY);
    expect(verifier(SIGNING_TIME - CLOCK_SKEW_MS_MAX).verify(request).accessKeyId).toBe(ACCESS_KEY);
    for (const now of [SIGNING_TIME + CLOCK_SKEW_MS_MAX + 1000, SIGNING_TIME - CLOCK_SKEW_MS_MAX - 1000]) {
      const error = expectS3Error(() => verifier(now).verify(request), "RequestTimeTooSkewed", "The difference between the request time and the current time is too large.");
      expect(error.status).toBe(403);
      expect(error.extra).toMatchObject({ RequestTime: "20240524T131415Z", MaxAllowedSkewMilliseconds: "900000" });
    }
  });

  it("rejects x-amz-* headers that were not signed", async () => {
    const request = await signHeader({ method: "GET", path: "/bucket/key" });
    const added = { ...request, headers: { ...request.headers, "x-amz-meta-sneaky": "1" } };
    const error = expectS3Error(() => verifier().verify(added), "AccessDenied", "There were headers present in the request which were not signed");
    expect(error.extra.HeadersNotSigned).toBe("x-amz-meta-sneaky");
  });

  it("requires x-amz-content-sha256 with the Authorization header", async () => {
    const request = await signHeader({ method: "GET", path: "/bucket/key" });
    const { "x-amz-content-sha256": _dropped, ...headers } = request.headers;
    expectS3Error(() => verifier().verify({ ...request, headers }), "InvalidRequest", "Missing required header for this request: x-amz-content-sha256");
  });

  it("rejects malformed Authorization headers with S3's codes and messages", async () => {
    const request = await signHeader({ method: "GET", path: "/bucket/key" });
    const authorization = String(request.headers.authorization);
    const withAuthorization = (value: string): SignedRequest => ({ ...request, headers: { ...request.headers, authorization: value } });
    const cases: Array<[string, string, string]> = [
      ["AWS AKIDEXAMPLE:c2lnbmF0dXJl", "InvalidRequest", "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."],
      ["AWS4-ECDSA-P256-SHA256 Credential=x", "NotImplemented", "Signature Version 4A is not implemented."],
      [authorization.replace("/s3/", "/iam/"), "AuthorizationHeaderMalformed", 'The authorization header is malformed; incorrect service "iam". This endpoint belongs to "s3".'],
      [authorization.replace("/aws4_request", "/aws5_request"), "AuthorizationHeaderMalformed", 'The authorization header is malformed; incorrect terminal "aws5_request". This endpoint uses "aws4_request".'],
      [authorization.replace("/20240524/", "/20240523/"), "AuthorizationHeaderMalformed", 'The authorization header is malformed; Invalid credential date "20240523". This date is not the same as X-Amz-Date: "20240524".'],
      [authorization.replace("/20240524/", "/2024-05-24/"), "AuthorizationHeaderMalformed", 'The authorization header is malformed; incorrect date format "2024-05-24". This date in the credential must be in the format "yyyyMMdd".'],
      [authorization.replace("/us-east-1", ""), "AuthorizationHeaderMalformed", 'The authorization header is malformed; the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'],
      [authorization.replace(/, Signature=.*/, ""), "AuthorizationHeaderMalformed", "The authorization header is malformed; it must contain Credential, SignedHeaders and Signature."],
      [authorization.replace("SignedHeaders=host;", "SignedHeaders="), "AuthorizationHeaderMalformed", "The authorization header is malformed; the SignedHeaders must include host."],
      [authorization.replace("SignedHeaders=host;", "SignedHeaders=Host;"), "AuthorizationHeaderMalformed", "The authorization header is malformed; the SignedHeaders are mal-formed."],
      ["AWS4-HMAC-SHA256 garbage", "AuthorizationHeaderMalformed", 'The authorization header is malformed; the field "garbage" is not of the form name=value.'],
      [`${authorization}${" ".repeat(9000)}`, "AuthorizationHeaderMalformed", "The authorization header is malformed; it is too long."],
    ];
    for (const [value, code, message] of cases) {
      const error = expectS3Error(() => verifier().verify(withAuthorization(value)), code, message);
      expect(error.status).toBe(code === "NotImplemented" ? 501 : 400);
    }
    const badDate = { ...request, headers: { ...request.headers, "x-amz-date": "20240231T000000Z" } };
    expectS3Error(() => verifier().verify(badDate), "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header");
  });

  it("caches one derived key per (key, date, region) and bounds the cache", async () => {
    const subject = verifier();
    const request = await signHeader({ method: "GET", path: "/bucket/key" });
    subject.verify(request);
    subject.verify(request);
    expect(subject.cachedSigningKeys).toBe(1);
    for (let i = 0; i < SIGNING_KEY_CACHE_ENTRIES_MAX + 10; i++) subject.signingKey(ACCESS_KEY, SECRET_KEY, "20240524", `region-${i}`);
    expect(subject.cachedSigningKeys).toBe(SIGNING_KEY_CACHE_ENTRIES_MAX);
  });

  it("validates credentials at construction, naming the bad one", () => {
    expect(() => staticCredentials([])).toThrow("credentials: at least one access key is required");
    expect(() => staticCredentials([{ accessKeyId: "a/b", secretAccessKey: "s" }])).toThrow("credentials[0].accessKeyId: must be printable ASCII without '/' or spaces");
    expect(() => staticCredentials([{ accessKeyId: "a", secretAccessKey: "" }])).toThrow("credentials[0].secretAccessKey: must not be empty");
    expect(() => staticCredentials([{ accessKeyId: "a", secretAccessKey: "s" }, { accessKeyId: "a", secretAccessKey: "t" }])).toThrow("credentials[1].accessKeyId: duplicate access key a");
  });
});

describe("SigV4 presigned URLs", () => {
  it.each(ODD_KEYS)("verifies a presigned GET of key %j", async (key) => {
    const request = await presign({ method: "GET", path: objectPath("bucket", key), query: { "response-content-type": "text/plain; charset=utf-8" } }, 3600);
    expect(request.headers.authorization).toBeUndefined();
    const auth: Authenticated = verifier(SIGNING_TIME + 3599_000).verify(request);
    expect(auth).toMatchObject({ accessKeyId: ACCESS_KEY, mechanism: "presigned", payload: { kind: "unsigned" } });
  });

  it("verifies URLs from @aws-sdk/s3-request-presigner with a real S3Client", async () => {
    const client = new S3Client({ region: "eu-central-1", endpoint: "http://127.0.0.1:9000", forcePathStyle: true, credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY } });
    const signingDate = new Date(SIGNING_TIME);
    for (const command of [
      new GetObjectCommand({ Bucket: "bucket", Key: "a b/ü+=.txt", Range: "bytes=0-9" }),
      new PutObjectCommand({ Bucket: "bucket", Key: "up load", ContentType: "text/plain", Metadata: { color: "blue" } }),
    ]) {
      const url = new URL(await getSignedUrl(client, command, { expiresIn: 900, signingDate }));
      const signedHeaders = url.searchParams.get("X-Amz-SignedHeaders") ?? "";
      const headers: Record<string, string> = { host: url.host };
      if (signedHeaders.includes("range")) headers.range = "bytes=0-9";
      if (signedHeaders.includes("content-type")) headers["content-type"] = "text/plain";
      if (signedHeaders.includes("x-amz-meta-color")) headers["x-amz-meta-color"] = "blue";
      const request = { method: command instanceof GetObjectCommand ? "GET" : "PUT", path: url.pathname, query: url.search.slice(1), headers };
      expect(verifier(SIGNING_TIME + 1000).verify(request).region).toBe("eu-central-1");
      expectS3Error(() => verifier(SIGNING_TIME + 1000).verify({ ...request, method: "POST" }), "SignatureDoesNotMatch");
    }
    client.destroy();
  });

  it("honours X-Amz-Expires: expired is AccessDenied 'Request has expired'", async () => {
    const request = await presign({ method: "GET", path: "/bucket/key" }, 60);
    expect(verifier(SIGNING_TIME + 60_000).verify(request).mechanism).toBe("presigned");
    const error = expectS3Error(() => verifier(SIGNING_TIME + 61_000).verify(request), "AccessDenied", "Request has expired");
    expect(error.status).toBe(403);
    expect(error.extra).toMatchObject({ "X-Amz-Expires": "60", Expires: "2024-05-24T13:15:15.000Z" });
    expectS3Error(() => verifier(SIGNING_TIME - CLOCK_SKEW_MS_MAX - 1000).verify(request), "AccessDenied", "Request is not valid yet");
  });

  it("rejects tampered presigned requests", async () => {
    const request = await presign({ method: "GET", path: "/bucket/key", query: { versionId: "v1" } }, 600);
    expectS3Error(() => verifier().verify({ ...request, path: "/bucket/other" }), "SignatureDoesNotMatch");
    expectS3Error(() => verifier().verify({ ...request, query: request.query.replace("versionId=v1", "versionId=v2") }), "SignatureDoesNotMatch");
    expectS3Error(() => verifier().verify({ ...request, query: request.query.replace("X-Amz-Expires=600", "X-Amz-Expires=6000") }), "SignatureDoesNotMatch");
    expectS3Error(() => verifier().verify({ ...request, headers: { ...request.headers, authorization: "AWS4-HMAC-SHA256 x=y" } }), "InvalidArgument");
  });

  it("rejects malformed query parameters with AuthorizationQueryParametersError", async () => {
    const request = await presign({ method: "GET", path: "/bucket/key" }, 600);
    const replace = (from: RegExp, to: string): SignedRequest => ({ ...request, query: request.query.replace(from, to) });
    const cases: Array<[SignedRequest, string]> = [
      [replace(/X-Amz-Expires=600/, "X-Amz-Expires=604801"), "X-Amz-Expires must be less than a week (in seconds) that is; 604800 seconds"],
      [replace(/X-Amz-Expires=600/, "X-Amz-Expires=-1"), "X-Amz-Expires should be a number"],
      [replace(/&?X-Amz-Signature=[0-9a-f]+/, ""), "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."],
      [replace(/X-Amz-Algorithm=[^&]+/, "X-Amz-Algorithm=AWS4-HMAC-SHA1"), 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"'],
      [replace(/X-Amz-Date=[^&]+/, "X-Amz-Date=2024-05-24"), "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\""],
      [replace(/%2Fs3%2F/, "%2Fs4%2F"), 'Error parsing the X-Amz-Credential parameter; incorrect service "s4". This endpoint belongs to "s3".'],
      [replace(/X-Amz-SignedHeaders=host/, "X-Amz-SignedHeaders=range"), "Error parsing the X-Amz-SignedHeaders parameter; the SignedHeaders must include host."],
    ];
    for (const [tampered, message] of cases) {
      const error = expectS3Error(() => verifier().verify(tampered), "AuthorizationQueryParametersError", message);
      expect(error.status).toBe(400);
    }
  });
});
