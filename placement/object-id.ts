/**
 * Object ids: a stable 128-bit name for (bucket, key). Placement hashes this id, never the
 * key itself, so the id must never change for a given bucket and key: the golden values in
 * test/placement/object-id.test.ts pin it. Changing the encoding would move every object.
 */
import { createHash } from "node:crypto";
import { OBJECT_ID_BYTES } from "../core/limits.js";
import { assert } from "../core/assert.js";
import { requireArgument } from "../core/errors.js";

/** Domain separation: no other SHA-256 in Tessera can collide with an object id by design. */
const OBJECT_ID_DOMAIN = "tessera/object-id/v1";
/** Bytes of each length prefix: a uint32 covers any S3 bucket name and key (1024 bytes max). */
const LENGTH_PREFIX_BYTES = 4;

const OBJECT_ID_HEX_PATTERN = new RegExp(`^[0-9a-f]{${OBJECT_ID_BYTES * 2}}$`);

function lengthPrefixed(text: string): Buffer[] {
  const bytes = Buffer.from(text, "utf8");
  const prefix = Buffer.alloc(LENGTH_PREFIX_BYTES);
  prefix.writeUInt32BE(bytes.length, 0);
  return [prefix, bytes];
}

/**
 * The first OBJECT_ID_BYTES of SHA-256 over the domain and the length-prefixed UTF-8 bucket
 * and key. Length prefixes keep ("a", "b/c") and ("a/b", "c") apart.
 */
export function objectId(bucket: string, key: string): Buffer {
  requireArgument(typeof bucket === "string" && bucket.length > 0, "bucket", "must be a non-empty string");
  requireArgument(typeof key === "string" && key.length > 0, "key", "must be a non-empty string");
  const hash = createHash("sha256").update(OBJECT_ID_DOMAIN);
  for (const part of [...lengthPrefixed(bucket), ...lengthPrefixed(key)]) hash.update(part);
  const id = hash.digest().subarray(0, OBJECT_ID_BYTES);
  assert(id.length === OBJECT_ID_BYTES, "SHA-256 is longer than an object id");
  return id;
}

/** The object id as 32 lowercase hex characters (for records, logs and file names). */
export function objectIdHex(bucket: string, key: string): string {
  return formatObjectId(objectId(bucket, key));
}

export function formatObjectId(id: Uint8Array): string {
  requireArgument(id.length === OBJECT_ID_BYTES, "objectId", `must be ${OBJECT_ID_BYTES} bytes, got ${id.length}`);
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString("hex");
}

/** Reads back an id written by `formatObjectId`; refuses anything else. */
export function parseObjectId(hex: string): Buffer {
  requireArgument(OBJECT_ID_HEX_PATTERN.test(hex), "objectId", `must be ${OBJECT_ID_BYTES * 2} lowercase hex characters`);
  return Buffer.from(hex, "hex");
}
