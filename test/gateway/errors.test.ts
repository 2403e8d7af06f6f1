import { readFileSync } from "node:fs";
import { XMLParser } from "fast-xml-parser";
import { describe, expect, it } from "vitest";
import { AssertionError } from "../../core/assert.js";
import { ERROR_CODES, type ErrorCode, TesseraError } from "../../core/errors.js";
import { escapeXml, isS3Error, renderErrorXml, S3_ERRORS, S3Error, type S3ErrorCode, toS3Error } from "../../gateway/s3/errors.js";

const README = new URL("../../gateway/s3/README.md", import.meta.url);

function documentedRows(): Map<string, { status: number; message: string }> {
  const rows = new Map<string, { status: number; message: string }>();
  for (const line of readFileSync(README, "utf8").split("\n")) {
    const match = /^\| ([A-Za-z0-9]+) \| (\d{3}) \| (.+) \|$/.exec(line);
    if (match !== null) rows.set(match[1] as string, { status: Number(match[2]), message: match[3] as string });
  }
  return rows;
}

describe("S3 error table", () => {
  const codes = Object.keys(S3_ERRORS) as S3ErrorCode[];

  it("gives every code a status and a message", () => {
    expect(codes.length).toBeGreaterThan(40);
    for (const code of codes) {
      const { status, message } = S3_ERRORS[code];
      expect(status, code).toBeGreaterThanOrEqual(300);
      expect(status, code).toBeLessThan(600);
      expect(message.length, code).toBeGreaterThan(5);
    }
  });

  it("documents exactly the codes of the table in gateway/s3/README.md, with their status and message", () => {
    const rows = documentedRows();
    expect([...rows.keys()].sort()).toEqual([...codes].sort());
    for (const code of codes) expect(rows.get(code), code).toEqual(S3_ERRORS[code]);
  });

  it.each<[S3ErrorCode, number]>([
    ["AccessDenied", 403], ["InvalidAccessKeyId", 403], ["SignatureDoesNotMatch", 403], ["RequestTimeTooSkewed", 403],
    ["AuthorizationHeaderMalformed", 400], ["AuthorizationQueryParametersError", 400], ["MissingSecurityHeader", 400],
    ["NoSuchBucket", 404], ["NoSuchKey", 404], ["NoSuchUpload", 404], ["BucketNotEmpty", 409], ["BucketAlreadyOwnedByYou", 409],
    ["BucketAlreadyExists", 409], ["InvalidBucketName", 400], ["KeyTooLongError", 400], ["MetadataTooLarge", 400],
    ["EntityTooLarge", 400], ["EntityTooSmall", 400], ["IncompleteBody", 400], ["InvalidArgument", 400], ["InvalidRange", 416],
    ["InvalidDigest", 400], ["BadDigest", 400], ["XAmzContentSHA256Mismatch", 400], ["InvalidRequest", 400], ["MalformedXML", 400],
    ["MethodNotAllowed", 405], ["MissingContentLength", 411], ["NotImplemented", 501], ["PreconditionFailed", 412], ["NotModified", 304],
    ["InternalError", 500], ["ServiceUnavailable", 503], ["SlowDown", 503], ["InvalidPart", 400], ["InvalidPartOrder", 400],
  ])("%s answers HTTP %d", (code, status) => {
    const error = new S3Error(code);
    expect(error.status).toBe(status);
    expect(error.message).toBe(S3_ERRORS[code].message);
    expect(isS3Error(error, code)).toBe(true);
  });
});

