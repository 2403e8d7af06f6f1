import { describe, expect, it } from "vitest";
import { S3Error } from "../../gateway/s3/errors.js";
import { KEY_BYTES_MAX } from "../../gateway/s3/limits.js";
import {
  assertNever,
  dispatchEndpoint,
  type Endpoint,
  type EndpointHandlers,
  type EndpointKind,
  ENDPOINT_KINDS,
  parseCopySource,
  type Route,
  routeRequest,
  validateBucketName,
} from "../../gateway/s3/router.js";

const OPTIONS = { baseDomains: ["s3.local", "localhost"] };

interface Case {
  method: string;
  /** Path below the bucket: "" for bucket level, "key..." for objects (raw, encoded). */
  key: string;
  query?: string;
  headers?: Record<string, string>;
  expected: Partial<Record<string, unknown>> & { kind: EndpointKind };
}

function pathStyle(testCase: Case, bucket = "my-bucket"): Route {
  const path = testCase.key === "" ? `/${bucket}` : `/${bucket}/${testCase.key}`;
  return routeRequest({ method: testCase.method, path, query: testCase.query ?? "", headers: { host: "127.0.0.1:9000", ...testCase.headers } }, OPTIONS);
}

function virtualHosted(testCase: Case, bucket = "my-bucket"): Route {
  return routeRequest({ method: testCase.method, path: `/${testCase.key}`, query: testCase.query ?? "", headers: { host: `${bucket}.s3.local:9000`, ...testCase.headers } }, OPTIONS);
}

function expectS3Error(run: () => unknown, code: string, message?: string): S3Error {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(S3Error);
    expect((error as S3Error).code).toBe(code);
    if (message !== undefined) expect((error as S3Error).message).toBe(message);
    return error as S3Error;
  }
  throw new Error(`expected ${code}`);
}

const COPY = { "x-amz-copy-source": "/src-bucket/dir/a%20b.txt?versionId=v7" };
const SOURCE = { bucket: "src-bucket", key: "dir/a b.txt", versionId: "v7" };

