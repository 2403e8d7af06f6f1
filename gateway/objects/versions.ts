/**
 * Reading version records from an object's disks and choosing the version to serve:
 * the newest one that is a delete marker, or whose shards sit on at least k disks that
 * answered with its record (DESIGN.md: "picks the newest version readable from at least k
 * shards"). Records are followed: a disk a record names is read even if the map no longer
 * places the key there, so a map change or a healer move never hides a shard.
 */
import { TesseraError } from "../../core/errors.js";
import { decodeShardHeader } from "../../core/shard-format.js";
import type { ObjectRecord, ShardLocation } from "../../core/storage-api.js";
import type { Cluster } from "./cluster.js";
import { writeQuorum } from "./put-object.js";

/**
 * How long the gateway waits for one node's records. Records are small LMDB reads; a node
 * that needs longer is treated as down for this request rather than stalling the client.
 */
export const RECORD_READ_TIMEOUT_MS = 5_000;
/**
 * How long a GET waits for the read quorum's records before it also asks the other disks of
 * the placement. A node that hung (SIGSTOP, a stuck disk) answers nothing until
 * RECORD_READ_TIMEOUT_MS, and the failure detector needs seconds to call it suspect: until
 * then every GET asking it would wait the full timeout. With the others asked after this
 * delay, the version is decided without the silent disk whenever it can be (resolveNewest
 * treats it as not answering, as it would after the timeout); otherwise the GET still waits.
 */
export const RECORD_HEDGE_MS = 500;

/**
 * True for a disk the failure detector holds unusable now (its node suspect or down, or the
 * disk failed): reads ask the other disks first and this one only when they cannot do without
 * it, so a hung node costs a GET nothing once detected, and a wrongly suspected one is still
 * asked when needed.
 */
export type AvoidDisk = (location: Pick<ShardLocation, "nodeId" | "diskId">) => boolean;

export interface RecordRead {
  readonly location: ShardLocation;
  /** Undefined when the node did not answer (down, timeout, disk failed). */
  readonly records?: readonly ObjectRecord[];
  readonly error?: unknown;
}

export interface ResolvedVersion {
  readonly record: ObjectRecord;
  /** The disks that answered with this version's record (and that record), by shard index. */
  readonly holders: ReadonlyMap<number, { readonly location: ShardLocation; readonly record: ObjectRecord }>;
  /** Shard indexes whose node answered: the readable ones. */
  readonly answered: ReadonlySet<string>;
  /**
   * Only a read quorum of the disks was asked (readQuorum): `holders` lists just those, and
   * the disks not asked are in `answered` (not known to be down; their shards may be read).
   */
  readonly partial?: boolean;
}

