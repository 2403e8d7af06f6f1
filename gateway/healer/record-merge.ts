/**
 * The scan primitive: a merge of many placement listings (listRecordsByPlacement of listing
 * disk D for placement disk X), each in record-key order, into one stream of groups: every
 * copy of one object version seen anywhere, together. So a scan sees, for each version,
 * which disks hold its record without reading any record twice, and holds one page per
 * listing in memory.
 *
 * Record-key order is the storage node's (storage-node/record-keys.ts): bucket, then key,
 * both in UTF-8 byte order with a prefix first, then version id newest first.
 */
import { compareKeys } from "../../core/key-order.js";
import type { ObjectRecord } from "../../core/storage-api.js";
import type { Cluster } from "../objects/cluster.js";
import { withTimeout } from "../objects/versions.js";
import type { DiskRef } from "./gather.js";
import { RECORD_READ_TIMEOUT_MS } from "./limits.js";
import { locationKey } from "./target-placement.js";

export interface RecordPosition {
  readonly bucket: string;
  readonly key: string;
  readonly versionId: string;
}

export function compareRecords(a: RecordPosition, b: RecordPosition): number {
  return compareKeys(a.bucket, b.bucket) || compareKeys(a.key, b.key) || (a.versionId < b.versionId ? 1 : a.versionId > b.versionId ? -1 : 0);
}

export interface ListingSpec {
  /** The disk whose records are listed. */
  readonly listing: DiskRef;
  /** Only records that place a shard on this disk. */
  readonly placement: DiskRef;
  /** Resume after this cursor (from a checkpoint). */
  readonly cursor?: string;
}

export function listingId(spec: Pick<ListingSpec, "listing" | "placement">): string {
  return `${locationKey(spec.listing)}>${locationKey(spec.placement)}`;
}

export interface Sighting {
  /** The disk the record was listed from: it holds this record. */
  readonly disk: DiskRef;
  readonly record: ObjectRecord;
}

export interface Group {
  readonly position: RecordPosition;
  readonly sightings: readonly Sighting[];
}

interface Page {
  /** The cursor that fetched it: resuming from here re-lists the page. */
  readonly cursor: string | undefined;
  readonly last: RecordPosition | undefined;
}

/** One listing: its current page, and the pages since the caller's watermark (for checkpoints). */
class Listing {
  readonly spec: ListingSpec;
  #records: ObjectRecord[] = [];
  #next: string | undefined;
  #done = false;
  readonly pages: Page[] = [];
  error: string | undefined;

  constructor(spec: ListingSpec) {
    this.spec = spec;
    this.#next = spec.cursor;
  }

  get head(): ObjectRecord | undefined {
    return this.#records[0];
  }

  get exhausted(): boolean {
    return this.#done && this.#records.length === 0;
  }

  shift(): void {
    this.#records.shift();
  }

  /** Fetches the next page when the current one is used up. */
  async fill(cluster: Cluster, pageRecords: number): Promise<void> {
    while (this.#records.length === 0 && !this.#done) {
      const node = cluster.node(this.spec.listing.nodeId);
      const cursor = this.#next;
      try {
        if (node === undefined) throw new Error(`no client for node ${this.spec.listing.nodeId}`);
        const query = { nodeId: this.spec.placement.nodeId, diskId: this.spec.placement.diskId, limit: pageRecords, ...(cursor === undefined ? {} : { cursor }) };
        const page = await withTimeout(node.listRecordsByPlacement(this.spec.listing.diskId, query), RECORD_READ_TIMEOUT_MS, `listing of ${listingId(this.spec)}`);
        this.#records = [...page.records];
        this.#next = page.nextCursor;
        this.#done = page.nextCursor === undefined;
        const last = page.records[page.records.length - 1];
        this.pages.push({ cursor, last: last === undefined ? undefined : positionOf(last) });
      } catch (error) {
        this.error = error instanceof Error ? error.message : String(error);
        this.#done = true;
      }
    }
  }

  /** Where to resume so that nothing at or after `watermark` is skipped. */
  resumeCursor(watermark: RecordPosition | undefined): string | undefined {
    if (watermark !== undefined) {
      while (this.pages.length > 1 && this.pages[0]?.last !== undefined && compareRecords(this.pages[0].last, watermark) < 0) this.pages.shift();
    }
    return this.pages[0]?.cursor ?? this.spec.cursor;
  }
}

export function positionOf(record: Pick<ObjectRecord, "bucket" | "key" | "versionId">): RecordPosition {
  return { bucket: record.bucket, key: record.key, versionId: record.versionId };
}

/** A running merge; `groups()` yields in record-key order, `cursors()` gives a checkpoint. */
export class RecordMerge {
  readonly #cluster: Cluster;
  readonly #listings: Listing[];
  readonly #pageRecords: number;

  constructor(cluster: Cluster, specs: readonly ListingSpec[], pageRecords: number) {
    this.#cluster = cluster;
    this.#listings = specs.map((spec) => new Listing(spec));
    this.#pageRecords = pageRecords;
  }

  async *groups(): AsyncGenerator<Group> {
    for (;;) {
      await Promise.all(this.#listings.map((listing) => listing.fill(this.#cluster, this.#pageRecords)));
      let lowest: ObjectRecord | undefined;
      for (const listing of this.#listings) {
        const head = listing.head;
        if (head !== undefined && (lowest === undefined || compareRecords(head, lowest) < 0)) lowest = head;
      }
      if (lowest === undefined) return;
      const sightings: Sighting[] = [];
      for (const listing of this.#listings) {
        const head = listing.head;
        if (head !== undefined && compareRecords(head, lowest) === 0) {
          sightings.push({ disk: listing.spec.listing, record: head });
          listing.shift();
        }
      }
      yield { position: positionOf(lowest), sightings };
    }
  }

  /** Per listing, where a resumed scan must start so nothing at or after `watermark` is missed. */
  cursors(watermark: RecordPosition | undefined): Record<string, string | undefined> {
    return Object.fromEntries(this.#listings.map((listing) => [listingId(listing.spec), listing.resumeCursor(watermark)]));
  }

  /** Listings that failed (their disk went away mid-scan): the scan is incomplete. */
  errors(): string[] {
    return this.#listings.flatMap((listing) => (listing.error === undefined ? [] : [`${listingId(listing.spec)}: ${listing.error}`]));
  }
}