const CASES: Case[] = [
  { method: "HEAD", key: "", expected: { kind: "HeadBucket", bucket: "my-bucket" } },
  { method: "PUT", key: "", expected: { kind: "CreateBucket", bucket: "my-bucket" } },
  { method: "DELETE", key: "", expected: { kind: "DeleteBucket" } },
  { method: "POST", key: "", expected: { kind: "PostObject" } },
  { method: "POST", key: "", query: "delete", expected: { kind: "DeleteObjects" } },
  { method: "GET", key: "", expected: { kind: "ListObjects", prefix: "", delimiter: undefined, marker: undefined, maxKeys: 1000, encodingType: undefined } },
  { method: "GET", key: "", query: "prefix=a%20b%2F&delimiter=%2F&marker=m&max-keys=10&encoding-type=url", expected: { kind: "ListObjects", prefix: "a b/", delimiter: "/", marker: "m", maxKeys: 10, encodingType: "url" } },
  {
    method: "GET",
    key: "",
    query: "list-type=2&prefix=p&continuation-token=tok&start-after=s&fetch-owner=true&max-keys=2",
    expected: { kind: "ListObjectsV2", prefix: "p", continuationToken: "tok", startAfter: "s", fetchOwner: true, maxKeys: 2 },
  },
  { method: "GET", key: "", query: "list-type=2", expected: { kind: "ListObjectsV2", fetchOwner: false, maxKeys: 1000, continuationToken: undefined, startAfter: undefined } },
  { method: "GET", key: "", query: "versions&key-marker=k&version-id-marker=v", expected: { kind: "ListObjectVersions", keyMarker: "k", versionIdMarker: "v", maxKeys: 1000 } },
  { method: "GET", key: "", query: "uploads&prefix=x&key-marker=k&upload-id-marker=u&max-uploads=5", expected: { kind: "ListMultipartUploads", prefix: "x", keyMarker: "k", uploadIdMarker: "u", maxUploads: 5 } },
  { method: "GET", key: "", query: "location", expected: { kind: "GetBucketLocation" } },
  { method: "GET", key: "", query: "versioning", expected: { kind: "GetBucketVersioning" } },
  { method: "GET", key: "", query: "acl", expected: { kind: "GetBucketAcl" } },
  { method: "GET", key: "", query: "analytics&id=a", expected: { kind: "GetBucketAnalyticsConfiguration" } },
  { method: "GET", key: "", query: "analytics", expected: { kind: "ListBucketAnalyticsConfigurations" } },
  { method: "GET", key: "", query: "intelligent-tiering&id=a", expected: { kind: "GetBucketIntelligentTieringConfiguration" } },
  { method: "GET", key: "", query: "intelligent-tiering", expected: { kind: "ListBucketIntelligentTieringConfigurations" } },
  { method: "GET", key: "", query: "inventory&id=a", expected: { kind: "GetBucketInventoryConfiguration" } },
  { method: "GET", key: "", query: "inventory", expected: { kind: "ListBucketInventoryConfigurations" } },
  { method: "GET", key: "", query: "metrics&id=a", expected: { kind: "GetBucketMetricsConfiguration" } },
  { method: "GET", key: "", query: "metrics", expected: { kind: "ListBucketMetricsConfigurations" } },
  ...(
    [
      ["GET", "accelerate", "GetBucketAccelerateConfiguration"], ["GET", "cors", "GetBucketCors"], ["GET", "encryption", "GetBucketEncryption"],
      ["GET", "lifecycle", "GetBucketLifecycleConfiguration"], ["GET", "logging", "GetBucketLogging"], ["GET", "notification", "GetBucketNotificationConfiguration"],
      ["GET", "object-lock", "GetObjectLockConfiguration"], ["GET", "ownershipControls", "GetBucketOwnershipControls"], ["GET", "policy", "GetBucketPolicy"],
      ["GET", "policyStatus", "GetBucketPolicyStatus"], ["GET", "publicAccessBlock", "GetPublicAccessBlock"], ["GET", "replication", "GetBucketReplication"],
      ["GET", "requestPayment", "GetBucketRequestPayment"], ["GET", "session", "CreateSession"], ["GET", "tagging", "GetBucketTagging"], ["GET", "website", "GetBucketWebsite"],
      ["PUT", "accelerate", "PutBucketAccelerateConfiguration"], ["PUT", "acl", "PutBucketAcl"], ["PUT", "analytics&id=a", "PutBucketAnalyticsConfiguration"],
      ["PUT", "cors", "PutBucketCors"], ["PUT", "encryption", "PutBucketEncryption"], ["PUT", "intelligent-tiering&id=a", "PutBucketIntelligentTieringConfiguration"],
      ["PUT", "inventory&id=a", "PutBucketInventoryConfiguration"], ["PUT", "lifecycle", "PutBucketLifecycleConfiguration"], ["PUT", "logging", "PutBucketLogging"],
      ["PUT", "metrics&id=a", "PutBucketMetricsConfiguration"], ["PUT", "notification", "PutBucketNotificationConfiguration"], ["PUT", "object-lock", "PutObjectLockConfiguration"],
      ["PUT", "ownershipControls", "PutBucketOwnershipControls"], ["PUT", "policy", "PutBucketPolicy"], ["PUT", "publicAccessBlock", "PutPublicAccessBlock"],
      ["PUT", "replication", "PutBucketReplication"], ["PUT", "requestPayment", "PutBucketRequestPayment"], ["PUT", "tagging", "PutBucketTagging"],
      ["PUT", "versioning", "PutBucketVersioning"], ["PUT", "website", "PutBucketWebsite"],
      ["DELETE", "analytics&id=a", "DeleteBucketAnalyticsConfiguration"], ["DELETE", "cors", "DeleteBucketCors"], ["DELETE", "encryption", "DeleteBucketEncryption"],
      ["DELETE", "intelligent-tiering&id=a", "DeleteBucketIntelligentTieringConfiguration"], ["DELETE", "inventory&id=a", "DeleteBucketInventoryConfiguration"],
      ["DELETE", "lifecycle", "DeleteBucketLifecycle"], ["DELETE", "metrics&id=a", "DeleteBucketMetricsConfiguration"], ["DELETE", "ownershipControls", "DeleteBucketOwnershipControls"],
      ["DELETE", "policy", "DeleteBucketPolicy"], ["DELETE", "publicAccessBlock", "DeletePublicAccessBlock"], ["DELETE", "replication", "DeleteBucketReplication"],
      ["DELETE", "tagging", "DeleteBucketTagging"], ["DELETE", "website", "DeleteBucketWebsite"],
    ] as const
  ).map(([method, query, kind]): Case => ({ method, key: "", query, expected: { kind, bucket: "my-bucket" } })),
  { method: "GET", key: "dir/a%20b%2Bc.txt", expected: { kind: "GetObject", bucket: "my-bucket", key: "dir/a b+c.txt", versionId: undefined, partNumber: undefined, responseOverrides: {} } },
  {
    method: "GET",
    key: "k",
    query: "versionId=v1&partNumber=3&response-content-type=text%2Fplain&response-content-disposition=attachment&x-id=GetObject",
    expected: { kind: "GetObject", versionId: "v1", partNumber: 3, responseOverrides: { "content-type": "text/plain", "content-disposition": "attachment" } },
  },
  { method: "HEAD", key: "k", query: "versionId=v2", expected: { kind: "HeadObject", key: "k", versionId: "v2", partNumber: undefined } },
  { method: "PUT", key: "k", query: "x-id=PutObject", expected: { kind: "PutObject", bucket: "my-bucket", key: "k" } },
  { method: "PUT", key: "k", headers: COPY, expected: { kind: "CopyObject", key: "k", source: SOURCE } },
  { method: "DELETE", key: "k", query: "versionId=v3", expected: { kind: "DeleteObject", versionId: "v3" } },
  { method: "GET", key: "k", query: "acl", expected: { kind: "GetObjectAcl", key: "k", versionId: undefined } },
  { method: "POST", key: "k", query: "uploads", expected: { kind: "CreateMultipartUpload", key: "k" } },
  { method: "PUT", key: "k", query: "partNumber=7&uploadId=u1", expected: { kind: "UploadPart", uploadId: "u1", partNumber: 7 } },
  { method: "PUT", key: "k", query: "partNumber=10000&uploadId=u1", headers: COPY, expected: { kind: "UploadPartCopy", uploadId: "u1", partNumber: 10000, source: SOURCE } },
  { method: "POST", key: "k", query: "uploadId=u2", expected: { kind: "CompleteMultipartUpload", uploadId: "u2" } },
  { method: "DELETE", key: "k", query: "uploadId=u3", expected: { kind: "AbortMultipartUpload", uploadId: "u3" } },
  { method: "GET", key: "k", query: "uploadId=u4&max-parts=2000&part-number-marker=5", expected: { kind: "ListParts", uploadId: "u4", maxParts: 1000, partNumberMarker: 5 } },
  { method: "GET", key: "k", query: "uploadId=u4", expected: { kind: "ListParts", maxParts: 1000, partNumberMarker: 0 } },
  ...(
    [
      ["GET", "attributes", "GetObjectAttributes"], ["GET", "legal-hold", "GetObjectLegalHold"], ["GET", "retention", "GetObjectRetention"],
      ["GET", "tagging", "GetObjectTagging"], ["GET", "torrent", "GetObjectTorrent"], ["PUT", "acl", "PutObjectAcl"], ["PUT", "legal-hold", "PutObjectLegalHold"],
      ["PUT", "retention", "PutObjectRetention"], ["PUT", "tagging&versionId=v9", "PutObjectTagging"], ["DELETE", "tagging", "DeleteObjectTagging"],
      ["POST", "restore", "RestoreObject"], ["POST", "select&select-type=2", "SelectObjectContent"],
    ] as const
  ).map(([method, query, kind]): Case => ({ method, key: "obj", query, expected: { kind, bucket: "my-bucket", key: "obj" } })),
  { method: "OPTIONS", key: "k", expected: { kind: "Options", bucket: "my-bucket", key: "k" } },
];

