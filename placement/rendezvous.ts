/**
 * Weighted rendezvous (highest-random-weight) placement: which disk holds shard i of an
 * object, computed from the cluster map alone (DESIGN.md "Placement").
 *
 * Choosing the disks. Every disk d gets a score per object, w_d / -ln(u) with u a hash of
 * (object id, disk key) in (0, 1) — equivalently an exponential "race time" -ln(u) / w_d,
 * lowest wins. A node races with its fastest disk; the minimum of exponentials is itself
 * exponential with the summed rate, so a node wins as often as its total weight says and,
 * within the node, each disk as often as its own weight says. The k+m disks are then picked
 * greedily, one at a time, minimizing (shards already on its node, shards already in its
 * zone, race time): one shard per node while nodes allow, zones balanced to within one,
 * and otherwise the fastest. Every key is per (object, disk), so adding a disk or node
 * changes the chosen set only where the newcomer wins; removing one only where it had won.
 *
 * Numbering the shards. No pure function of (map, object) can keep every surviving shard's
 * index when the set changes (two newcomers that each would take the same vacancy cannot
 * both keep it once both arrive). So a fresh placement numbers its disks by a second,
 * independent per-(object, disk) hash, and an object that already has a placement (from its
 * record) passes it as `previous`: surviving disks keep their indexes and newcomers fill
 * the vacated ones. Moves are then exactly the set difference.
 */
import { createHash } from "node:crypto";
import { EC_K_MAX, EC_M_MAX, OBJECT_ID_BYTES } from "../core/limits.js";
import { assert } from "../core/assert.js";
import { TesseraError, requireArgument } from "../core/errors.js";
import type { ClusterDisk, ClusterMap } from "./cluster-map.js";
import { listDisks } from "./cluster-map.js";

/** Shards one object can have: the codec's ceiling on k + m. */
const PLACEMENT_WIDTH_MAX = EC_K_MAX + EC_M_MAX;
/** Domain of the per-disk seeds: changing it re-places every object, so never change it. */
const DISK_SEED_DOMAIN = "tessera/placement/disk-seed/v1";
/** 2^-32: turns a 32-bit hash into a fraction. */
const UINT32_SCALE = 1 / 4294967296;

/** Shard i of the object lives on `placement[i]`. */
export type Placement = readonly ClusterDisk[];

export interface PlaceOptions {
  /**
   * The object's current placement as disk keys by shard index (from its record). Its
   * length is the object's k + m; disks that remain chosen keep their shard indexes.
   */
  readonly previous?: readonly string[];
}

export interface Placer {
  readonly map: ClusterMap;
  /** Every disk of the map, in the placer's canonical order (node id, then disk id). */
  readonly disks: readonly ClusterDisk[];
  place(objectId: Uint8Array, options?: PlaceOptions): Placement;
}

