/**
 * The data directory of `tessera local` (default ./data), kept across restarts:
 *
 *   cluster.json     the cluster map, written on the first run (6 nodes, 4+2, 1 MiB stripes)
 *   cluster.secret   the cluster secret, 32 random bytes as hex, mode 0600, written on the first run
 *   n1/d0 ... n6/d0  each node's disk directory (node id / disk id from the map)
 *   logs/            one log file per process (n1.log ... gateway.log); the previous run's as *.log.1
 *
 * Ports: the gateway listens on the gateway port P (9000 unless TESSERA_PORT), and the i-th
 * node of the map on P + NODE_PORT_OFFSET + i (9101..9106). The map's node URLs follow: when
 * P changes, the URLs are rewritten and the map's epoch raised (placement depends on node and
 * disk ids, never on URLs, so no data moves). A map edited by hand (other k/m, more nodes or
 * disks) is kept as it is, apart from those URLs.
 */
import { randomBytes } from "node:crypto";
import { mkdir, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isTesseraError } from "../core/errors.js";
import { BLOCK_BYTES_DEFAULT, EC_K_DEFAULT, EC_M_DEFAULT } from "../core/limits.js";
import { SECRET_BYTES_MIN } from "../core/internal-auth.js";
import { PORT_MAX, UsageError, errnoOf, loadClusterSecret } from "../core/settings.js";
import { loadClusterMap, parseClusterMap, type ClusterMap } from "../placement/cluster-map.js";

/** Node i (1-based, map order) listens on the gateway port + this + i: 9000 -> 9101, 9102, ... */
export const NODE_PORT_OFFSET = 100;
/** Storage nodes in a fresh local map: k + m, one shard per node. */
export const LOCAL_NODES_DEFAULT = EC_K_DEFAULT + EC_M_DEFAULT;
/** Each local node is a Node.js process of ~100 MB; more than this is not a laptop cluster. */
export const LOCAL_NODES_MAX = 32;
/** Random bytes in a generated cluster secret: 256 bits. */
const GENERATED_SECRET_BYTES = SECRET_BYTES_MIN;
const LOGS_DIR = "logs";
/** Group/other permission bits: a readable secret file lets any local user sign internal requests. */
const MODE_GROUP_OTHER = 0o077;

export interface LocalLayout {
  readonly dataDir: string;
  readonly mapFile: string;
  readonly secretFile: string;
  readonly logsDir: string;
}

export function localLayout(dataDir: string): LocalLayout {
  return { dataDir, mapFile: join(dataDir, "cluster.json"), secretFile: join(dataDir, "cluster.secret"), logsDir: join(dataDir, LOGS_DIR) };
}

export function diskDirectory(layout: LocalLayout, nodeId: string, diskId: string): string {
  return join(layout.dataDir, nodeId, diskId);
}

export function nodePort(gatewayPort: number, nodeIndex: number): number {
  return gatewayPort + NODE_PORT_OFFSET + nodeIndex + 1;
}

export async function makeDirectories(layout: LocalLayout): Promise<void> {
  try {
    await mkdir(layout.logsDir, { recursive: true });
  } catch (error) {
    throw new UsageError(`data directory ${layout.dataDir}: cannot create it (${errnoOf(error)})`);
  }
}

/** Creates the secret file on the first run; checks it on every run. Returns warnings to print. */
export async function prepareSecret(layout: LocalLayout): Promise<{ created: boolean; warnings: string[] }> {
  let created = false;
  try {
    // "wx": never overwrite a secret another process just wrote.
    await writeFile(layout.secretFile, `${randomBytes(GENERATED_SECRET_BYTES).toString("hex")}\n`, { mode: 0o600, flag: "wx" });
    created = true;
  } catch (error) {
    if (errnoOf(error) !== "EEXIST") throw new UsageError(`${layout.secretFile}: cannot write it (${errnoOf(error)})`);
  }
  await loadClusterSecret({ value: layout.secretFile, from: "the local cluster secret" });
  const warnings: string[] = [];
  if (((await stat(layout.secretFile)).mode & MODE_GROUP_OTHER) !== 0) {
    warnings.push(`${layout.secretFile} is readable by other users; run: chmod 600 ${layout.secretFile}`);
  }
  return { created, warnings };
}

