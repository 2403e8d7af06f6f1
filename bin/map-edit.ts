/**
 * Edits of a cluster map file for `tessera cluster add-node | remove-node | add-disk |
 * remove-disk | set-weight`: each changes one thing, raises the epoch by one, validates the
 * result as every gateway will (placement/cluster-map.ts), and writes the file atomically in
 * its own format (JSON, or YAML for .yaml/.yml). The gateway picks it up on a reload.
 */
import { randomBytes } from "node:crypto";
import { readFile, rename, writeFile } from "node:fs/promises";
import { extname } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { isTesseraError } from "../core/errors.js";
import { UsageError } from "../core/settings.js";
import { parseClusterMap, type ClusterMap } from "../placement/cluster-map.js";

export interface RawDisk {
  id: string;
  weight?: number;
}

export interface RawNode {
  id: string;
  url: string;
  zone?: string;
  disks: RawDisk[];
}

export interface RawMap {
  epoch: number;
  ec?: unknown;
  zones?: string[];
  nodes: RawNode[];
}

export type MapEdit =
  | { readonly kind: "add-node"; readonly node: RawNode }
  | { readonly kind: "remove-node"; readonly nodeId: string }
  | { readonly kind: "add-disk"; readonly nodeId: string; readonly disk: RawDisk }
  | { readonly kind: "remove-disk"; readonly nodeId: string; readonly diskId: string }
  | { readonly kind: "set-weight"; readonly nodeId: string; readonly diskId: string; readonly weight: number };

function isYaml(path: string): boolean {
  const extension = extname(path).toLowerCase();
  return extension === ".yaml" || extension === ".yml";
}

export async function readRawMap(path: string): Promise<RawMap> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new UsageError(`--map ${path}: cannot read the file (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  const raw = (isYaml(path) ? parseYaml(text) : JSON.parse(text)) as RawMap;
  validate(raw, path);
  return raw;
}

function validate(raw: unknown, source: string): ClusterMap {
  try {
    return parseClusterMap(raw, source);
  } catch (error) {
    if (isTesseraError(error, "ERR_INVALID_CLUSTER_MAP")) throw new UsageError(error.message);
    throw error;
  }
}

function findNode(raw: RawMap, nodeId: string): RawNode {
  const node = raw.nodes.find((each) => each.id === nodeId);
  if (node === undefined) throw new UsageError(`the map has no node ${nodeId} (its nodes: ${raw.nodes.map((each) => each.id).join(", ")})`);
  return node;
}

function findDisk(node: RawNode, diskId: string): RawDisk {
  const disk = node.disks.find((each) => each.id === diskId);
  if (disk === undefined) throw new UsageError(`node ${node.id} has no disk ${diskId} (its disks: ${node.disks.map((each) => each.id).join(", ")})`);
  return disk;
}

/** A node without a zone joins the map's only declared zone; with several, --zone must say which. */
function withZone(raw: RawMap, node: RawNode): RawNode {
  if (node.zone !== undefined || raw.zones === undefined) return node;
  const [only, ...others] = raw.zones;
  if (only === undefined || others.length > 0) throw new UsageError(`--zone is required: the map declares zones ${raw.zones.join(", ")}`);
  return { ...node, zone: only };
}

/** The edited map, epoch raised by one, validated. */
export function applyEdit(raw: RawMap, edit: MapEdit, source: string): RawMap {
  const next: RawMap = structuredClone(raw);
  switch (edit.kind) {
    case "add-node":
      if (next.nodes.some((node) => node.id === edit.node.id)) throw new UsageError(`the map already has a node ${edit.node.id}`);
      next.nodes.push(withZone(next, edit.node));
      break;
    case "remove-node":
      findNode(next, edit.nodeId);
      next.nodes = next.nodes.filter((node) => node.id !== edit.nodeId);
      break;
    case "add-disk": {
      const node = findNode(next, edit.nodeId);
      if (node.disks.some((disk) => disk.id === edit.disk.id)) throw new UsageError(`node ${edit.nodeId} already has a disk ${edit.disk.id}`);
      node.disks.push(edit.disk);
      break;
    }
    case "remove-disk": {
      const node = findNode(next, edit.nodeId);
      findDisk(node, edit.diskId);
      if (node.disks.length === 1) throw new UsageError(`disk ${edit.diskId} is node ${edit.nodeId}'s last: remove the node instead (tessera cluster remove-node)`);
      node.disks = node.disks.filter((disk) => disk.id !== edit.diskId);
      break;
    }
    case "set-weight":
      findDisk(findNode(next, edit.nodeId), edit.diskId).weight = edit.weight;
      break;
  }
  next.epoch = raw.epoch + 1;
  validate(next, `${source} after ${edit.kind}`);
  return next;
}

/** Writes the map in its file's format: a temporary file renamed over it. */
export async function writeRawMap(path: string, raw: RawMap): Promise<void> {
  const text = isYaml(path) ? stringifyYaml(raw) : `${JSON.stringify(raw, null, 2)}\n`;
  const temporary = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  await writeFile(temporary, text, { mode: 0o644 });
  await rename(temporary, path);
}