export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Every version of the key on each of `locations`, and then on every disk a found record
 * names that was not asked yet (a record always says where its shards really are: after a map
 * change or a healer move, some may sit outside the map's placement). One extra round trip,
 * only when a record names such a disk.
 */
export async function readRecords(
  cluster: Cluster,
  bucket: string,
  key: string,
  locations: readonly ShardLocation[],
  already: readonly RecordRead[] = [],
  /** Disks left out on purpose (the rest of a read quorum's placement): not followed either. */
  leftOut: readonly ShardLocation[] = [],
): Promise<RecordRead[]> {
  const done = new Set(already.map((read) => locationKey(read.location)));
  const reads = [...already, ...(await readRecordsAt(cluster, bucket, key, locations.filter((location) => !done.has(locationKey(location)))))];
  const asked = new Set([...reads, ...leftOut.map((location) => ({ location }))].map((read) => locationKey(read.location)));
  const named = new Map<string, ShardLocation>();
  for (const read of reads) {
    for (const record of read.records ?? []) for (const location of record.placement) if (!asked.has(locationKey(location))) named.set(locationKey(location), location);
  }
  if (named.size === 0) return reads;
  return [...reads, ...(await readRecordsAt(cluster, bucket, key, [...named.values()]))];
}

async function readRecordsAt(cluster: Cluster, bucket: string, key: string, locations: readonly ShardLocation[]): Promise<RecordRead[]> {
  return Promise.all(locations.map((location) => readRecordAt(cluster, bucket, key, location)));
}

async function readRecordAt(cluster: Cluster, bucket: string, key: string, location: ShardLocation): Promise<RecordRead> {
  const node = cluster.node(location.nodeId);
  if (node === undefined) return { location, error: new Error(`unknown node ${location.nodeId}`) };
  try {
    const records = await withTimeout(node.getRecords(location.diskId, bucket, key), RECORD_READ_TIMEOUT_MS, `node ${location.nodeId}`);
    return { location, records };
  } catch (error) {
    return { location, error };
  }
}

/**
 * The records of the read quorum `first`, followed as readRecords follows them; when they are
 * not all in within `hedgeMs`, `hedge` is called with those that are (the silent ones as not
 * answering): its result, if any, is returned at once; else all of `first` are awaited.
 */
async function readQuorumRecords(
  cluster: Cluster,
  bucket: string,
  key: string,
  first: readonly ShardLocation[],
  rest: readonly ShardLocation[],
  hedgeMs: number,
  hedge: (answered: RecordRead[], silent: readonly ShardLocation[]) => Promise<{ reads: RecordRead[]; resolved?: ResolvedVersion }>,
): Promise<{ reads: RecordRead[]; resolved?: ResolvedVersion }> {
  const settled = new Map<ShardLocation, RecordRead>();
  const all = Promise.all(first.map((location) => readRecordAt(cluster, bucket, key, location).then((read) => (settled.set(location, read), read))));
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(resolve, hedgeMs, undefined)));
  const quick = await Promise.race([all, late]).finally(() => clearTimeout(timer));
  if (quick !== undefined) return { reads: await readRecords(cluster, bucket, key, [], quick, rest) };
  const hedged = await hedge([...settled.values()], first.filter((location) => !settled.has(location)));
  if (hedged.resolved !== undefined) return hedged;
  // Undecided: the silent disks' answers (or timeouts) join what the hedge read.
  const firstKeys = new Set(first.map(locationKey));
  return { reads: [...(await all), ...hedged.reads.filter((read) => !firstKeys.has(locationKey(read.location)))] };
}

const locationKey = (location: Pick<ShardLocation, "nodeId" | "diskId">): string => `${location.nodeId}/${location.diskId}`;

/**
 * Disks a GET asks first: any version acknowledged at the write quorum W has records on at
 * least W of the N disks, so any N - W + 1 disks include one of them; and an object needs k
 * shards. With 4+2 (W = 5) that is 4 disks instead of 6 — a third fewer round trips for
 * every GET and HEAD.
 */
export function readQuorum(k: number, m: number, quorum: number): number {
  return Math.min(k + m, Math.max(k, k + m - quorum + 1));
}

/**
 * How many of a key's placement positions (0 .. 1 + m - 1) hold small objects stored as
 * copies (put-object.ts, SMALL_COPIES_BYTES_DEFAULT), or 0 when the code has k = 1 (no copies
 * versions apart from the objects themselves). A copies version is acknowledged only on all
 * of them, so one answer among them shows it, and no answer among them may hide it.
 */
export function copiesWidth(ec: { readonly k: number; readonly m: number }): number {
  return ec.k > 1 ? 1 + ec.m : 0;
}

/** The map's write quorum and copies width, as resolveNewest judges versions by them. */
export interface KeyQuorums {
  /** Records an erasure-coded version of this map needs (put-object.ts, writeQuorum). */
  readonly write: number;
  /** copiesWidth of the map's code. */
  readonly copies: number;
}

export function keyQuorums(ec: { readonly k: number; readonly m: number }): KeyQuorums {
  return { write: writeQuorum(ec.k, ec.m), copies: copiesWidth(ec) };
}

/**
 * The version to serve, asking only a read quorum of the disks (the data shards' first, so
 * a healthy read needs no reconstruction) and the rest only when those cannot decide: one of
 * them did not answer, or a newer version is on some of them but not readable from them
 * alone. What can be decided from the quorum: the newest version found there with k holders
 * (or a delete marker) is the newest acknowledged one, since any newer acknowledged version
 * would have a record on one of the disks asked. Nothing found is not decided there: after a
 * map change the first disks may be new ones, with the key's records still on the others.
 * Throws as resolveNewest does once every disk was asked.
 *
 * Disks to `avoid` (the failure detector's suspects) go last: any read quorum of disks decides
 * as well as another, so one made of the others costs a known-hung node nothing; they are
 * asked only when the others do not make a quorum or cannot decide.
 */