/** A fresh local map: LOCAL_NODES_DEFAULT nodes with one disk each, on the ports of `gatewayPort`. */
export function defaultMap(gatewayPort: number): ClusterMap {
  const nodes = Array.from({ length: LOCAL_NODES_DEFAULT }, (_, index) => ({
    id: `n${index + 1}`,
    url: `http://127.0.0.1:${nodePort(gatewayPort, index)}`,
    zone: "local",
    disks: [{ id: "d0", weight: 1 }],
  }));
  return parseClusterMap({ epoch: 1, ec: { k: EC_K_DEFAULT, m: EC_M_DEFAULT, blockSize: BLOCK_BYTES_DEFAULT }, nodes }, "the default local map");
}

export interface PreparedMap {
  readonly map: ClusterMap;
  readonly created: boolean;
  /** The node URLs were rewritten for a new gateway port. */
  readonly moved: boolean;
}

/** Writes the default map on the first run; afterwards loads it and moves its URLs to `gatewayPort`'s. */
export async function prepareMap(layout: LocalLayout, gatewayPort: number): Promise<PreparedMap> {
  const existing = await loadExistingMap(layout.mapFile);
  if (existing === undefined) {
    checkPortRange(gatewayPort, LOCAL_NODES_DEFAULT);
    const map = defaultMap(gatewayPort);
    await writeMap(layout.mapFile, map);
    return { map, created: true, moved: false };
  }
  checkLocalMap(existing, layout, gatewayPort);
  const urls = existing.nodes.map((_, index) => `http://127.0.0.1:${nodePort(gatewayPort, index)}`);
  if (existing.nodes.every((node, index) => node.url === urls[index])) return { map: existing, created: false, moved: false };
  const moved = parseClusterMap(
    { ...existing, epoch: existing.epoch + 1, nodes: existing.nodes.map((node, index) => ({ ...node, url: urls[index] })) },
    layout.mapFile,
  );
  await writeMap(layout.mapFile, moved);
  return { map: moved, created: false, moved: true };
}

async function loadExistingMap(mapFile: string): Promise<ClusterMap | undefined> {
  try {
    return await loadClusterMap(mapFile);
  } catch (error) {
    if (isTesseraError(error, "ERR_INVALID_CLUSTER_MAP") && errnoOf(error.cause) === "ENOENT") return undefined;
    if (isTesseraError(error, "ERR_INVALID_CLUSTER_MAP")) {
      throw new UsageError(`${error.message}\n(fix it, or move it away to have a fresh default map written; existing objects are found again only with the same node and disk ids)`);
    }
    throw error;
  }
}

function checkLocalMap(map: ClusterMap, layout: LocalLayout, gatewayPort: number): void {
  if (map.nodes.length > LOCAL_NODES_MAX) throw new UsageError(`${layout.mapFile}: ${map.nodes.length} nodes; tessera local runs at most ${LOCAL_NODES_MAX}`);
  const reserved = map.nodes.find((node) => node.id === LOGS_DIR);
  if (reserved !== undefined) throw new UsageError(`${layout.mapFile}: node id '${LOGS_DIR}' would share the logs directory; rename the node`);
  checkPortRange(gatewayPort, map.nodes.length);
}

function checkPortRange(gatewayPort: number, nodes: number): void {
  const highest = nodePort(gatewayPort, nodes - 1);
  if (highest > PORT_MAX) throw new UsageError(`gateway port ${gatewayPort}: node ${nodes} would need port ${highest}, over ${PORT_MAX}; choose a lower TESSERA_PORT`);
}

/** Written to a temporary file and renamed, so a crash never leaves half a map. */
async function writeMap(mapFile: string, map: ClusterMap): Promise<void> {
  const temporary = `${mapFile}.tmp`;
  await writeFile(temporary, `${JSON.stringify(map, null, 2)}\n`);
  await rename(temporary, mapFile);
}

/** Renames last run's <name>.log to <name>.log.1, so the logs hold two runs at most. */
export async function rotateLog(layout: LocalLayout, name: string): Promise<string> {
  const file = join(layout.logsDir, `${name}.log`);
  try {
    await rename(file, `${file}.1`);
  } catch (error) {
    if (errnoOf(error) !== "ENOENT") throw error;
  }
  return file;
}
