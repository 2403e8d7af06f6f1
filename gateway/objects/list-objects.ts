/**
 * Listing: every disk holds the records of the objects it has shards of, in key order, so
 * a bucket listing is a k-way merge of per-disk pages, taking the newest version of each
 * key across disks and hiding keys whose newest version is a delete marker. Each disk is
 * read a page at a time, so cost follows the page asked for, not the bucket's size.
 */
import { assert } from "../../core/assert.js";
import { TesseraError } from "../../core/errors.js";
import { afterPrefix, compareKeys } from "../../core/key-order.js";
import type { ObjectRecord, ShardLocation } from "../../core/storage-api.js";
import type { Cluster } from "./cluster.js";
import { RECORD_READ_TIMEOUT_MS, withTimeout } from "./versions.js";

/** Keys fetched per disk per round trip: one S3 page's worth, so most pages take one trip. */
export const LIST_DISK_PAGE_KEYS = 1000;
/** S3's ceiling on keys per listing page (max-keys is clamped to it). */
export const LIST_KEYS_MAX = 1000;

export interface ListObjectsInput {
  readonly bucket: string;
  readonly prefix?: string;
  readonly delimiter?: string;
  /** List keys strictly after this one (S3 marker / start-after / continuation token). */
  readonly startAfter?: string;
  readonly limit: number;
}

export interface ListEntry {
  readonly key: string;
  readonly record?: ObjectRecord;
  /** Set instead of record when the delimiter rolled keys up into a common prefix. */
  readonly commonPrefix?: string;
}

export interface ListObjectsPage {
  /** Objects and common prefixes, in key order, at most `limit` of them together. */
  readonly entries: readonly ListEntry[];
  /** Set when more follow: the last key or prefix returned (the next startAfter). */
  readonly nextStartAfter?: string;
}

/** One disk's position in the merge: a buffered page and where to continue. */
class DiskCursor {
  #buffer: ObjectRecord[] = [];
  #after: string | undefined;
  #exhausted = false;

  constructor(
    readonly cluster: Cluster,
    readonly location: ShardLocation,
    readonly input: ListObjectsInput,
  ) {
    this.#after = input.startAfter;
  }

  /** The next record of this disk, fetching a page when the buffer is empty. */
  async peek(): Promise<ObjectRecord | undefined> {
    if (this.#buffer.length === 0 && !this.#exhausted) await this.#fetch();
    return this.#buffer[0];
  }

  shift(): void {
    this.#buffer.shift();
  }

  /** Skips every key up to and including `key` (after a common prefix was rolled up). */
  async skipThrough(key: string): Promise<void> {
    while (this.#buffer.length > 0 && compareKeys((this.#buffer[0] as ObjectRecord).key, key) <= 0) this.#buffer.shift();
    if (this.#buffer.length === 0 && !this.#exhausted && (this.#after === undefined || compareKeys(this.#after, key) < 0)) this.#after = key;
  }

  async #fetch(): Promise<void> {
    const node = this.cluster.node(this.location.nodeId);
    assert(node !== undefined, "every disk of the map has a node");
    const page = await withTimeout(
      node.listRecords(this.location.diskId, {
        bucket: this.input.bucket,
        ...(this.input.prefix === undefined ? {} : { prefix: this.input.prefix }),
        ...(this.#after === undefined ? {} : { startAfter: this.#after }),
        limit: LIST_DISK_PAGE_KEYS,
      }),
      RECORD_READ_TIMEOUT_MS,
      `node ${this.location.nodeId}`,
    );
    this.#buffer = [...page.records];
    this.#after = page.nextStartAfter;
    this.#exhausted = page.nextStartAfter === undefined;
  }
}

export async function listObjects(cluster: Cluster, input: ListObjectsInput): Promise<ListObjectsPage> {
  const limit = Math.max(1, Math.min(LIST_KEYS_MAX, input.limit));
  const cursors = await liveCursors(cluster, input);
  const entries: ListEntry[] = [];
  const prefix = input.prefix ?? "";
  let last: string | undefined;
  while (entries.length < limit) {
    const next = await nextKey(cursors);
    if (next === undefined) return { entries };
    const { key, newest } = next;
    const rolled = rollUp(key, prefix, input.delimiter);
    if (rolled !== undefined) {
      if (input.startAfter === undefined || compareKeys(rolled, input.startAfter) > 0) {
        entries.push({ key: rolled, commonPrefix: rolled });
        last = rolled;
      }
      // Every key under the common prefix is one entry: skip them all.
      await Promise.all(cursors.map((cursor) => cursor.skipThrough(afterPrefix(rolled))));
      continue;
    }
    if (!newest.deleteMarker) {
      entries.push({ key, record: newest });
      last = key;
    }
  }
  const more = (await nextKey(cursors, false)) !== undefined;
  return more && last !== undefined ? { entries, nextStartAfter: last } : { entries };
}

/** Cursors over every disk whose node answers; listing with a node down still works. */
async function liveCursors(cluster: Cluster, input: ListObjectsInput): Promise<DiskCursor[]> {
  const cursors = cluster.allDisks().map((location) => new DiskCursor(cluster, location, input));
  const probes = await Promise.allSettled(cursors.map((cursor) => cursor.peek()));
  const live = cursors.filter((_, index) => probes[index]?.status === "fulfilled");
  if (live.length === 0) throw new TesseraError("ERR_NODE_UNAVAILABLE", `no disk answered the listing of ${input.bucket}`);
  return live;
}

/** The smallest key across disks with its newest version; consumes it when `take`. */
async function nextKey(cursors: readonly DiskCursor[], take = true): Promise<{ key: string; newest: ObjectRecord } | undefined> {
  const heads = await Promise.all(cursors.map((cursor) => cursor.peek().catch(() => undefined)));
  let key: string | undefined;
  for (const head of heads) if (head !== undefined && (key === undefined || compareKeys(head.key, key) < 0)) key = head.key;
  if (key === undefined) return undefined;
  let newest: ObjectRecord | undefined;
  heads.forEach((head, index) => {
    if (head === undefined || head.key !== key) return;
    if (newest === undefined || head.versionId > newest.versionId) newest = head;
    if (take) cursors[index]?.shift();
  });
  assert(newest !== undefined, "the smallest key came from some disk");
  return { key, newest };
}

/** The common prefix `key` rolls up into under `delimiter`, if any. */
function rollUp(key: string, prefix: string, delimiter: string | undefined): string | undefined {
  if (delimiter === undefined || delimiter === "") return undefined;
  const at = key.indexOf(delimiter, prefix.length);
  return at === -1 ? undefined : key.slice(0, at + delimiter.length);
}
