import { describe, expect, it } from "vitest";
import {
  AUTH_CLOCK_SKEW_MS_MAX,
  AUTH_HEADERS,
  ClusterSecret,
  EMPTY_BODY_SHA256,
  NonceCache,
  RequestVerifier,
  SECRET_BYTES_MIN,
  UNSIGNED_STREAMING,
  checkBodyHash,
  sha256Hex,
  signRequest,
  type SignedRequest,
} from "../../core/internal-auth.js";

const NOW = 1_800_000_000_000;
const secret = ClusterSecret.fromBytes(Buffer.alloc(SECRET_BYTES_MIN, 1));
const request: SignedRequest = { nodeId: "n1", method: "GET", pathAndQuery: "/v1/health", contentSha256: EMPTY_BODY_SHA256 };

function verifier(now = NOW, nonceCache?: NonceCache): RequestVerifier {
  return new RequestVerifier({ secret, nodeId: "n1", now: () => now, ...(nonceCache === undefined ? {} : { nonceCache }) });
}

function reasonOf(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    return (error as { code: string; message: string }).code + ": " + (error as Error).message;
  }
  return "accepted";
}

describe("internal auth", () => {
  it("accepts a fresh signature and returns the signed content hash", () => {
    const headers = signRequest(secret, request, NOW);
    expect(verifier().verify("GET", "/v1/health", headers)).toBe(EMPTY_BODY_SHA256);
  });

  it("refuses a changed method, path, node, body hash or streamed length", () => {
    const headers = signRequest(secret, { ...request, method: "PUT", contentSha256: UNSIGNED_STREAMING, contentLength: "100" }, NOW);
    expect(reasonOf(() => verifier().verify("GET", "/v1/health", { ...headers, "content-length": "100" }))).toMatch(/ERR_UNAUTHORIZED: .*signature does not match/);
    expect(reasonOf(() => verifier().verify("PUT", "/v1/healthz", { ...headers, "content-length": "100" }))).toMatch(/signature does not match/);
    expect(reasonOf(() => verifier().verify("PUT", "/v1/health", { ...headers, "content-length": "101" }))).toMatch(/signature does not match/);
    expect(reasonOf(() => verifier().verify("PUT", "/v1/health", { ...headers, "content-length": "100" }))).toBe("accepted");
    const json = signRequest(secret, { ...request, contentSha256: sha256Hex(Buffer.from("{}")) }, NOW);
    expect(reasonOf(() => verifier().verify("GET", "/v1/health", { ...json, [AUTH_HEADERS.contentSha256]: EMPTY_BODY_SHA256 }))).toMatch(/signature does not match/);
  });

  it("refuses a wrong secret, a request for another node, and missing or malformed headers", () => {
    const other = ClusterSecret.fromBytes(Buffer.alloc(SECRET_BYTES_MIN, 2));
    expect(reasonOf(() => verifier().verify("GET", "/v1/health", signRequest(other, request, NOW)))).toMatch(/signature does not match/);
    expect(reasonOf(() => verifier().verify("GET", "/v1/health", signRequest(secret, { ...request, nodeId: "n2" }, NOW)))).toMatch(/signed for node n2, this is node n1/);
    const headers = signRequest(secret, request, NOW);
    for (const name of Object.values(AUTH_HEADERS)) {
      expect(reasonOf(() => verifier().verify("GET", "/v1/health", { ...headers, [name]: undefined }))).toBe(`ERR_UNAUTHORIZED: internal request refused: missing ${name} header`);
    }
    expect(reasonOf(() => verifier().verify("GET", "/v1/health", { ...headers, [AUTH_HEADERS.date]: "-5" }))).toMatch(/malformed x-tessera-date/);
    expect(reasonOf(() => verifier().verify("GET", "/v1/health", { ...headers, [AUTH_HEADERS.signature]: "zz" }))).toMatch(/malformed x-tessera-signature/);
  });

  it("refuses dates outside the skew window either way", () => {
    const old = signRequest(secret, request, NOW - AUTH_CLOCK_SKEW_MS_MAX - 1);
    const future = signRequest(secret, request, NOW + AUTH_CLOCK_SKEW_MS_MAX + 1);
    const edge = signRequest(secret, request, NOW - AUTH_CLOCK_SKEW_MS_MAX);
    expect(reasonOf(() => verifier().verify("GET", "/v1/health", old))).toMatch(new RegExp(`is more than ${AUTH_CLOCK_SKEW_MS_MAX} ms from the node's clock`));
    expect(reasonOf(() => verifier().verify("GET", "/v1/health", future))).toMatch(new RegExp(`is more than ${AUTH_CLOCK_SKEW_MS_MAX} ms`));
    expect(reasonOf(() => verifier().verify("GET", "/v1/health", edge))).toBe("accepted");
  });

  it("draws a distinct 128-bit nonce for every request, across refills of the random pool", () => {
    const nonces = Array.from({ length: 1000 }, () => signRequest(secret, { nodeId: "n1", method: "GET", pathAndQuery: "/v1/health", contentSha256: EMPTY_BODY_SHA256 }, NOW)[AUTH_HEADERS.nonce]);
    expect(nonces.every((nonce) => /^[0-9a-f]{32}$/.test(nonce ?? ""))).toBe(true);
    expect(new Set(nonces).size).toBe(1000);
  });

  it("refuses a replayed nonce for as long as its date is acceptable, then forgets it", () => {
    const nonces = new NonceCache();
    const headers = signRequest(secret, request, NOW);
    expect(reasonOf(() => verifier(NOW, nonces).verify("GET", "/v1/health", headers))).toBe("accepted");
    expect(reasonOf(() => verifier(NOW + AUTH_CLOCK_SKEW_MS_MAX, nonces).verify("GET", "/v1/health", headers))).toMatch(/replayed nonce/);
    // Past the window the date itself is refused; the cache may drop the nonce.
    expect(reasonOf(() => verifier(NOW + AUTH_CLOCK_SKEW_MS_MAX + 1, nonces).verify("GET", "/v1/health", signRequest(secret, request, NOW + AUTH_CLOCK_SKEW_MS_MAX + 1)))).toBe("accepted");
    expect(nonces.size).toBe(1);
  });

  it("stays bounded: a full nonce cache refuses with ERR_NODE_UNAVAILABLE", () => {
    const nonces = new NonceCache(2);
    nonces.add("a", NOW + 10, NOW);
    nonces.add("b", NOW + 10, NOW);
    expect(reasonOf(() => nonces.add("c", NOW + 10, NOW))).toMatch(/^ERR_NODE_UNAVAILABLE: replay cache full/);
    nonces.add("c", NOW + 30, NOW + 11);
    expect(nonces.size).toBe(1);
  });

  it("forged requests never enter the nonce cache", () => {
    const nonces = new NonceCache();
    const other = ClusterSecret.fromBytes(Buffer.alloc(SECRET_BYTES_MIN, 2));
    reasonOf(() => verifier(NOW, nonces).verify("GET", "/v1/health", signRequest(other, request, NOW)));
    expect(nonces.size).toBe(0);
  });

  it("holds a JSON body to its signed hash and refuses UNSIGNED-STREAMING for it", () => {
    const body = Buffer.from('{"a":1}');
    expect(() => checkBodyHash(sha256Hex(body), body)).not.toThrow();
    expect(reasonOf(() => checkBodyHash(sha256Hex(body), Buffer.from('{"a":2}')))).toMatch(/body does not match its signed SHA-256/);
    expect(reasonOf(() => checkBodyHash(UNSIGNED_STREAMING, body))).toMatch(/must be signed, not UNSIGNED-STREAMING/);
  });

  it("validates secrets and never prints them", () => {
    expect(reasonOf(() => ClusterSecret.fromBytes(Buffer.alloc(SECRET_BYTES_MIN - 1)))).toBe(`ERR_INVALID_ARGUMENT: secret: must be at least ${SECRET_BYTES_MIN} bytes, got ${SECRET_BYTES_MIN - 1}`);
    expect(JSON.stringify({ secret })).toBe('{"secret":"[cluster secret]"}');
    expect(String(secret)).toBe("[cluster secret]");
  });
});
