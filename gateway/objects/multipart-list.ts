/**
 * ListMultipartUploads: the upload records of a bucket are keyed by object key in their own
 * reserved bucket, so the object listing's k-way merge (list-objects.ts) walks their keys in
 * order with prefix and delimiter; each key's uploads are then read from its disks, oldest
 * first, as S3 orders them (key, then initiation).
 */
import { listObjects, LIST_DISK_PAGE_KEYS } from "./list-objects.js";
import type { Cluster } from "./cluster.js";
import { uploadsBucket, uploadsOfKey, type Upload } from "./multipart-records.js";

export interface ListUploadsInput {
  readonly bucket: string;
  readonly prefix?: string;
  readonly delimiter?: string;
  readonly keyMarker?: string;
  /** Only with keyMarker: that key's uploads after this id are listed too. */
  readonly uploadIdMarker?: string;
  /** Uploads plus common prefixes per page. */
  readonly limit: number;
}

export type UploadListEntry = { readonly upload: Upload; readonly prefix?: undefined } | { readonly prefix: string; readonly upload?: undefined };

export interface ListUploadsPage {
  readonly entries: readonly UploadListEntry[];
  readonly truncated: boolean;
  readonly nextKeyMarker?: string;
  readonly nextUploadIdMarker?: string;
}

export async function listUploads(cluster: Cluster, input: ListUploadsInput): Promise<ListUploadsPage> {
  const entries: UploadListEntry[] = [];
  const wanted = input.limit + 1; // one more than the page tells whether it is truncated
  if (input.keyMarker !== undefined && input.uploadIdMarker !== undefined) {
    const marker = input.uploadIdMarker;
    for (const upload of await uploadsOfKey(cluster, input.bucket, input.keyMarker)) if (upload.uploadId > marker) entries.push({ upload });
  }
  let startAfter = input.keyMarker;
  while (entries.length < wanted) {
    const page = await listObjects(cluster, {
      bucket: uploadsBucket(input.bucket),
      ...(input.prefix === undefined || input.prefix === "" ? {} : { prefix: input.prefix }),
      ...(input.delimiter === undefined ? {} : { delimiter: input.delimiter }),
      ...(startAfter === undefined ? {} : { startAfter }),
      limit: Math.min(LIST_DISK_PAGE_KEYS, wanted - entries.length),
    });
    for (const entry of page.entries) {
      if (entry.commonPrefix !== undefined) entries.push({ prefix: entry.commonPrefix });
      else for (const upload of await uploadsOfKey(cluster, input.bucket, entry.key)) entries.push({ upload });
    }
    if (page.nextStartAfter === undefined) break;
    startAfter = page.nextStartAfter;
  }
  const shown = entries.slice(0, input.limit);
  const last = shown[shown.length - 1];
  if (entries.length <= input.limit || last === undefined) return { entries: shown, truncated: false };
  if (last.upload === undefined) return { entries: shown, truncated: true, nextKeyMarker: last.prefix };
  return { entries: shown, truncated: true, nextKeyMarker: last.upload.key, nextUploadIdMarker: last.upload.uploadId };
}