describe("router: every endpoint, both addressing styles", () => {
  it.each(CASES)("$method /my-bucket/$key?$query → $expected.kind", (testCase) => {
    const path = pathStyle(testCase);
    expect(path.endpoint).toMatchObject(testCase.expected);
    expect(path.addressing).toBe("path");
    const hosted = virtualHosted(testCase);
    expect(hosted.endpoint).toEqual(path.endpoint);
    expect(hosted.addressing).toBe("virtual-hosted");
    expect(hosted.resource).toBe(path.resource);
  });

  it("covers every endpoint kind in the union", () => {
    const hit = new Set<string>(CASES.map((testCase) => testCase.expected.kind));
    hit.add("ListBuckets");
    expect([...ENDPOINT_KINDS].filter((kind) => !hit.has(kind))).toEqual([]);
    expect(ENDPOINT_KINDS.length).toBe(95);
  });

  it("routes the service root to ListBuckets in either style and rejects other methods there", () => {
    expect(routeRequest({ method: "GET", path: "/", query: "x-id=ListBuckets", headers: { host: "127.0.0.1" } }, OPTIONS)).toEqual({ endpoint: { kind: "ListBuckets" }, addressing: "path", resource: "/" });
    expect(routeRequest({ method: "GET", path: "/", query: "", headers: { host: "s3.local:9000" } }, OPTIONS).endpoint).toEqual({ kind: "ListBuckets" });
    expect(routeRequest({ method: "OPTIONS", path: "/", query: "", headers: { host: "s3.local" } }, OPTIONS).endpoint).toEqual({ kind: "Options", bucket: undefined, key: undefined });
    const error = expectS3Error(() => routeRequest({ method: "DELETE", path: "/", query: "", headers: {} }, OPTIONS), "MethodNotAllowed", "The specified method is not allowed against this resource.");
    expect(error.status).toBe(405);
  });

  it("takes the bucket from the host only under a configured base domain, dots and all", () => {
    const route = routeRequest({ method: "GET", path: "/a/b", query: "", headers: { host: "My.Dotted.Bucket.LOCALHOST:9000".toLowerCase() } }, OPTIONS);
    expect(route.endpoint).toMatchObject({ kind: "GetObject", bucket: "my.dotted.bucket", key: "a/b" });
    const other = routeRequest({ method: "GET", path: "/bucket/a/b", query: "", headers: { host: "bucket.example.com" } }, OPTIONS);
    expect(other.endpoint).toMatchObject({ kind: "GetObject", bucket: "bucket", key: "a/b" });
    expect(routeRequest({ method: "GET", path: "/", query: "", headers: { host: "my-bucket.s3.local" } }, OPTIONS).endpoint).toMatchObject({ kind: "ListObjects", bucket: "my-bucket" });
    const ipv6 = routeRequest({ method: "GET", path: "/bkt/k", query: "", headers: { host: "[::1]:9000" } }, OPTIONS);
    expect(ipv6.endpoint).toMatchObject({ bucket: "bkt", key: "k" });
  });

  it("keeps keys exactly: slashes, dots, trailing slash, a trailing-slash bucket path is the bucket", () => {
    expect(pathStyle({ method: "GET", key: "a//b/./../c/", expected: { kind: "GetObject" } }).endpoint).toMatchObject({ key: "a//b/./../c/" });
    expect(routeRequest({ method: "GET", path: "/my-bucket/", query: "", headers: {} }, OPTIONS).endpoint).toMatchObject({ kind: "ListObjects" });
    expect(routeRequest({ method: "GET", path: "/my-bucket//x", query: "", headers: {} }, OPTIONS).endpoint).toMatchObject({ kind: "GetObject", key: "/x" });
    expect(pathStyle({ method: "GET", key: "%E2%82%AC%F0%9F%98%80", expected: { kind: "GetObject" } }).resource).toBe("/my-bucket/€😀");
  });

  it("answers NotImplemented for an unknown object operation, MethodNotAllowed for unknown methods, InvalidURI for bad escapes", () => {
    const error = expectS3Error(() => pathStyle({ method: "POST", key: "k", expected: { kind: "PutObject" } }), "NotImplemented", "The operation POST on an object with these parameters is not implemented.");
    expect(error.status).toBe(501);
    expectS3Error(() => pathStyle({ method: "PATCH", key: "k", expected: { kind: "PutObject" } }), "MethodNotAllowed");
    expectS3Error(() => pathStyle({ method: "GET", key: "bad%E2%82", expected: { kind: "GetObject" } }), "InvalidURI", "Couldn't parse the specified URI.");
    expectS3Error(() => routeRequest({ method: "GET", path: "no-slash", query: "", headers: {} }, OPTIONS), "InvalidURI");
  });
});

