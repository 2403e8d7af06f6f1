/**
 * Binary keys of the record store, built so that plain byte order (LMDB's memcmp, and the
 * memory store's Buffer.compare) is the order listings need:
 *
 *   record     bucket 0x00 escape(key) 0x00 0x00 ~versionId      (16 bytes, inverted)
 *   placement  nodeId 0x00 diskId 0x00 <record key>
 *   bucket     bucket
 *
 * Object keys sort in UTF-8 byte order, S3's listing order (not JavaScript's UTF-16 order).
 * `escape` turns 0x00 into 0x00 0x01 and the key ends with 0x00 0x00, so a key sorts before
 * every longer key it is a prefix of, whatever bytes follow. Version ids are HLC-ordered,
 * so storing their bytes inverted puts the newest version of a key first. Bucket, node and
 * disk names are validated never to contain 0x00 or 0x01.
 */
import { assert } from "../core/assert.js";
import { VERSION_ID_BYTES } from "../core/limits.js";
import { HEX_ID_PATTERN } from "../core/storage-api.js";

const SEPARATOR = 0x00;
const ESCAPED_ZERO = 0x01;

/** The object key's UTF-8 bytes with 0x00 escaped, without the terminator. */
function escapeKey(key: string): Buffer {
  const raw = Buffer.from(key, "utf8");
  let zeros = 0;
  for (const byte of raw) if (byte === SEPARATOR) zeros += 1;
  if (zeros === 0) return raw;
  const out = Buffer.allocUnsafe(raw.length + zeros);
  let at = 0;
  for (const byte of raw) {
    out[at++] = byte;
    if (byte === SEPARATOR) out[at++] = ESCAPED_ZERO;
  }
  assert(at === out.length, "escaped key filled exactly");
  return out;
}

function invertedVersion(versionId: string): Buffer {
  assert(HEX_ID_PATTERN.test(versionId), "version ids are validated before they become keys");
  const bytes = Buffer.from(versionId, "hex");
  assert(bytes.length === VERSION_ID_BYTES, "a hex id is VERSION_ID_BYTES long");
  for (let i = 0; i < bytes.length; i++) bytes[i] = 0xff - (bytes[i] ?? 0);
  return bytes;
}

function nameBytes(name: string): Buffer {
  const bytes = Buffer.from(name, "utf8");
  assert(!bytes.includes(SEPARATOR) && !bytes.includes(ESCAPED_ZERO), "names are validated to hold no 0x00 or 0x01");
  return bytes;
}

/** First key of a bucket's records. */
export function bucketStart(bucket: string): Buffer {
  return Buffer.concat([nameBytes(bucket), Buffer.of(SEPARATOR)]);
}

/** Just past a bucket's records (bucket names never contain 0x00, so bucket 0x01 follows). */
export function bucketEnd(bucket: string): Buffer {
  return Buffer.concat([nameBytes(bucket), Buffer.of(ESCAPED_ZERO)]);
}

/** Every key of `bucket` starting with `prefix` has this as its byte prefix (and no other key). */
export function keyPrefixStart(bucket: string, prefix: string): Buffer {
  return Buffer.concat([bucketStart(bucket), escapeKey(prefix)]);
}

/** First key of the versions of one object key (its newest version, if any). */
export function objectKeyStart(bucket: string, key: string): Buffer {
  return Buffer.concat([bucketStart(bucket), escapeKey(key), Buffer.of(SEPARATOR, SEPARATOR)]);
}

/**
 * A key greater than every version of `key` and smaller than any version of a later key:
 * the next object key's versions start with a byte >= 0x01 where this has the terminator.
 */
export function afterObjectKey(bucket: string, key: string): Buffer {
  return Buffer.concat([objectKeyStart(bucket, key), Buffer.alloc(VERSION_ID_BYTES + 1, 0xff)]);
}

export function recordKey(bucket: string, key: string, versionId: string): Buffer {
  return Buffer.concat([objectKeyStart(bucket, key), invertedVersion(versionId)]);
}

export function placementPrefix(nodeId: string, diskId: string): Buffer {
  return Buffer.concat([nameBytes(nodeId), Buffer.of(SEPARATOR), nameBytes(diskId), Buffer.of(SEPARATOR)]);
}

export function placementEnd(nodeId: string, diskId: string): Buffer {
  return Buffer.concat([nameBytes(nodeId), Buffer.of(SEPARATOR), nameBytes(diskId), Buffer.of(ESCAPED_ZERO)]);
}

export function placementKey(nodeId: string, diskId: string, recordKeyBytes: Buffer): Buffer {
  return Buffer.concat([placementPrefix(nodeId, diskId), recordKeyBytes]);
}

export function bucketKey(bucket: string): Buffer {
  return nameBytes(bucket);
}

export function hasPrefix(bytes: Buffer, prefix: Buffer): boolean {
  return bytes.length >= prefix.length && bytes.subarray(0, prefix.length).equals(prefix);
}
