/**
 * The cluster map: which nodes and disks exist, where they live (zones), how heavy each
 * disk is, and the erasure-coding defaults. Every gateway loads the same file; placement
 * is computed from it, so a typo must fail loudly at load, never shift data silently.
 * `parseClusterMap` validates raw data (from JSON today, YAML later) and returns a frozen,
 * normalized map; every problem is an ERR_INVALID_CLUSTER_MAP naming the exact field.
 */
import { parse as parseYaml } from "yaml";
import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import {
  BLOCK_BYTES_DEFAULT,
  BLOCK_BYTES_MAX,
  BLOCK_BYTES_MIN,
  CHUNK_ALIGN_BYTES,
  CLUSTER_NODES_MAX,
  DISK_WEIGHT_MAX,
  EC_K_DEFAULT,
  EC_K_MAX,
  EC_M_DEFAULT,
  EC_M_MAX,
  NODE_DISKS_MAX,
} from "../core/limits.js";
import { assert } from "../core/assert.js";
import { TesseraError } from "../core/errors.js";

/**
 * Node, disk and zone ids. They become parts of disk keys (`node/disk`), file names on
 * storage nodes and log lines, so no slashes, dots, spaces or leading punctuation.
 */
export const MAP_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/i;
/** Zone of a node that names none: a map without zones is one zone. */
export const ZONE_DEFAULT = "default";
/** Weight of a disk that names none: weights are relative, so 1 means "like the others". */
export const DISK_WEIGHT_DEFAULT = 1;

export interface ErasureCoding {
  /** Data shards per object. */
  readonly k: number;
  /** Parity shards per object: any m lost shards are survivable. */
  readonly m: number;
  /** Bytes of object data per stripe; a multiple of k * CHUNK_ALIGN_BYTES. */
  readonly blockSize: number;
}

export interface DiskConfig {
  /** Unique within its node; the cluster-wide name is the disk key `${nodeId}/${diskId}`. */
  readonly id: string;
  /** Relative capacity: a weight-2 disk receives twice the shards of a weight-1 disk. */
  readonly weight: number;
}

export interface NodeConfig {
  readonly id: string;
  /** Normalized origin of the node's internal API, e.g. "http://10.0.0.7:9100". */
  readonly url: string;
  readonly zone: string;
  readonly disks: readonly DiskConfig[];
}

export interface ClusterMap {
  /** Rises on every change, so gateways can tell which of two maps is newer. */
  readonly epoch: number;
  readonly ec: ErasureCoding;
  /** Declared zones, or (when the file declares none) the zones the nodes name, in order. */
  readonly zones: readonly string[];
  readonly nodes: readonly NodeConfig[];
}

/** One disk of the map, flattened, as placement hands it out. */
export interface ClusterDisk {
  readonly nodeId: string;
  readonly diskId: string;
  /** Cluster-wide disk name: `${nodeId}/${diskId}`. */
  readonly key: string;
  readonly weight: number;
  readonly zone: string;
}

const MAP_FIELDS = ["epoch", "ec", "zones", "nodes"] as const;
const EC_FIELDS = ["k", "m", "blockSize"] as const;
const NODE_FIELDS = ["id", "url", "zone", "disks"] as const;
const DISK_FIELDS = ["id", "weight"] as const;

type RawObject = Readonly<Record<string, unknown>>;

/** Validation context: where the map came from, for every message. */
interface Context {
  readonly source: string;
}

function fail(context: Context, problem: string): never {
  throw new TesseraError("ERR_INVALID_CLUSTER_MAP", `cluster map ${context.source}: ${problem}`, {
    source: context.source,
  });
}

/** How a bad value is shown in a message: short, unambiguous, never the whole object. */
function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "object") return "an object";
  if (typeof value === "undefined") return "nothing";
  return String(value);
}

function requireObject(context: Context, value: unknown, path: string, fields: readonly string[]): RawObject {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail(context, `${path} must be an object, got ${describeValue(value)}`);
  }
  const record = value as RawObject;
  for (const name of Object.keys(record)) {
    // A misspelt optional field ("wieght") would otherwise fall back to its default.
    if (!fields.includes(name)) {
      fail(context, `${path} has unknown field ${JSON.stringify(name)} (allowed: ${fields.join(", ")})`);
    }
  }
  return record;
}

function requireArray(context: Context, value: unknown, path: string, max: number, maxName: string): readonly unknown[] {
  if (!Array.isArray(value)) fail(context, `${path} must be an array, got ${describeValue(value)}`);
  if (value.length === 0) fail(context, `${path} must not be empty`);
  if (value.length > max) fail(context, `${path} has ${value.length} entries, more than ${maxName} (${max})`);
  return value;
}