describe("router: names", () => {
  const INVALID: Array<[string, string]> = [
    ["ab", "it must be between 3 and 63 characters long"],
    ["a".repeat(64), "it must be between 3 and 63 characters long"],
    ["My-Bucket", "it may contain only lower-case letters, digits, dots and hyphens"],
    ["my_bucket", "it may contain only lower-case letters, digits, dots and hyphens"],
    ["-bucket", "it must begin and end with a letter or digit"],
    ["bucket.", "it must begin and end with a letter or digit"],
    ["my..bucket", "it must not contain two adjacent periods"],
    ["192.168.5.4", "it must not be formatted as an IP address"],
    ["xn--bucket", 'it must not start with "xn--"'],
    ["sthree-bucket", 'it must not start with "sthree-"'],
    ["amzn-s3-demo-bucket", 'it must not start with "amzn-s3-demo-"'],
    ["bucket-s3alias", 'it must not end with "-s3alias"'],
    ["bucket--ol-s3", 'it must not end with "--ol-s3"'],
    ["bucket.mrap", 'it must not end with ".mrap"'],
    ["bucket--x-s3", 'it must not end with "--x-s3"'],
    ["bucket--table-s3", 'it must not end with "--table-s3"'],
  ];

  it.each(INVALID)("rejects bucket %j: %s", (bucket, reason) => {
    const error = expectS3Error(() => validateBucketName(bucket), "InvalidBucketName", `The specified bucket is not valid: ${reason}.`);
    expect(error.status).toBe(400);
    expect(error.extra.BucketName).toBe(bucket);
    expectS3Error(() => routeRequest({ method: "GET", path: `/${bucket}/key`, query: "", headers: {} }, OPTIONS), "InvalidBucketName");
  });

  it.each(["abc", "a".repeat(63), "my.bucket.name", "0-9", "b-1.2-c", "192.168.5.4a", "xn-bucket"])("accepts bucket %j", (bucket) => {
    expect(() => validateBucketName(bucket)).not.toThrow();
  });

  it("rejects an invalid virtual-hosted bucket too", () => {
    expectS3Error(() => routeRequest({ method: "GET", path: "/k", query: "", headers: { host: "bad..name.s3.local" } }, OPTIONS), "InvalidBucketName");
  });

  it("limits keys to 1024 UTF-8 bytes", () => {
    expect(pathStyle({ method: "PUT", key: "k".repeat(KEY_BYTES_MAX), expected: { kind: "PutObject" } }).endpoint.kind).toBe("PutObject");
    const error = expectS3Error(() => pathStyle({ method: "PUT", key: "k".repeat(KEY_BYTES_MAX + 1), expected: { kind: "PutObject" } }), "KeyTooLongError", "Your key is too long");
    expect(error.extra).toEqual({ Size: "1025", MaxSizeAllowed: "1024" });
    const euros = encodeURIComponent("€".repeat(342));
    expectS3Error(() => pathStyle({ method: "GET", key: euros, expected: { kind: "GetObject" } }), "KeyTooLongError");
    expect(pathStyle({ method: "GET", key: encodeURIComponent("€".repeat(341)), expected: { kind: "GetObject" } }).endpoint.kind).toBe("GetObject");
  });

  it("parses x-amz-copy-source in its forms", () => {
    expect(parseCopySource("src/key")).toEqual({ bucket: "src", key: "key", versionId: undefined });
    expect(parseCopySource("/src/a%3Fb%2Fc?versionId=x%2By")).toEqual({ bucket: "src", key: "a?b/c", versionId: "x+y" });
    for (const bad of ["nokey", "/src/", "/src", "/", ""]) {
      expectS3Error(() => parseCopySource(bad), "InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey");
    }
    expectS3Error(() => parseCopySource("Bad_Bucket/key"), "InvalidBucketName");
    expectS3Error(() => parseCopySource(`src/${"k".repeat(KEY_BYTES_MAX + 1)}`), "KeyTooLongError");
  });
});