export async function resolveFromQuorum(cluster: Cluster, bucket: string, key: string, locations: readonly ShardLocation[], quorums: KeyQuorums, avoid?: AvoidDisk): Promise<{ reads: RecordRead[]; resolved: ResolvedVersion | undefined }> {
  const { k, m } = cluster.map.ec;
  const writeQuorum = quorums.write;
  const byIndex = [...locations].sort((a, b) => a.shardIndex - b.shardIndex);
  const ordered = avoid === undefined ? byIndex : [...byIndex.filter((location) => !avoid(location)), ...byIndex.filter((location) => avoid(location))];
  const first = ordered.slice(0, readQuorum(k, m, writeQuorum));
  if (first.length < locations.length) {
    const rest = ordered.slice(first.length);
    // Some of the quorum are slow to answer: ask the rest now, and decide without the silent
    // ones if that is unambiguous (a version found, as resolveNewest would after their timeout).
    const hedge = async (answered: RecordRead[], silent: readonly ShardLocation[]): Promise<{ reads: RecordRead[]; resolved?: ResolvedVersion }> => {
      const reads = await readRecords(cluster, bucket, key, rest, answered, silent);
      const withSilent = [...reads, ...silent.map((location) => ({ location, error: new Error(`node ${location.nodeId}: no answer within ${RECORD_HEDGE_MS} ms`) }))];
      try {
        const resolved = resolveNewest(withSilent, quorums);
        return resolved === undefined ? { reads } : { reads: withSilent, resolved };
      } catch {
        return { reads }; // ambiguous without them: wait for their answers (or their timeout)
      }
    };
    const quorum = await readQuorumRecords(cluster, bucket, key, first, rest, RECORD_HEDGE_MS, hedge);
    if (quorum.resolved !== undefined) return { reads: quorum.reads, resolved: quorum.resolved };
    const reads = quorum.reads;
    const decided = decideFromQuorum(reads, quorums);
    if (decided !== undefined) return { reads, resolved: partialVersion(decided, reads) };
    const all = await readRecords(cluster, bucket, key, locations, reads);
    return { reads: all, resolved: resolveNewest(all, quorums) };
  }
  const reads = await readRecords(cluster, bucket, key, locations);
  return { reads, resolved: resolveNewest(reads, quorums) };
}

/** A version decided from some of the disks: those not asked are not known to be down. */
function partialVersion(decided: ResolvedVersion, reads: readonly RecordRead[]): ResolvedVersion {
  const asked = new Set(reads.map((read) => locationKey(read.location)));
  const notAsked = decided.record.placement.filter((location) => !asked.has(locationKey(location))).map(locationKey);
  return { ...decided, answered: new Set([...decided.answered, ...notAsked]), partial: true };
}

/**
 * The version the quorum's reads decide, or undefined when they cannot (see resolveFromQuorum):
 * every disk asked must have answered. A copies version (on the first 1 + m shard indexes) is
 * among them when it exists: k disks always include one of those, since only k - 1 others exist.
 */
function decideFromQuorum(reads: readonly RecordRead[], quorums: KeyQuorums): ResolvedVersion | undefined {
  if (!reads.every((read) => read.records !== undefined)) return undefined;
  let resolved: ResolvedVersion | undefined;
  try {
    resolved = resolveNewest(reads, quorums);
  } catch {
    return undefined;
  }
  if (resolved === undefined) return undefined;
  // A newer version seen on fewer than k of these disks may be readable with the others.
  const newest = reads.flatMap((read) => read.records ?? []).reduce((a, b) => (a.versionId >= b.versionId ? a : b));
  return newest.versionId === resolved.record.versionId ? resolved : undefined;
}

/**
 * The version to serve, or undefined when no disk holds any version of the key. A newer
 * version that cannot be read now is skipped only if it cannot have been acknowledged (its
 * records plus the disks that did not answer stay below the write quorum: a failed PUT);
 * otherwise serving an older version would be serving stale data, so it is ERR_READ_QUORUM.
 */