/** lowbias32 (Chris Wellons' hash-prospector): a full-avalanche 32-bit mixer, no BigInt. */
function mix32(value: number): number {
  let x = value;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Exponential race time of a disk from its hash: -ln(u) / weight, u in (0, 1), never 0. */
function raceTimeOf(hash: number, inverseWeight: number): number {
  return -Math.log((hash + 0.5) * UINT32_SCALE) * inverseWeight;
}

/** Per-disk seeds from the key alone, so a disk's hashes do not depend on map order. */
function diskSeeds(key: string): readonly [number, number, number, number] {
  const digest = createHash("sha256").update(DISK_SEED_DOMAIN).update("\0").update(key).digest();
  return [digest.readUInt32LE(0), digest.readUInt32LE(4), digest.readUInt32LE(8), digest.readUInt32LE(12)];
}

/** Disks sorted by node id then disk id: placement must not depend on the file's order. */
function canonicalDisks(map: ClusterMap): readonly ClusterDisk[] {
  const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  return [...listDisks(map)].sort((a, b) => compare(a.nodeId, b.nodeId) || compare(a.diskId, b.diskId));
}

/**
 * The exponential race time of one disk for one object: lowest wins. Exposed so tests can
 * check the placer's fast paths against a plain reference, and for operators' tooling.
 */
export function diskRaceTime(objectId: Uint8Array, disk: ClusterDisk): number {
  requireArgument(objectId.length === OBJECT_ID_BYTES, "objectId", `must be ${OBJECT_ID_BYTES} bytes, got ${objectId.length}`);
  const [seedLow, seedHigh] = diskSeeds(disk.key);
  const words = objectWords(objectId);
  return raceTimeOf(raceHash(words[0], words[1], seedLow, seedHigh), 1 / disk.weight);
}

/** Two mixing rounds, each keyed by the disk, over 64 bits of the (uniform) object id. */
function raceHash(word0: number, word1: number, seedLow: number, seedHigh: number): number {
  return mix32(mix32(word0 ^ seedLow) ^ word1 ^ seedHigh);
}

function objectWords(objectId: Uint8Array): readonly [number, number, number, number] {
  const view = new DataView(objectId.buffer, objectId.byteOffset, objectId.byteLength);
  return [view.getUint32(0, true), view.getUint32(4, true), view.getUint32(8, true), view.getUint32(12, true)];
}

/** Per-map constants, computed once: seeds, weights, and where each node's disks are. */
interface Layout {
  readonly raceSeedLow: Uint32Array;
  readonly raceSeedHigh: Uint32Array;
  readonly orderSeedLow: Uint32Array;
  readonly orderSeedHigh: Uint32Array;
  readonly inverseWeight: Float64Array;
  /** Node n owns disks [nodeFirstDisk[n], nodeFirstDisk[n + 1]). */
  readonly nodeFirstDisk: Int32Array;
  /** The node of each disk (an index into nodeFirstDisk). */
  readonly diskNode: Int32Array;
  readonly nodeZone: Int32Array;
  /** 1 where all of a node's disks share one weight: its race needs one logarithm. */
  readonly nodeUniformWeight: Uint8Array;
  /** Every disk of the map shares one weight: the race needs no logarithm at all. */
  readonly uniformWeight: boolean;
  readonly indexByKey: ReadonlyMap<string, number>;
}

function buildLayout(map: ClusterMap, disks: readonly ClusterDisk[]): Layout {
  const seeds = disks.map((disk) => diskSeeds(disk.key));
  const nodeFirstDisk: number[] = [];
  const nodeZone: number[] = [];
  disks.forEach((disk, index) => {
    if (index === 0 || disks[index - 1]?.nodeId !== disk.nodeId) {
      nodeFirstDisk.push(index);
      nodeZone.push(map.zones.indexOf(disk.zone));
    }
  });
  nodeFirstDisk.push(disks.length);
  assert(nodeZone.every((zone) => zone >= 0), "every node's zone is in map.zones");
  assert(nodeFirstDisk.length === map.nodes.length + 1, "canonical order keeps each node's disks together");
  const uniform = nodeZone.map((_zone, node) => {
    const own = disks.slice(nodeFirstDisk[node], nodeFirstDisk[node + 1]);
    return own.every((disk) => disk.weight === own[0]?.weight) ? 1 : 0;
  });
  return {
    raceSeedLow: Uint32Array.from(seeds, (seed) => seed[0]),
    raceSeedHigh: Uint32Array.from(seeds, (seed) => seed[1]),
    orderSeedLow: Uint32Array.from(seeds, (seed) => seed[2]),
    orderSeedHigh: Uint32Array.from(seeds, (seed) => seed[3]),
    inverseWeight: Float64Array.from(disks, (disk) => 1 / disk.weight),
    nodeFirstDisk: Int32Array.from(nodeFirstDisk),
    diskNode: Int32Array.from(disks, (_disk, index) => nodeFirstDisk.findLastIndex((first) => first <= index)),
    nodeZone: Int32Array.from(nodeZone),
    nodeUniformWeight: Uint8Array.from(uniform),
    uniformWeight: disks.every((disk) => disk.weight === disks[0]?.weight),
    indexByKey: new Map(disks.map((disk, index) => [disk.key, index])),
  };
}

class RendezvousPlacer implements Placer {
  readonly map: ClusterMap;
  readonly disks: readonly ClusterDisk[];
  readonly #layout: Layout;
  readonly #zoneCount: number;
  // Scratch for one place() call; place() is synchronous, so one set per placer suffices.
  readonly #nodeBestDisk: Int32Array;
  readonly #nodeTime: Float64Array;
  /** Per zone, up to PLACEMENT_WIDTH_MAX fastest nodes, fastest first (spread case). */
  readonly #zoneLeaders: Int32Array;
  readonly #zoneLeaderCount: Int32Array;
  readonly #zoneUsed: Int32Array;

  constructor(map: ClusterMap) {
    this.map = map;
    this.disks = Object.freeze(canonicalDisks(map));
    this.#layout = buildLayout(map, this.disks);
    this.#zoneCount = map.zones.length;
    this.#nodeBestDisk = new Int32Array(map.nodes.length);
    this.#nodeTime = new Float64Array(map.nodes.length);
    this.#zoneLeaders = new Int32Array(this.#zoneCount * PLACEMENT_WIDTH_MAX);
    this.#zoneLeaderCount = new Int32Array(this.#zoneCount);
    this.#zoneUsed = new Int32Array(this.#zoneCount);
  }

  place(objectId: Uint8Array, options: PlaceOptions = {}): Placement {
    requireArgument(objectId.length === OBJECT_ID_BYTES, "objectId", `must be ${OBJECT_ID_BYTES} bytes, got ${objectId.length}`);
    const previous = options.previous;
    const width = previous === undefined ? this.map.ec.k + this.map.ec.m : previous.length;
    requireArgument(width >= 1 && width <= PLACEMENT_WIDTH_MAX, "previous", `must hold 1 to ${PLACEMENT_WIDTH_MAX} disk keys`);
    if (width > this.disks.length) {
      throw new TesseraError(
        "ERR_INVALID_CLUSTER_MAP",
        `cluster map epoch ${this.map.epoch} has ${this.disks.length} disks, too few for an object of ${width} shards`,
        { epoch: this.map.epoch, width },
      );
    }
    const words = objectWords(objectId);
    const chosen =
      this.map.nodes.length >= width ? this.#chooseSpread(width, words[0], words[1]) : this.#chooseCrowded(width, words[0], words[1]);
    assert(chosen.length === width && new Set(chosen).size === width, "k + m distinct disks");
    const ordered = this.#numberShards(chosen, words[2], words[3]);
    const indexes = previous === undefined ? ordered : this.#keepPrevious(ordered, previous);
    return indexes.map((index) => this.#disk(index));
  }

  #disk(index: number): ClusterDisk {
    const disk = this.disks[index];
    assert(disk !== undefined, "disk index within the map");
    return disk;
  }

  /**
   * At least `width` nodes: one shard per node, so each node offers only its fastest disk.
   * Zones take turns, least-used zone first, each handing out its nodes fastest first, so
   * only each zone's `width` fastest nodes can matter: they are kept in small sorted lists
   * during one pass over the nodes, and the turns run over those lists alone.
   */
  #chooseSpread(width: number, word0: number, word1: number): number[] {
    const { nodeZone } = this.#layout;
    const nodeTime = this.#nodeTime;
    const leaders = this.#zoneLeaders;
    const leaderCount = this.#zoneLeaderCount;
    leaderCount.fill(0);
    for (let node = 0; node < nodeTime.length; node++) {
      const zone = nodeZone[node] ?? 0;
      const base = zone * PLACEMENT_WIDTH_MAX;
      let count = leaderCount[zone] ?? 0;
      // A node slower than the zone's slowest leader can never be picked.
      const threshold = count === width ? (nodeTime[leaders[base + count - 1] ?? 0] ?? 0) : Infinity;
      const time = this.#raceNode(node, word0, word1, threshold);
      // Strict comparisons keep the lower node index first on a tie: placement stays a
      // function of the map's content, whatever the order of its nodes in the file.
      if (time >= threshold) continue;
      if (count < width) count += 1;
      let slot = count - 1;
      while (slot > 0 && time < (nodeTime[leaders[base + slot - 1] ?? 0] ?? 0)) {
        leaders[base + slot] = leaders[base + slot - 1] ?? 0;
        slot -= 1;
      }
      leaders[base + slot] = node;
      leaderCount[zone] = count;
    }
    return this.#takeTurns(width);
  }

  /**
   * The node's fastest disk (into #nodeBestDisk) and its race time (into #nodeTime, and
   * returned), or Infinity when it cannot beat `threshold`. This is the hot loop, one hash
   * per disk, so it avoids the logarithm wherever order alone decides:
   * - where every disk of the map shares one weight, the key is -hash, which orders disks
   *   exactly as the race time does (-ln is strictly monotone, far coarser than the floats);
   * - where a node's disks share one weight, the highest hash wins inside the node and the
   *   logarithm is taken once, for the winner;
   * - otherwise -ln(u) >= 1 - u bounds each time from below, and the logarithm is taken only
   *   for disks whose bound beats both the node's best so far and `threshold`. The bound's
   *   slack, (1 - u)^2 / 2, is far above float rounding, so pruning never changes a result.
   */
  #raceNode(node: number, word0: number, word1: number, threshold: number): number {
    const { raceSeedLow, raceSeedHigh, inverseWeight, nodeFirstDisk, nodeUniformWeight, uniformWeight } = this.#layout;
    const start = nodeFirstDisk[node] ?? 0;
    const end = nodeFirstDisk[node + 1] ?? 0;
    let bestDisk = -1;
    let bestTime = Infinity;
    if (nodeUniformWeight[node] === 1) {
      let bestHash = -1;
      for (let disk = start; disk < end; disk++) {
        const hash = raceHash(word0, word1, raceSeedLow[disk] ?? 0, raceSeedHigh[disk] ?? 0);
        if (hash > bestHash) {
          bestHash = hash;
          bestDisk = disk;
        }
      }
      const inverse = inverseWeight[start] ?? 0;
      if (uniformWeight) bestTime = -bestHash;
      else if ((1 - (bestHash + 0.5) * UINT32_SCALE) * inverse < threshold) bestTime = raceTimeOf(bestHash, inverse);
    } else {
      for (let disk = start; disk < end; disk++) {
        const hash = raceHash(word0, word1, raceSeedLow[disk] ?? 0, raceSeedHigh[disk] ?? 0);
        const inverse = inverseWeight[disk] ?? 0;
        if ((1 - (hash + 0.5) * UINT32_SCALE) * inverse >= Math.min(bestTime, threshold)) continue;
        const time = raceTimeOf(hash, inverse);
        if (time < bestTime) {
          bestTime = time;
          bestDisk = disk;
        }
      }
    }
    this.#nodeBestDisk[node] = bestDisk;
    this.#nodeTime[node] = bestTime;
    return bestTime;
  }

  /** Zones in turn by (shards given, next leader's race time, node index). */
  #takeTurns(width: number): number[] {
    const leaders = this.#zoneLeaders;
    const leaderCount = this.#zoneLeaderCount;
    const nodeTime = this.#nodeTime;
    const zoneUsed = this.#zoneUsed;
    zoneUsed.fill(0);
    const chosen: number[] = [];
    while (chosen.length < width) {
      let bestZone = -1;
      let bestNode = -1;
      for (let zone = 0; zone < this.#zoneCount; zone++) {
        const used = zoneUsed[zone] ?? 0;
        if (used >= (leaderCount[zone] ?? 0)) continue;
        const node = leaders[zone * PLACEMENT_WIDTH_MAX + used] ?? 0;
        if (bestZone < 0 || isBetter(used, nodeTime[node] ?? 0, node, zoneUsed[bestZone] ?? 0, nodeTime[bestNode] ?? 0, bestNode)) {
          bestZone = zone;
          bestNode = node;
        }
      }
      assert(bestZone >= 0, "at least `width` nodes offer a disk");
      zoneUsed[bestZone] = (zoneUsed[bestZone] ?? 0) + 1;
      chosen.push(this.#nodeBestDisk[bestNode] ?? 0);
    }
    return chosen;
  }

  /**
   * Fewer nodes than `width` (so fewer than PLACEMENT_WIDTH_MAX): nodes must hold several
   * shards each. The general greedy over every disk: pick the disk minimizing (shards on
   * its node, shards in its zone, race time, disk index). Small by construction.
   */
  #chooseCrowded(width: number, word0: number, word1: number): number[] {
    const { raceSeedLow, raceSeedHigh, inverseWeight, nodeZone, diskNode } = this.#layout;
    const times = this.disks.map((_disk, index) =>
      raceTimeOf(raceHash(word0, word1, raceSeedLow[index] ?? 0, raceSeedHigh[index] ?? 0), inverseWeight[index] ?? 0),
    );
    const nodeUsed = new Array<number>(this.map.nodes.length).fill(0);
    const zoneUsed = new Array<number>(this.#zoneCount).fill(0);
    const taken = new Set<number>();
    const chosen: number[] = [];
    while (chosen.length < width) {
      let best: { disk: number; nodeUsed: number; zoneUsed: number } | undefined;
      times.forEach((time, disk) => {
        if (taken.has(disk)) return;
        const node = diskNode[disk] ?? 0;
        const candidate = { disk, nodeUsed: nodeUsed[node] ?? 0, zoneUsed: zoneUsed[nodeZone[node] ?? 0] ?? 0 };
        const better =
          best === undefined ||
          candidate.nodeUsed < best.nodeUsed ||
          (candidate.nodeUsed === best.nodeUsed && isBetter(candidate.zoneUsed, time, disk, best.zoneUsed, times[best.disk] ?? 0, best.disk));
        if (better) best = candidate;
      });
      assert(best !== undefined, "the map has at least `width` disks");
      const node = diskNode[best.disk] ?? 0;
      taken.add(best.disk);
      chosen.push(best.disk);
      nodeUsed[node] = (nodeUsed[node] ?? 0) + 1;
      zoneUsed[nodeZone[node] ?? 0] = (zoneUsed[nodeZone[node] ?? 0] ?? 0) + 1;
    }
    return chosen;
  }

  /**
   * Shard numbers for a fresh placement: the chosen disks sorted by a second hash,
   * independent of the race, so data shards (read on every GET) are not biased toward
   * heavy disks beyond their weight.
   */
  #numberShards(chosen: readonly number[], word2: number, word3: number): number[] {
    const { orderSeedLow, orderSeedHigh } = this.#layout;
    const order = chosen.map((disk) => ({ disk, hash: raceHash(word2, word3, orderSeedLow[disk] ?? 0, orderSeedHigh[disk] ?? 0) }));
    order.sort((a, b) => a.hash - b.hash || a.disk - b.disk);
    return order.map((entry) => entry.disk);
  }

  /** Disks of `previous` that are still chosen keep their index; newcomers fill the rest. */
  #keepPrevious(ordered: readonly number[], previous: readonly string[]): number[] {
    return keepPreviousIndexes(ordered, previous.map((key) => this.#layout.indexByKey.get(key)));
  }
}