describe("router: query parameters", () => {
  const list = (query: string): Endpoint => pathStyle({ method: "GET", key: "", query, expected: { kind: "ListObjectsV2" } }).endpoint;

  it("clamps max-keys, max-uploads and max-parts to 1..1000", () => {
    expect(list("list-type=2&max-keys=0")).toMatchObject({ maxKeys: 1 });
    expect(list("list-type=2&max-keys=5000")).toMatchObject({ maxKeys: 1000 });
    expect(list("list-type=2&max-keys=")).toMatchObject({ maxKeys: 1000 });
    expect(list("max-keys=999999999999")).toMatchObject({ kind: "ListObjects", maxKeys: 1000 });
    expect(list("uploads&max-uploads=0")).toMatchObject({ maxUploads: 1 });
    expect(list("uploads&max-uploads=1001")).toMatchObject({ maxUploads: 1000 });
    expect(pathStyle({ method: "GET", key: "k", query: "uploadId=u&max-parts=0", expected: { kind: "ListParts" } }).endpoint).toMatchObject({ maxParts: 1 });
  });

  it("rejects counts that are not integers with S3's InvalidArgument messages", () => {
    expectS3Error(() => list("list-type=2&max-keys=ten"), "InvalidArgument", "Provided max-keys not an integer or within integer range");
    expectS3Error(() => list("list-type=2&max-keys=1.5"), "InvalidArgument", "Provided max-keys not an integer or within integer range");
    expectS3Error(() => list("list-type=2&max-keys=-1"), "InvalidArgument", "Argument max-keys must be an integer between 0 and 2147483647");
    expectS3Error(() => list("uploads&max-uploads=x"), "InvalidArgument", "Provided max-uploads not an integer or within integer range");
    expectS3Error(() => pathStyle({ method: "GET", key: "k", query: "uploadId=u&part-number-marker=-3", expected: { kind: "ListParts" } }), "InvalidArgument", "Argument part-number-marker must be an integer between 0 and 2147483647");
  });

  it.each(["0", "10001", "x", "", "-1", "1.0"])("rejects partNumber %j", (value) => {
    expectS3Error(() => pathStyle({ method: "PUT", key: "k", query: `partNumber=${value}&uploadId=u`, expected: { kind: "UploadPart" } }), "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive");
  });

  it("accepts encoding-type=url only", () => {
    expect(list("list-type=2&encoding-type=URL")).toMatchObject({ encodingType: "url" });
    expectS3Error(() => list("list-type=2&encoding-type=base64"), "InvalidArgument", "Invalid Encoding Method specified in Request");
  });
});

describe("router: exhaustive handling", () => {
  const handlers = Object.fromEntries(ENDPOINT_KINDS.map((kind) => [kind, (endpoint: Endpoint) => `handled ${endpoint.kind}`])) as unknown as EndpointHandlers<string>;

  it("dispatches each endpoint to its own handler", () => {
    for (const testCase of CASES) expect(dispatchEndpoint(pathStyle(testCase).endpoint, handlers)).toBe(`handled ${testCase.expected.kind}`);
  });

  it("refuses at compile time a handler table missing a kind", () => {
    const { ListBuckets: _omitted, ...rest } = handlers;
    // @ts-expect-error ListBuckets is missing, so this is not an EndpointHandlers.
    const incomplete: EndpointHandlers<string> = rest;
    expect(Object.keys(incomplete)).not.toContain("ListBuckets");
  });

  it("assertNever throws for a value the types said could not exist", () => {
    expect(() => assertNever({ kind: "Nope" } as never)).toThrow('unhandled endpoint {"kind":"Nope"}');
  });
});
