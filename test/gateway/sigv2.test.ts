/**
 * Signature Version 2 presigned URLs (gateway/s3/sigv2.ts): AWS's documented example, the
 * sub-resources and x-amz-* headers the signature covers, and S3's answers to expired,
 * malformed, unknown-key and wrong signatures; through SigV4Verifier, only where allowed.
 */
import { createHmac } from "node:crypto";
import { CreateBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { request as httpRequest } from "undici";
import { describe, expect, it } from "vitest";
import { presignedV2StringToSign } from "../../gateway/s3/sigv2.js";
import { parseQueryPairs, SigV4Verifier, staticCredentials, type SignedRequest } from "../../gateway/s3/sigv4.js";
import { ACCESS_KEY, SECRET_KEY, startInProcessCluster } from "./in-process-cluster.js";
import { expectS3Error } from "./signing.js";

// AWS's example of query-string authentication (S3 developer guide, "Signing and
// authenticating REST requests"): bucket johnsmith, GET /photos/puppy.jpg, valid until
// 1175139620 (2007-03-29T03:40:20Z).
const EXAMPLE_KEY = "AKIAIOSFODNN7EXAMPLE";
const EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const EXAMPLE_EXPIRES = 1175139620;
const EXAMPLE_SIGNATURE = "NpgCjnDzrM+WFzoENXmpNDUsSn8=";
const BEFORE_EXPIRY_MS = (EXAMPLE_EXPIRES - 60) * 1000;

function verifier(now = BEFORE_EXPIRY_MS, presignedV2 = true): SigV4Verifier {
  return new SigV4Verifier({ credentials: staticCredentials([{ accessKeyId: EXAMPLE_KEY, secretAccessKey: EXAMPLE_SECRET }]), now: () => now, presignedV2 });
}

function query(params: Record<string, string>): string {
  return Object.entries(params).map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`).join("&");
}

const example: SignedRequest = {
  method: "GET",
  path: "/johnsmith/photos/puppy.jpg",
  query: query({ AWSAccessKeyId: EXAMPLE_KEY, Expires: String(EXAMPLE_EXPIRES), Signature: EXAMPLE_SIGNATURE }),
  headers: { host: "127.0.0.1:9000" },
};

/** The request signed as a client does: HMAC-SHA1 of the string to sign, in base64. */
function signed(request: SignedRequest, params: Record<string, string>, expires = EXAMPLE_EXPIRES): SignedRequest {
  const unsigned = { ...request, query: query({ ...params, AWSAccessKeyId: EXAMPLE_KEY, Expires: String(expires) }) };
  const toSign = presignedV2StringToSign(unsigned, parseQueryPairs(unsigned.query), String(expires));
  const signature = createHmac("sha1", EXAMPLE_SECRET).update(toSign).digest("base64");
  return { ...unsigned, query: `${unsigned.query}&Signature=${encodeURIComponent(signature)}` };
}

describe("Signature Version 2 presigned URLs", () => {
  it("verifies AWS's documented example, path-style and virtual-hosted, as an unsigned payload", () => {
    expect(presignedV2StringToSign(example, parseQueryPairs(example.query), String(EXAMPLE_EXPIRES))).toBe("GET\n\n\n1175139620\n/johnsmith/photos/puppy.jpg");
    const auth = verifier().verify(example);
    expect(auth).toMatchObject({ accessKeyId: EXAMPLE_KEY, mechanism: "presigned-v2", payload: { kind: "unsigned" }, signing: undefined });
    const hosted = { ...example, path: "/photos/puppy.jpg", headers: { host: "johnsmith.s3.example.com" }, hostBucket: "johnsmith" };
    expect(verifier().verify(hosted).accessKeyId).toBe(EXAMPLE_KEY);
  });

  it("signs the sub-resources and response overrides (sorted, values decoded) and no other parameter", () => {
    const request = signed({ ...example, path: "/bucket/a%20key" }, { "response-content-type": "text/plain; charset=utf-8", versionId: "v1", "x-id": "GetObject" });
    const toSign = presignedV2StringToSign(request, parseQueryPairs(request.query), String(EXAMPLE_EXPIRES));
    expect(toSign).toBe("GET\n\n\n1175139620\n/bucket/a%20key?response-content-type=text/plain; charset=utf-8&versionId=v1");
    expect(verifier().verify(request).accessKeyId).toBe(EXAMPLE_KEY);
    // Another override value, or another version, than the one signed: refused.
    const swapped = { ...request, query: request.query.replace("versionId=v1", "versionId=v2") };
    const error = expectS3Error(() => verifier().verify(swapped), "SignatureDoesNotMatch");
    expect(error.extra.StringToSign).toBe(toSign.replace("versionId=v1", "versionId=v2"));
    // A parameter S3 does not sign may be added.
    expect(verifier().verify({ ...request, query: `${request.query}&x-extra=1` }).accessKeyId).toBe(EXAMPLE_KEY);
  });

  it("signs the method, Content-MD5, Content-Type and every x-amz-* header", () => {
    const headers = { host: "h", "content-type": "image/jpeg", "content-md5": "1B2M2Y8AsgTpgAmY7PhCfg==", "x-amz-meta-b": "2", "x-amz-meta-a": " 1 " };
    const request = signed({ ...example, method: "PUT", headers }, {});
    expect(presignedV2StringToSign(request, parseQueryPairs(request.query), String(EXAMPLE_EXPIRES))).toBe(
      "PUT\n1B2M2Y8AsgTpgAmY7PhCfg==\nimage/jpeg\n1175139620\nx-amz-meta-a:1\nx-amz-meta-b:2\n/johnsmith/photos/puppy.jpg",
    );
    expect(verifier().verify(request).accessKeyId).toBe(EXAMPLE_KEY);
    expectS3Error(() => verifier().verify({ ...request, method: "DELETE" }), "SignatureDoesNotMatch");
    expectS3Error(() => verifier().verify({ ...request, headers: { ...headers, "content-type": "text/html" } }), "SignatureDoesNotMatch");
    expectS3Error(() => verifier().verify({ ...request, headers: { ...headers, "x-amz-meta-c": "3" } }), "SignatureDoesNotMatch");
  });

  it("answers as S3 does: expired, malformed Expires, unknown key, wrong or malformed signature", () => {
    const expired = expectS3Error(() => verifier(EXAMPLE_EXPIRES * 1000 + 1000).verify(example), "AccessDenied", "Request has expired");
    expect(expired.status).toBe(403);
    expect(verifier(EXAMPLE_EXPIRES * 1000).verify(example).accessKeyId).toBe(EXAMPLE_KEY);
    const badDate = { ...example, query: example.query.replace(`Expires=${EXAMPLE_EXPIRES}`, "Expires=tomorrow") };
    expectS3Error(() => verifier().verify(badDate), "AccessDenied", "Invalid date (should be seconds since epoch): tomorrow");
    const noExpires = { ...example, query: example.query.replace(`&Expires=${EXAMPLE_EXPIRES}`, "") };
    expectS3Error(() => verifier().verify(noExpires), "AccessDenied", "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters");
    const unknown = expectS3Error(() => verifier().verify({ ...example, query: example.query.replace(EXAMPLE_KEY, "NOSUCHKEY") }), "InvalidAccessKeyId");
    expect(unknown.status).toBe(403);
    for (const signature of ["AAAAjnDzrM%2BWFzoENXmpNDUsSn8%3D", "short", ""]) {
      const forged = { ...example, query: example.query.replace(encodeURIComponent(EXAMPLE_SIGNATURE), signature) };
      expect(expectS3Error(() => verifier().verify(forged), "SignatureDoesNotMatch").status).toBe(403);
    }
  });

  it("is refused with InvalidRequest by a verifier that does not take version 2 (the admin API's)", () => {
    expectS3Error(() => verifier(BEFORE_EXPIRY_MS, false).verify(example), "InvalidRequest");
  });

  it("opens an object through the gateway, path-style and virtual-hosted (the bucket from the Host header)", async () => {
    const cluster = await startInProcessCluster();
    try {
      const s3 = cluster.client();
      await s3.send(new CreateBucketCommand({ Bucket: "shared" }));
      await s3.send(new PutObjectCommand({ Bucket: "shared", Key: "a file.txt", Body: "hello, version 2" }));
      const expires = String(Math.floor(Date.now() / 1000) + 300);
      const port = new URL(cluster.endpoint).port;
      const get = async (path: string, host: string, resource: string): Promise<{ status: number; body: string }> => {
        const signature = createHmac("sha1", SECRET_KEY).update(`GET\n\n\n${expires}\n${resource}`).digest("base64");
        const url = `${cluster.endpoint}${path}?AWSAccessKeyId=${ACCESS_KEY}&Expires=${expires}&Signature=${encodeURIComponent(signature)}`;
        const response = await httpRequest(url, { headers: { host } });
        return { status: response.statusCode, body: await response.body.text() };
      };
      expect(await get("/shared/a%20file.txt", `127.0.0.1:${port}`, "/shared/a%20file.txt")).toEqual({ status: 200, body: "hello, version 2" });
      expect(await get("/a%20file.txt", `shared.localhost:${port}`, "/shared/a%20file.txt")).toEqual({ status: 200, body: "hello, version 2" });
      // Signed for a virtual-hosted request without the bucket, as a careless signer would: refused.
      const unsigned = await get("/a%20file.txt", `shared.localhost:${port}`, "/a%20file.txt");
      expect(unsigned.status).toBe(403);
      expect(unsigned.body).toContain("<Code>SignatureDoesNotMatch</Code>");
    } finally {
      await cluster.stop();
    }
  });
});
