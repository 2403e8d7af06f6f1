/**
 * The one closed table of S3 errors (code → HTTP status, default message), the error class
 * every S3-facing module throws, the XML body S3 clients parse, and the single place where
 * internal TesseraErrors become S3 errors. Every code is listed in gateway/s3/README.md
 * (checked by test/gateway/errors.test.ts). Messages follow AWS's wording where clients or
 * people may recognise it; callers may pass a more specific message.
 */
import { type ErrorCode, TesseraError } from "../../core/errors.js";

interface S3ErrorSpec {
  readonly status: number;
  readonly message: string;
}

export const S3_ERRORS = {
  AccessDenied: { status: 403, message: "Access Denied" },
  AuthorizationHeaderMalformed: { status: 400, message: "The authorization header is malformed." },
  AuthorizationQueryParametersError: { status: 400, message: "The query-string authentication parameters are malformed." },
  BadDigest: { status: 400, message: "The Content-MD5 you specified did not match what we received." },
  BucketAlreadyExists: {
    status: 409,
    message: "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.",
  },
  BucketAlreadyOwnedByYou: { status: 409, message: "Your previous request to create the named bucket succeeded and you already own it." },
  BucketNotEmpty: { status: 409, message: "The bucket you tried to delete is not empty" },
  ConditionalRequestConflict: {
    status: 409,
    message: "A conflicting operation occurred. If using PutObject you can retry the request. If using multipart upload you should initiate another CreateMultipartUpload request and re-upload each part.",
  },
  EntityTooLarge: { status: 400, message: "Your proposed upload exceeds the maximum allowed object size." },
  EntityTooSmall: { status: 400, message: "Your proposed upload is smaller than the minimum allowed object size." },
  ExpiredToken: { status: 400, message: "The provided token has expired." },
  IncompleteBody: { status: 400, message: "You did not provide the number of bytes specified by the Content-Length HTTP header." },
  InternalError: { status: 500, message: "We encountered an internal error. Please try again." },
  InvalidAccessKeyId: { status: 403, message: "The AWS Access Key Id you provided does not exist in our records." },
  InvalidArgument: { status: 400, message: "Invalid Argument" },
  InvalidBucketName: { status: 400, message: "The specified bucket is not valid." },
  InvalidDigest: { status: 400, message: "The Content-MD5 you specified is not valid." },
  InvalidLocationConstraint: { status: 400, message: "The specified location constraint is not valid." },
  InvalidPart: {
    status: 400,
    message: "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
  },
  InvalidPartOrder: {
    status: 400,
    message: "The list of parts was not in ascending order. The parts list must be specified in order by part number.",
  },
  InvalidPartNumber: { status: 416, message: "The requested partnumber is not satisfiable" },
  InvalidRange: { status: 416, message: "The requested range is not satisfiable" },
  InvalidRequest: { status: 400, message: "Invalid Request" },
  InvalidStorageClass: { status: 400, message: "The storage class you specified is not valid" },
  InvalidURI: { status: 400, message: "Couldn't parse the specified URI." },
  KeyTooLongError: { status: 400, message: "Your key is too long" },
  MalformedTrailerError: {
    status: 400,
    message: "The request contained trailing data that was not well-formed or did not conform to our published schema.",
  },
  MalformedXML: {
    status: 400,
    message: "The XML you provided was not well-formed or did not validate against our published schema",
  },
  MetadataTooLarge: { status: 400, message: "Your metadata headers exceed the maximum allowed metadata size." },
  MethodNotAllowed: { status: 405, message: "The specified method is not allowed against this resource." },
  MissingContentLength: { status: 411, message: "You must provide the Content-Length HTTP header." },
  MissingRequestBodyError: { status: 400, message: "Request Body is empty" },
  MissingSecurityHeader: { status: 400, message: "Your request is missing a required header." },
  NoSuchBucket: { status: 404, message: "The specified bucket does not exist" },
  NoSuchBucketPolicy: { status: 404, message: "The bucket policy does not exist" },
  NoSuchCORSConfiguration: { status: 404, message: "The CORS configuration does not exist" },
  NoSuchKey: { status: 404, message: "The specified key does not exist." },
  NoSuchLifecycleConfiguration: { status: 404, message: "The lifecycle configuration does not exist" },
  NoSuchTagSet: { status: 404, message: "The TagSet does not exist" },
  NoSuchUpload: {
    status: 404,
    message: "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
  },
  NoSuchVersion: { status: 404, message: "The specified version does not exist." },
  NotImplemented: { status: 501, message: "A header or operation you provided implies functionality that is not implemented." },
  NotModified: { status: 304, message: "Not Modified" },
  OperationAborted: {
    status: 409,
    message: "A conflicting conditional operation is currently in progress against this resource. Try again.",
  },
  PreconditionFailed: { status: 412, message: "At least one of the preconditions you specified did not hold" },
  RequestTimeTooSkewed: { status: 403, message: "The difference between the request time and the current time is too large." },
  RequestTimeout: {
    status: 400,
    message: "Your socket connection to the server was not read from or written to within the timeout period.",
  },
  ServiceUnavailable: { status: 503, message: "Service is unable to handle request." },
  SignatureDoesNotMatch: {
    status: 403,
    message: "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
  },
  SlowDown: { status: 503, message: "Please reduce your request rate." },
  XAmzContentSHA256Mismatch: { status: 400, message: "The provided 'x-amz-content-sha256' header does not match what was computed." },
} as const satisfies Record<string, S3ErrorSpec>;