describe("renderErrorXml", () => {
  it("renders S3's <Error> document with extras before Resource and RequestId", () => {
    const error = new S3Error("NoSuchKey", undefined, { extra: { Key: "a<b>&c" } });
    expect(renderErrorXml(error, "req-1", "/bucket/a<b>&c")).toBe(
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
        "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>a&lt;b&gt;&amp;c</Key>" +
        "<Resource>/bucket/a&lt;b&gt;&amp;c</Resource><RequestId>req-1</RequestId></Error>",
    );
  });

  it("parses back with a real XML parser, custom message and resource from the error", () => {
    const error = new S3Error("InvalidArgument", `max-keys "x" & <y>`, { resource: "/b", extra: { ArgumentName: "max-keys", "X-Amz-Expires": "60" } });
    const parsed = new XMLParser({ parseTagValue: false }).parse(renderErrorXml(error, "id")) as { Error: Record<string, string> };
    expect(parsed.Error).toEqual({ Code: "InvalidArgument", Message: `max-keys "x" & <y>`, ArgumentName: "max-keys", "X-Amz-Expires": "60", Resource: "/b", RequestId: "id" });
  });

  it("escapes control characters XML cannot carry raw and drops extras with unsafe names", () => {
    expect(escapeXml("a\u0001b\u001fc\td'e\"")).toBe("a&#x1;b&#x1f;c\td&apos;e&quot;");
    const error = new S3Error("InternalError", undefined, { extra: { "bad name": "x", "<x>": "y" } });
    expect(renderErrorXml(error, "r")).not.toContain("bad name");
  });
});

describe("toS3Error", () => {
  it("passes S3Errors through unchanged", () => {
    const error = new S3Error("NoSuchBucket");
    expect(toS3Error(error)).toBe(error);
  });

  it("maps every internal code, showing only client-caused messages", () => {
    const expected: Record<ErrorCode, S3ErrorCode> = {
      ERR_INVALID_ARGUMENT: "InvalidArgument",
      ERR_INVALID_CLUSTER_MAP: "InternalError",
      ERR_CODEC_SELF_TEST: "InternalError",
      ERR_SHARD_HEADER: "InternalError",
      ERR_SHARD_CHECKSUM: "InternalError",
      ERR_SHARD_TRUNCATED: "InternalError",
      ERR_SHARD_TOO_LONG: "InternalError",
      ERR_INCOMPLETE_BODY: "IncompleteBody",
      ERR_WRITE_QUORUM: "ServiceUnavailable",
      ERR_READ_QUORUM: "ServiceUnavailable",
      ERR_NOT_FOUND: "NoSuchKey",
      ERR_VERSION_CONFLICT: "OperationAborted",
      ERR_DISK_FAILED: "ServiceUnavailable",
      ERR_INSUFFICIENT_STORAGE: "ServiceUnavailable",
      ERR_UNAUTHORIZED: "InternalError",
      ERR_NODE_UNAVAILABLE: "ServiceUnavailable",
    };
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      const internal = new TesseraError(code, `internal detail of ${code} on /data/disk3`);
      const translated = toS3Error(internal);
      expect(translated.code, code).toBe(expected[code]);
      expect(translated.cause).toBe(internal);
      const shown = code === "ERR_INVALID_ARGUMENT" || code === "ERR_INCOMPLETE_BODY";
      expect(translated.message, code).toBe(shown ? internal.message : S3_ERRORS[expected[code]].message);
    }
  });

  it("refines ERR_NOT_FOUND by details.kind", () => {
    const kinds: Array<[string, S3ErrorCode]> = [["bucket", "NoSuchBucket"], ["key", "NoSuchKey"], ["upload", "NoSuchUpload"], ["version", "NoSuchVersion"], ["other", "NoSuchKey"]];
    for (const [kind, code] of kinds) expect(toS3Error(new TesseraError("ERR_NOT_FOUND", "gone", { kind })).code).toBe(code);
  });

  it("turns broken invariants and unknown throws into InternalError", () => {
    expect(toS3Error(new AssertionError("invariant broken: x")).code).toBe("InternalError");
    expect(toS3Error(new TypeError("boom")).message).toBe("We encountered an internal error. Please try again.");
    expect(toS3Error("a string").status).toBe(500);
  });
});
