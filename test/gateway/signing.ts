/**
 * Test helpers: requests signed by the real AWS signer (@smithy/signature-v4 with the
 * @aws-crypto SHA-256), turned into the SignedRequest shape the gateway verifies, and the
 * check that a verification throws a given S3 error.
 */
import { Sha256 } from "@aws-crypto/sha256-js";
import { buildQueryString, escapeUri, HttpRequest } from "@smithy/core/protocols";
import { SignatureV4 } from "@smithy/signature-v4";
import { expect } from "vitest";
import { S3Error } from "../../gateway/s3/errors.js";
import type { SignedRequest } from "../../gateway/s3/sigv4.js";

export const ACCESS_KEY = "AKIDEXAMPLE";
export const SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/** 2024-05-24T13:14:15Z: a fixed signing time, so signatures are reproducible. */
export const SIGNING_TIME = Date.UTC(2024, 4, 24, 13, 14, 15);
export const HOST = "127.0.0.1:9000";

export function signer(options: { region?: string; secret?: string; accessKey?: string } = {}): SignatureV4 {
  return new SignatureV4({
    credentials: { accessKeyId: options.accessKey ?? ACCESS_KEY, secretAccessKey: options.secret ?? SECRET_KEY },
    region: options.region ?? "us-east-1",
    service: "s3",
    sha256: Sha256,
    // S3: the path is already encoded once by the serializer and signed as sent.
    uriEscapePath: false,
  });
}

/** The path S3 clients send for a key: each segment escaped, '/' kept. */
export function objectPath(bucket: string, key: string): string {
  return `/${bucket}/${key.split("/").map(escapeUri).join("/")}`;
}

export interface RequestSpec {
  method: string;
  path: string;
  query?: Record<string, string | string[] | null>;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
}

export function httpRequest(spec: RequestSpec): HttpRequest {
  return new HttpRequest({
    method: spec.method,
    protocol: "http:",
    hostname: "127.0.0.1",
    port: 9000,
    path: spec.path,
    query: spec.query ?? {},
    headers: { host: HOST, ...spec.headers },
    body: spec.body,
  });
}

/** The wire form of a signed smithy request, as the gateway would receive it. */
export function toSignedRequest(request: HttpRequest): SignedRequest {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) headers[name.toLowerCase()] = value;
  return { method: request.method, path: request.path, query: buildQueryString(request.query), headers };
}

export async function signHeader(spec: RequestSpec, options: { region?: string; secret?: string; accessKey?: string; time?: number } = {}): Promise<SignedRequest> {
  const signed = await signer(options).sign(httpRequest(spec), { signingDate: new Date(options.time ?? SIGNING_TIME) });
  return toSignedRequest(signed as HttpRequest);
}

/** Presigns as @aws-sdk/s3-request-presigner does: UNSIGNED-PAYLOAD declared, hoisted to the query. */
export async function presign(spec: RequestSpec, expiresIn: number, options: { region?: string; time?: number } = {}): Promise<SignedRequest> {
  const request = httpRequest({ ...spec, headers: { ...spec.headers, "X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD" } });
  const signed = await signer(options).presign(request, { signingDate: new Date(options.time ?? SIGNING_TIME), expiresIn });
  return toSignedRequest(signed as HttpRequest);
}

/** Runs `run`, expects it to throw an S3Error with `code` (and `message`), and returns it. */
export function expectS3Error(run: () => unknown, code: string, message?: string): S3Error {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(S3Error);
  const error = caught as S3Error;
  expect(error.code).toBe(code);
  if (message !== undefined) expect(error.message).toBe(message);
  return error;
}