function requireId(context: Context, value: unknown, path: string): string {
  if (value === undefined) fail(context, `${path} is required`);
  if (typeof value !== "string") fail(context, `${path} must be a string, got ${describeValue(value)}`);
  if (!MAP_ID_PATTERN.test(value)) {
    fail(context, `${path} must match ${String(MAP_ID_PATTERN)}, got ${describeValue(value)}`);
  }
  return value;
}

function requireInteger(context: Context, value: unknown, path: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    fail(context, `${path} must be an integer from ${min} to ${max}, got ${describeValue(value)}`);
  }
  return value;
}

function parseEpoch(context: Context, value: unknown): number {
  if (value === undefined) fail(context, "epoch is required");
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    fail(context, `epoch must be an integer >= 1, got ${describeValue(value)}`);
  }
  return value;
}

function parseErasureCoding(context: Context, value: unknown): ErasureCoding {
  if (value === undefined) return { k: EC_K_DEFAULT, m: EC_M_DEFAULT, blockSize: BLOCK_BYTES_DEFAULT };
  const raw = requireObject(context, value, "ec", EC_FIELDS);
  const k = raw.k === undefined ? EC_K_DEFAULT : requireInteger(context, raw.k, "ec.k", 1, EC_K_MAX);
  const m = raw.m === undefined ? EC_M_DEFAULT : requireInteger(context, raw.m, "ec.m", 1, EC_M_MAX);
  // Each stripe splits into k equal chunks, and the codec works in 8-byte words.
  const align = k * CHUNK_ALIGN_BYTES;
  // A map that sets k but no blockSize gets the default rounded down to a whole stripe
  // (1 MiB is not a multiple of 10 * 8), rather than an error about a field it never set.
  const blockSize =
    raw.blockSize === undefined
      ? BLOCK_BYTES_DEFAULT - (BLOCK_BYTES_DEFAULT % align)
      : requireInteger(context, raw.blockSize, "ec.blockSize", BLOCK_BYTES_MIN, BLOCK_BYTES_MAX);
  assert(blockSize >= BLOCK_BYTES_MIN, "the rounded default stays above the minimum");
  if (blockSize % align !== 0) {
    fail(context, `ec.blockSize must be a multiple of k * ${CHUNK_ALIGN_BYTES} = ${align}, got ${blockSize}`);
  }
  return { k, m, blockSize };
}

function parseZones(context: Context, value: unknown): readonly string[] | undefined {
  if (value === undefined) return undefined;
  const raw = requireArray(context, value, "zones", CLUSTER_NODES_MAX, "CLUSTER_NODES_MAX");
  const zones: string[] = [];
  raw.forEach((entry, index) => {
    const zone = requireId(context, entry, `zones[${index}]`);
    const first = zones.indexOf(zone);
    if (first !== -1) fail(context, `zones[${index}] ${describeValue(zone)} duplicates zones[${first}]`);
    zones.push(zone);
  });
  return zones;
}

/**
 * Internal URLs: plain origins only. A path would be silently dropped by the client code
 * that joins routes onto the origin, and credentials do not belong in a shared map file.
 */
function parseUrl(context: Context, value: unknown, path: string): string {
  if (value === undefined) fail(context, `${path} is required`);
  if (typeof value !== "string") fail(context, `${path} must be a string, got ${describeValue(value)}`);
  const problem = `${path} must be an http: or https: URL with a host and no path, got ${describeValue(value)}`;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    fail(context, problem);
  }
  const plain = url.pathname === "/" && url.search === "" && url.hash === "" && url.username === "" && url.password === "";
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.hostname === "" || !plain) fail(context, problem);
  return url.origin;
}

function parseWeight(context: Context, value: unknown, path: string): number {
  if (value === undefined) return DISK_WEIGHT_DEFAULT;
  if (typeof value !== "number" || Number.isNaN(value) || value <= 0) {
    fail(context, `${path} must be a positive number, got ${describeValue(value)}`);
  }
  if (value > DISK_WEIGHT_MAX) {
    fail(context, `${path} must be at most DISK_WEIGHT_MAX (${DISK_WEIGHT_MAX}), got ${describeValue(value)}`);
  }
  return value;
}

function parseDisks(context: Context, value: unknown, path: string): readonly DiskConfig[] {
  if (value === undefined) fail(context, `${path} is required`);
  const raw = requireArray(context, value, path, NODE_DISKS_MAX, "NODE_DISKS_MAX");
  const disks: DiskConfig[] = [];
  raw.forEach((entry, index) => {
    const diskPath = `${path}[${index}]`;
    const disk = requireObject(context, entry, diskPath, DISK_FIELDS);
    const id = requireId(context, disk.id, `${diskPath}.id`);
    const first = disks.findIndex((seen) => seen.id === id);
    if (first !== -1) fail(context, `${diskPath}.id ${describeValue(id)} duplicates ${path}[${first}].id`);
    disks.push({ id, weight: parseWeight(context, disk.weight, `${diskPath}.weight`) });
  });
  return disks;
}