/**
 * `ordered` (the disks chosen, in shard order) renumbered so that each disk also in `previous`
 * keeps its index there; the vacated indexes go to the other chosen disks, in their order. A
 * disk listed twice in `previous` (a corrupt record) keeps only its first index; an entry not
 * chosen (or undefined: unknown to the map) is vacated. Both have the same length.
 */
export function keepPreviousIndexes<T>(ordered: readonly T[], previous: readonly (T | undefined)[]): T[] {
  const chosen = new Set(ordered);
  const kept = new Set<T>();
  const slots = previous.map((item) => {
    if (item === undefined || !chosen.has(item) || kept.has(item)) return undefined;
    kept.add(item);
    return item;
  });
  const newcomers = ordered.filter((item) => !kept.has(item));
  const result = slots.map((item) => item ?? newcomers.shift());
  assert(newcomers.length === 0 && result.every((item) => item !== undefined), "every vacated index gets exactly one newcomer");
  return result as T[];
}

/** Lexicographic (used, time, index), lower first: the greedy's order, ties included. */
function isBetter(used: number, time: number, index: number, bestUsed: number, bestTime: number, bestIndex: number): boolean {
  if (used !== bestUsed) return used < bestUsed;
  if (time !== bestTime) return time < bestTime;
  return index < bestIndex;
}

/** Precomputes per-map state; reuse the placer for every object under this map. */
export function createPlacer(map: ClusterMap): Placer {
  return new RendezvousPlacer(map);
}

/** Maps are frozen, so one placer per map object can be cached safely. */
const placerCache = new WeakMap<ClusterMap, Placer>();

export function placerFor(map: ClusterMap): Placer {
  let placer = placerCache.get(map);
  if (placer === undefined) {
    placer = createPlacer(map);
    placerCache.set(map, placer);
  }
  return placer;
}

/** Shard i of `objectId` lives on `placeObject(map, objectId)[i]`. */
export function placeObject(map: ClusterMap, objectId: Uint8Array, options?: PlaceOptions): Placement {
  return placerFor(map).place(objectId, options);
}

/** The disk keys of a placement, by shard index: what an object's record stores. */
export function placementKeys(placement: Placement): string[] {
  return placement.map((disk) => disk.key);
}