export type S3ErrorCode = keyof typeof S3_ERRORS;

export function isS3ErrorCode(code: string): code is S3ErrorCode {
  return Object.hasOwn(S3_ERRORS, code);
}

export interface S3ErrorOptions {
  /** The bucket or object the error is about; rendered as <Resource>. */
  resource?: string;
  /** Extra elements S3 adds to some errors (BucketName, Key, RequestTime, ...), rendered in order. */
  extra?: Readonly<Record<string, string>>;
  cause?: unknown;
}

export class S3Error extends Error {
  override readonly name = "S3Error";
  readonly code: S3ErrorCode;
  readonly status: number;
  readonly resource: string | undefined;
  readonly extra: Readonly<Record<string, string>>;

  constructor(code: S3ErrorCode, message?: string, options: S3ErrorOptions = {}) {
    super(message ?? S3_ERRORS[code].message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = S3_ERRORS[code].status;
    this.resource = options.resource;
    this.extra = options.extra ?? {};
  }
}

export function isS3Error(error: unknown, code?: S3ErrorCode): error is S3Error {
  return error instanceof S3Error && (code === undefined || error.code === code);
}

const XML_ESCAPES: Readonly<Record<string, string>> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" };

/** Escapes text for an XML element; control characters XML 1.0 cannot carry become numeric references. */
export function escapeXml(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[&<>"'\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, (char) => {
    return XML_ESCAPES[char] ?? `&#x${char.charCodeAt(0).toString(16)};`;
  });
}

/** Element names S3 uses for extra fields are plain identifiers; anything else is a bug. */
const ELEMENT_NAME = /^[A-Za-z][A-Za-z0-9-]*$/;

/** S3's error body: <Error><Code/><Message/>extras<Resource/><RequestId/></Error>. */
export function renderErrorXml(error: S3Error, requestId: string, resource: string = error.resource ?? ""): string {
  const extras = Object.entries(error.extra)
    .filter(([name]) => ELEMENT_NAME.test(name))
    .map(([name, value]) => `<${name}>${escapeXml(value)}</${name}>`)
    .join("");
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${error.code}</Code><Message>${escapeXml(error.message)}</Message>${extras}` +
    `<Resource>${escapeXml(resource)}</Resource><RequestId>${escapeXml(requestId)}</RequestId></Error>`
  );
}

/** What each internal code means to an S3 client. ERR_NOT_FOUND is refined by `details.kind`. */
const TESSERA_TO_S3: Readonly<Record<ErrorCode, S3ErrorCode>> = {
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

/** `details.kind` on ERR_NOT_FOUND names what was missing. */
const NOT_FOUND_KINDS: Readonly<Record<string, S3ErrorCode>> = {
  bucket: "NoSuchBucket",
  key: "NoSuchKey",
  upload: "NoSuchUpload",
  version: "NoSuchVersion",
};

/**
 * `details.kind` on ERR_VERSION_CONFLICT: a conditional write whose condition did not hold
 * (PreconditionFailed), or that lost its per-key lease to another writer (ConditionalRequestConflict).
 */
const CONFLICT_KINDS: Readonly<Record<string, S3ErrorCode>> = {
  "bucket-not-empty": "BucketNotEmpty",
  "precondition-failed": "PreconditionFailed",
  "conditional-conflict": "ConditionalRequestConflict",
};

/** Internal codes whose message is the client's own fault and safe to show them. */
const PASS_MESSAGE: ReadonlySet<ErrorCode> = new Set(["ERR_INVALID_ARGUMENT", "ERR_INCOMPLETE_BODY"]);

/**
 * The one translation from anything thrown to an S3 error. S3Errors pass through; internal
 * messages are never shown to clients (they may name disks and nodes) except for bad arguments.
 */
export function toS3Error(error: unknown): S3Error {
  if (error instanceof S3Error) return error;
  if (error instanceof TesseraError) {
    let code = TESSERA_TO_S3[error.code];
    const kind = error.details.kind;
    if (error.code === "ERR_NOT_FOUND" && typeof kind === "string") code = NOT_FOUND_KINDS[kind] ?? code;
    if (error.code === "ERR_VERSION_CONFLICT" && typeof kind === "string") code = CONFLICT_KINDS[kind] ?? code;
    const message = PASS_MESSAGE.has(error.code) ? error.message : undefined;
    return new S3Error(code, message, { cause: error });
  }
  // Broken invariants (AssertionError) and anything unknown: the client learns nothing more.
  return new S3Error("InternalError", undefined, { cause: error });
}