export function resolveNewest(reads: readonly RecordRead[], quorums: KeyQuorums): ResolvedVersion | undefined {
  const answered = new Set(reads.filter((read) => read.records !== undefined).map((read) => locationKey(read.location)));
  const unanswered = reads.length - answered.size;
  if (copiesSilent(reads, answered, quorums.copies)) {
    throw new TesseraError("ERR_READ_QUORUM", `none of the disks of the key's small-object copies answered: a newer version may be on them`);
  }
  const versions = new Map<string, { record: ObjectRecord; byDisk: Map<string, { location: ShardLocation; record: ObjectRecord }> }>();
  for (const read of reads) {
    for (const record of read.records ?? []) {
      const entry = versions.get(record.versionId) ?? { record, byDisk: new Map() };
      if (record.revision > entry.record.revision) entry.record = record;
      entry.byDisk.set(locationKey(read.location), { location: read.location, record });
      versions.set(record.versionId, entry);
    }
  }
  const newestFirst = [...versions.values()].sort((a, b) => (a.record.versionId < b.record.versionId ? 1 : -1));
  for (const { record, byDisk } of newestFirst) {
    const holders = holdersOf(record, byDisk);
    if (record.deleteMarker || holders.size >= record.ec.k) return { record, holders, answered };
    const silent = record.placement.length === 0 ? unanswered : record.placement.filter((location) => !answered.has(locationKey(location))).length;
    if (byDisk.size + silent >= (record.ec.writeQuorum ?? quorums.write)) throw unreadable(record, silent);
  }
  if (newestFirst.length === 0 && unanswered >= quorums.write) {
    throw new TesseraError("ERR_READ_QUORUM", `${unanswered} of ${reads.length} disks did not answer: the key may exist on them`);
  }
  return undefined;
}

/**
 * True when a copies version (acknowledged on exactly the first `copies` shard indexes of a
 * placement) could be hiding on silent disks: every disk asked at one of those indexes of the
 * map's placement is silent, and no answering disk holds one of those indexes in a record
 * found (after the healer moved an object, its records name where its copies are now).
 */
function copiesSilent(reads: readonly RecordRead[], answered: ReadonlySet<string>, copies: number): boolean {
  const atCopies = reads.filter((read) => read.location.shardIndex >= 0 && read.location.shardIndex < copies);
  if (copies === 0 || atCopies.length < copies || atCopies.some((read) => read.records !== undefined)) return false;
  for (const read of reads) {
    for (const record of read.records ?? []) {
      if (record.placement.some((location) => location.shardIndex < copies && answered.has(locationKey(location)))) return false;
    }
  }
  return true;
}

function unreadable(record: ObjectRecord, unanswered: number): TesseraError {
  return new TesseraError("ERR_READ_QUORUM", `${record.bucket}/${record.key} version ${record.versionId}: fewer than k = ${record.ec.k} shards reachable (${unanswered} disks did not answer)`);
}

/**
 * The shards of `record` that can be read, by the shard index its placement gives each
 * disk (the newest revision's placement: after a healer move, a disk's index may differ from
 * the map's). A disk counts only if it holds a record of this version, since a record is
 * written only after its shard is committed; an inline shard only if it is that index's.
 */
function holdersOf(record: ObjectRecord, byDisk: ReadonlyMap<string, { location: ShardLocation; record: ObjectRecord }>): Map<number, { location: ShardLocation; record: ObjectRecord }> {
  const holders = new Map<number, { location: ShardLocation; record: ObjectRecord }>();
  if (record.placement.length === 0) {
    for (const holder of byDisk.values()) holders.set(holder.location.shardIndex, holder);
    return holders;
  }
  for (const location of record.placement) {
    const holder = byDisk.get(locationKey(location));
    if (holder === undefined || !inlineMatches(holder.record, location.shardIndex)) continue;
    holders.set(location.shardIndex, { location, record: holder.record });
  }
  return holders;
}

/**
 * Whether a record's inline shard (if any) is shard `shardIndex` of this very object version:
 * its header names the record's object and version (parts are never inline: part 0). A
 * mismatch (a bug, or bytes that only look valid) makes the disk not a holder: parity fills in.
 */
function inlineMatches(record: ObjectRecord, shardIndex: number): boolean {
  if (record.inline === undefined) return true;
  try {
    decodeShardHeader(record.inline, { objectId: Buffer.from(record.objectId, "hex"), versionId: Buffer.from(record.versionId, "hex"), partNumber: 0, shardIndex });
    return true;
  } catch {
    return false;
  }
}