function parseNode(context: Context, value: unknown, path: string, zones: readonly string[] | undefined): NodeConfig {
  const raw = requireObject(context, value, path, NODE_FIELDS);
  const id = requireId(context, raw.id, `${path}.id`);
  const url = parseUrl(context, raw.url, `${path}.url`);
  // Declaring zones means every node must say where it is: a forgotten zone would
  // otherwise land in "default" and escape the balance the zones were declared for.
  if (zones !== undefined && raw.zone === undefined) fail(context, `${path}.zone is required when zones are declared`);
  const zone = raw.zone === undefined ? ZONE_DEFAULT : requireId(context, raw.zone, `${path}.zone`);
  if (zones !== undefined && !zones.includes(zone)) {
    fail(context, `${path}.zone ${describeValue(zone)} is not declared in zones (${zones.join(", ")})`);
  }
  return { id, url, zone, disks: parseDisks(context, raw.disks, `${path}.disks`) };
}

function parseNodes(context: Context, value: unknown, zones: readonly string[] | undefined): readonly NodeConfig[] {
  if (value === undefined) fail(context, "nodes is required");
  const raw = requireArray(context, value, "nodes", CLUSTER_NODES_MAX, "CLUSTER_NODES_MAX");
  const nodes: NodeConfig[] = [];
  const firstById = new Map<string, number>();
  const firstByUrl = new Map<string, number>();
  raw.forEach((entry, index) => {
    const node = parseNode(context, entry, `nodes[${index}]`, zones);
    const sameId = firstById.get(node.id);
    if (sameId !== undefined) fail(context, `nodes[${index}].id ${describeValue(node.id)} duplicates nodes[${sameId}].id`);
    // Two entries for one process would let "one shard per node" put two shards on it.
    const sameUrl = firstByUrl.get(node.url);
    if (sameUrl !== undefined) {
      fail(context, `nodes[${index}].url ${describeValue(node.url)} duplicates nodes[${sameUrl}].url`);
    }
    firstById.set(node.id, index);
    firstByUrl.set(node.url, index);
    nodes.push(node);
  });
  return nodes;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * Validates a raw map (parsed JSON or YAML) and returns it frozen and normalized:
 * defaults filled in, URLs reduced to their origin, `zones` always present.
 * `source` names the map in messages (usually its path).
 */
export function parseClusterMap(raw: unknown, source: string): ClusterMap {
  const context: Context = { source };
  const top = requireObject(context, raw, "the map", MAP_FIELDS);
  const epoch = parseEpoch(context, top.epoch);
  const ec = parseErasureCoding(context, top.ec);
  const declaredZones = parseZones(context, top.zones);
  const nodes = parseNodes(context, top.nodes, declaredZones);
  const zones = declaredZones ?? [...new Set(nodes.map((node) => node.zone))];
  const diskCount = nodes.reduce((sum, node) => sum + node.disks.length, 0);
  const width = ec.k + ec.m;
  if (width > diskCount) {
    fail(context, `ec.k + ec.m = ${width} needs at least ${width} disks, the map has ${diskCount}`);
  }
  const map: ClusterMap = { epoch, ec, zones, nodes };
  assert(map.nodes.length >= 1 && map.zones.length >= 1, "a valid map has a node and a zone");
  return deepFreeze(map);
}

/** Every disk of the map in map order, with its cluster-wide key. */
export function listDisks(map: ClusterMap): readonly ClusterDisk[] {
  const disks: ClusterDisk[] = [];
  for (const node of map.nodes) {
    for (const disk of node.disks) {
      disks.push(
        Object.freeze({ nodeId: node.id, diskId: disk.id, key: diskKey(node.id, disk.id), weight: disk.weight, zone: node.zone }),
      );
    }
  }
  return Object.freeze(disks);
}

/** Cluster-wide disk name. Ids cannot contain "/", so the key splits back unambiguously. */
export function diskKey(nodeId: string, diskId: string): string {
  return `${nodeId}/${diskId}`;
}

/** YAML maps (.yaml/.yml): parsed by the `yaml` package, then validated like JSON ones. */
function parseYamlText(context: Context, text: string): unknown {
  try {
    return parseYaml(text) as unknown;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return fail(context, `not valid YAML: ${reason}`);
  }
}

function parseMapText(context: Context, path: string, text: string): unknown {
  const extension = extname(path).toLowerCase();
  if (extension === ".yaml" || extension === ".yml") return parseYamlText(context, text);
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return fail(context, `not valid JSON: ${reason}`);
  }
}

/** Reads, parses and validates a map file (.json, .yaml or .yml). */
export async function loadClusterMap(path: string): Promise<ClusterMap> {
  const context: Context = { source: path };
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "unknown error";
    throw new TesseraError("ERR_INVALID_CLUSTER_MAP", `cluster map ${path}: cannot read the file (${code})`, { source: path }, {
      cause: error,
    });
  }
  return parseClusterMap(parseMapText(context, path, text), path);
}
