/**
 * Signature Version 2 presigned URLs (query-string authentication: AWSAccessKeyId, Expires,
 * Signature), the one version 2 form the S3 gateway accepts. The aws CLI v1 (`aws s3
 * presign`, Debian's awscli) and boto3's generate_presigned_url sign URLs for an endpoint of
 * their own this way unless told to use version 4, and such a URL is often handed to a
 * browser or curl, which cannot re-sign it. Requests themselves are still signed with version
 * 4 by every current client; an `Authorization: AWS ...` header stays refused (sigv4.ts).
 *
 * The signature: base64 HMAC-SHA1 under the secret key of
 *   METHOD \n Content-MD5 \n Content-Type \n Expires \n [x-amz-* headers \n] resource
 * where the resource is the path as sent (with `/bucket` first for a virtual-hosted request)
 * plus the sub-resources of the query that S3 signs, sorted by name, values decoded.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { S3Error } from "./errors.js";
import { compareStrings, headerValue, type RequestHeaders } from "./sigv4.js";

/** The sub-resources (and response overrides) S3's version 2 signature covers. */
const SIGNED_SUBRESOURCES = new Set([
  "acl", "cors", "delete", "lifecycle", "location", "logging", "notification", "partNumber", "policy", "requestPayment",
  "restore", "tagging", "torrent", "uploadId", "uploads", "versionId", "versioning", "versions", "website",
  "response-cache-control", "response-content-disposition", "response-content-encoding", "response-content-language",
  "response-content-type", "response-expires",
]);

/** An HMAC-SHA1 in base64: 28 characters, the last one '='. */
const BASE64_SHA1 = /^[A-Za-z0-9+/]{27}=$/;

/** Expires: seconds since the epoch (up to the year 5138: far beyond any real URL). */
const EPOCH_SECONDS = /^\d{1,11}$/;

export interface PresignedV2Request {
  readonly method: string;
  /** The path exactly as received, still percent-encoded. */
  readonly path: string;
  readonly headers: RequestHeaders;
  /** The bucket the Host header named (virtual-hosted addressing): the resource starts with it. */
  readonly hostBucket?: string;
}

/** True when the query carries version 2 presigning (an access key and a signature). */
export function isPresignedV2(pairs: ReadonlyArray<readonly [string, string]>): boolean {
  return pairs.some(([name]) => name === "AWSAccessKeyId") && pairs.some(([name]) => name === "Signature");
}

/** The string a version 2 presigned URL signs. `pairs` are the decoded query pairs. */
export function presignedV2StringToSign(request: PresignedV2Request, pairs: ReadonlyArray<readonly [string, string]>, expires: string): string {
  const amz = new Map<string, string[]>();
  for (const [name, value] of Object.entries(request.headers)) {
    if (!name.startsWith("x-amz-") || value === undefined) continue;
    const values = typeof value === "string" ? [value] : value;
    amz.set(name, [...(amz.get(name) ?? []), ...values.map((each) => each.trim())]);
  }
  const amzLines = [...amz.keys()].sort(compareStrings).map((name) => `${name}:${(amz.get(name) as string[]).join(",")}\n`);
  const subresources = pairs
    .filter(([name]) => SIGNED_SUBRESOURCES.has(name))
    .sort(([a], [b]) => compareStrings(a, b))
    .map(([name, value]) => (value === "" ? name : `${name}=${value}`));
  const resource = `${request.hostBucket === undefined ? "" : `/${request.hostBucket}`}${request.path}${subresources.length === 0 ? "" : `?${subresources.join("&")}`}`;
  const standard = [headerValue(request.headers, "content-md5") ?? "", headerValue(request.headers, "content-type") ?? "", expires];
  return `${request.method}\n${standard.join("\n")}\n${amzLines.join("")}${resource}`;
}

/**
 * Checks a version 2 presigned URL: known key, not expired, signature right. Returns the
 * access key; throws the S3Error S3 answers (AccessDenied for an expired or malformed
 * Expires, InvalidAccessKeyId, SignatureDoesNotMatch).
 */
export function verifyPresignedV2(request: PresignedV2Request, pairs: ReadonlyArray<readonly [string, string]>, secretKey: (accessKeyId: string) => string | undefined, nowMs: number): string {
  const param = (name: "AWSAccessKeyId" | "Expires" | "Signature"): string | undefined => pairs.find(([each]) => each === name)?.[1];
  const accessKeyId = param("AWSAccessKeyId") as string;
  const signature = param("Signature") as string;
  const expires = param("Expires");
  if (expires === undefined) throw new S3Error("AccessDenied", "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters");
  if (!EPOCH_SECONDS.test(expires)) throw new S3Error("AccessDenied", `Invalid date (should be seconds since epoch): ${expires}`);
  if (nowMs > Number(expires) * 1000) {
    throw new S3Error("AccessDenied", "Request has expired", { extra: { Expires: new Date(Number(expires) * 1000).toISOString(), ServerTime: new Date(nowMs).toISOString() } });
  }
  const secret = secretKey(accessKeyId);
  if (secret === undefined) throw new S3Error("InvalidAccessKeyId", undefined, { extra: { AWSAccessKeyId: accessKeyId } });
  const toSign = presignedV2StringToSign(request, pairs, expires);
  const expected = createHmac("sha1", secret).update(toSign, "utf8").digest("base64");
  const matches = BASE64_SHA1.test(signature) && timingSafeEqual(Buffer.from(expected, "latin1"), Buffer.from(signature, "latin1"));
  if (!matches) throw new S3Error("SignatureDoesNotMatch", undefined, { extra: { AWSAccessKeyId: accessKeyId, StringToSign: toSign, SignatureProvided: signature } });
  return accessKeyId;
}
