import { stringify as yamlStringify } from "yaml";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isTesseraError } from "../../core/errors.js";
import { BLOCK_BYTES_DEFAULT } from "../../core/limits.js";
import { listDisks, loadClusterMap, parseClusterMap } from "../../placement/cluster-map.js";

const SOURCE = "./map.json";

/** A valid map with 6 nodes over 3 zones; each case below breaks exactly one thing. */
function validRaw(): Record<string, unknown> & { nodes: Record<string, unknown>[] } {
  return {
    epoch: 7,
    ec: { k: 4, m: 2, blockSize: 1048576 },
    zones: ["zone-a", "zone-b", "zone-c"],
    nodes: Array.from({ length: 6 }, (_unused, node) => ({
      id: `n${node}`,
      url: `http://10.0.0.${node + 1}:9100`,
      zone: ["zone-a", "zone-b", "zone-c"][node % 3],
      disks: [{ id: "d0", weight: 1 }, { id: "d1" }],
    })),
  };
}

type Raw = ReturnType<typeof validRaw>;

function node(raw: Raw, index: number): Record<string, unknown> & { disks: Record<string, unknown>[] } {
  const found = raw.nodes[index];
  if (found === undefined) throw new Error(`no node ${index}`);
  return found as Record<string, unknown> & { disks: Record<string, unknown>[] };
}

function problem(raw: unknown): string {
  try {
    parseClusterMap(raw, SOURCE);
  } catch (error) {
    if (isTesseraError(error, "ERR_INVALID_CLUSTER_MAP")) return error.message;
    throw error;
  }
  throw new Error("the map was accepted");
}

const BAD_MAPS: [name: string, breakIt: (raw: Raw) => unknown, message: string][] = [
  ["not an object", () => [], "the map must be an object, got an array"],
  ["null", () => null, "the map must be an object, got null"],
  ["unknown top-level field", (raw) => ({ ...raw, epcoh: 1 }), 'the map has unknown field "epcoh" (allowed: epoch, ec, zones, nodes)'],
  ["missing epoch", (raw) => ({ ...raw, epoch: undefined }), "epoch is required"],
  ["epoch 0", (raw) => ({ ...raw, epoch: 0 }), "epoch must be an integer >= 1, got 0"],
  ["fractional epoch", (raw) => ({ ...raw, epoch: 1.5 }), "epoch must be an integer >= 1, got 1.5"],
  ["epoch as a string", (raw) => ({ ...raw, epoch: "3" }), 'epoch must be an integer >= 1, got "3"'],
  ["ec not an object", (raw) => ({ ...raw, ec: 6 }), "ec must be an object, got 6"],
  ["unknown ec field", (raw) => ({ ...raw, ec: { k: 4, m: 2, blocksize: 65536 } }), 'ec has unknown field "blocksize" (allowed: k, m, blockSize)'],
  ["k = 0", (raw) => ({ ...raw, ec: { k: 0 } }), "ec.k must be an integer from 1 to 24, got 0"],
  ["k too large", (raw) => ({ ...raw, ec: { k: 25 } }), "ec.k must be an integer from 1 to 24, got 25"],
  ["m = 0", (raw) => ({ ...raw, ec: { m: 0 } }), "ec.m must be an integer from 1 to 6, got 0"],
  ["m too large", (raw) => ({ ...raw, ec: { m: 7 } }), "ec.m must be an integer from 1 to 6, got 7"],
  ["k as a string", (raw) => ({ ...raw, ec: { k: "4" } }), 'ec.k must be an integer from 1 to 24, got "4"'],
  ["blockSize too small", (raw) => ({ ...raw, ec: { blockSize: 1024 } }), "ec.blockSize must be an integer from 65536 to 16777216, got 1024"],
  ["blockSize too large", (raw) => ({ ...raw, ec: { blockSize: 33554432 } }), "ec.blockSize must be an integer from 65536 to 16777216, got 33554432"],
  ["blockSize not aligned to k", (raw) => ({ ...raw, ec: { k: 3, blockSize: 65540 } }), "ec.blockSize must be a multiple of k * 8 = 24, got 65540"],
  ["k + m beyond the disks", (raw) => ({ ...raw, ec: { k: 8, m: 5 } }), "ec.k + ec.m = 13 needs at least 13 disks, the map has 12"],
  ["zones not an array", (raw) => ({ ...raw, zones: "zone-a" }), 'zones must be an array, got "zone-a"'],
  ["zones empty", (raw) => ({ ...raw, zones: [] }), "zones must not be empty"],
  ["duplicate zone", (raw) => ({ ...raw, zones: ["zone-a", "zone-b", "zone-c", "zone-a"] }), 'zones[3] "zone-a" duplicates zones[0]'],
  ["bad zone name", (raw) => ({ ...raw, zones: ["zone a"] }), 'zones[0] must match /^[a-z0-9][a-z0-9_-]{0,62}$/i, got "zone a"'],
  ["zone not a string", (raw) => (node(raw, 1).zone = 2, raw), "nodes[1].zone must be a string, got 2"],
  [
    "undeclared zone",
    (raw) => (node(raw, 4).zone = "zone-d", raw),
    'nodes[4].zone "zone-d" is not declared in zones (zone-a, zone-b, zone-c)',
  ],
  [
    "zone omitted while zones are declared",
    (raw) => (delete node(raw, 2).zone, raw),
    "nodes[2].zone is required when zones are declared",
  ],
  ["missing nodes", (raw) => ({ ...raw, nodes: undefined }), "nodes is required"],
  ["nodes not an array", (raw) => ({ ...raw, nodes: {} }), "nodes must be an array, got an object"],
  ["no nodes", (raw) => ({ ...raw, nodes: [] }), "nodes must not be empty"],
  ["node not an object", (raw) => (raw.nodes[1] = "n1" as never, raw), 'nodes[1] must be an object, got "n1"'],
  ["unknown node field", (raw) => (node(raw, 2).weight = 2, raw), 'nodes[2] has unknown field "weight" (allowed: id, url, zone, disks)'],
  ["missing node id", (raw) => (delete node(raw, 0).id, raw), "nodes[0].id is required"],
  ["node id a number", (raw) => (node(raw, 0).id = 5, raw), "nodes[0].id must be a string, got 5"],
  ["node id with a slash", (raw) => (node(raw, 3).id = "rack/1", raw), 'nodes[3].id must match /^[a-z0-9][a-z0-9_-]{0,62}$/i, got "rack/1"'],
  ["node id too long", (raw) => (node(raw, 3).id = "n".repeat(64), raw), `nodes[3].id must match /^[a-z0-9][a-z0-9_-]{0,62}$/i, got "${"n".repeat(64)}"`],
  ["node id starting with a dash", (raw) => (node(raw, 3).id = "-n", raw), 'nodes[3].id must match /^[a-z0-9][a-z0-9_-]{0,62}$/i, got "-n"'],
  ["duplicate node id", (raw) => (node(raw, 4).id = "n1", raw), 'nodes[4].id "n1" duplicates nodes[1].id'],
  ["missing url", (raw) => (delete node(raw, 1).url, raw), "nodes[1].url is required"],
  ["url not a string", (raw) => (node(raw, 1).url = 9100, raw), "nodes[1].url must be a string, got 9100"],
  ["unparsable url", (raw) => (node(raw, 1).url = "10.0.0.2:9100", raw), 'nodes[1].url must be an http: or https: URL with a host and no path, got "10.0.0.2:9100"'],
  ["ftp url", (raw) => (node(raw, 1).url = "ftp://10.0.0.2", raw), 'nodes[1].url must be an http: or https: URL with a host and no path, got "ftp://10.0.0.2"'],
  ["url with a path", (raw) => (node(raw, 1).url = "http://10.0.0.2:9100/api", raw), 'nodes[1].url must be an http: or https: URL with a host and no path, got "http://10.0.0.2:9100/api"'],
  ["url with a query", (raw) => (node(raw, 1).url = "http://10.0.0.2:9100/?x=1", raw), 'nodes[1].url must be an http: or https: URL with a host and no path, got "http://10.0.0.2:9100/?x=1"'],
  ["url with credentials", (raw) => (node(raw, 1).url = "http://admin:secret@10.0.0.2", raw), 'nodes[1].url must be an http: or https: URL with a host and no path, got "http://admin:secret@10.0.0.2"'],
  ["duplicate url", (raw) => (node(raw, 5).url = "http://10.0.0.1:9100/", raw), 'nodes[5].url "http://10.0.0.1:9100" duplicates nodes[0].url'],
  ["duplicate url by default port", (raw) => ((node(raw, 0).url = "http://h:80"), (node(raw, 3).url = "http://h"), raw), 'nodes[3].url "http://h" duplicates nodes[0].url'],
  ["missing disks", (raw) => (Reflect.deleteProperty(node(raw, 2), "disks"), raw), "nodes[2].disks is required"],
  ["no disks", (raw) => (node(raw, 2).disks = [], raw), "nodes[2].disks must not be empty"],
  ["too many disks", (raw) => (node(raw, 2).disks = Array.from({ length: 257 }, (_u, d) => ({ id: `d${d}` })), raw), "nodes[2].disks has 257 entries, more than NODE_DISKS_MAX (256)"],
  ["disk not an object", (raw) => (node(raw, 2).disks[1] = "d1" as never, raw), 'nodes[2].disks[1] must be an object, got "d1"'],
  ["unknown disk field (typo)", (raw) => (node(raw, 2).disks[1] = { id: "d1", wieght: 2 }, raw), 'nodes[2].disks[1] has unknown field "wieght" (allowed: id, weight)'],
  ["missing disk id", (raw) => (node(raw, 2).disks[1] = { weight: 2 }, raw), "nodes[2].disks[1].id is required"],
  ["bad disk id", (raw) => (node(raw, 2).disks[1] = { id: "sd.b" }, raw), 'nodes[2].disks[1].id must match /^[a-z0-9][a-z0-9_-]{0,62}$/i, got "sd.b"'],
  ["duplicate disk id", (raw) => (node(raw, 2).disks[1] = { id: "d0" }, raw), 'nodes[2].disks[1].id "d0" duplicates nodes[2].disks[0].id'],
  ["zero weight", (raw) => (node(raw, 3).disks[1] = { id: "d1", weight: 0 }, raw), "nodes[3].disks[1].weight must be a positive number, got 0"],
  ["negative weight", (raw) => (node(raw, 3).disks[1] = { id: "d1", weight: -1 }, raw), "nodes[3].disks[1].weight must be a positive number, got -1"],
  ["NaN weight", (raw) => (node(raw, 3).disks[1] = { id: "d1", weight: Number.NaN }, raw), "nodes[3].disks[1].weight must be a positive number, got NaN"],
  ["string weight", (raw) => (node(raw, 3).disks[1] = { id: "d1", weight: "2" }, raw), 'nodes[3].disks[1].weight must be a positive number, got "2"'],
  ["infinite weight", (raw) => (node(raw, 3).disks[1] = { id: "d1", weight: Infinity }, raw), "nodes[3].disks[1].weight must be at most DISK_WEIGHT_MAX (1000000), got Infinity"],
  ["absurd weight", (raw) => (node(raw, 3).disks[1] = { id: "d1", weight: 2e6 }, raw), "nodes[3].disks[1].weight must be at most DISK_WEIGHT_MAX (1000000), got 2000000"],
];

describe("parseClusterMap refuses bad maps with an exact message", () => {
  it.each(BAD_MAPS)("%s", (_name, breakIt, message) => {
    expect(problem(breakIt(validRaw()))).toBe(`cluster map ${SOURCE}: ${message}`);
  });

  it("refuses more nodes than CLUSTER_NODES_MAX", () => {
    const raw = validRaw();
    raw.nodes = Array.from({ length: 1025 }, (_unused, index) => ({ id: `n${index}`, url: `http://h${index}`, disks: [{ id: "d" }] }));
    delete raw.zones;
    expect(problem(raw)).toBe(`cluster map ${SOURCE}: nodes has 1025 entries, more than CLUSTER_NODES_MAX (1024)`);
  });

  it("gives every refusal the code ERR_INVALID_CLUSTER_MAP and the source in its details", () => {
    expect(() => parseClusterMap({ epoch: 0 }, SOURCE)).toThrow(
      expect.objectContaining({ code: "ERR_INVALID_CLUSTER_MAP", details: { source: SOURCE } }),
    );
  });
});

describe("parseClusterMap normalizes good maps", () => {
  it("fills in ec, zone and weight defaults and derives zones when none are declared", () => {
    const map = parseClusterMap(
      { epoch: 1, nodes: [{ id: "a", url: "https://a.example:8443/", disks: [{ id: "d0" }, { id: "d1" }, { id: "d2" }] }, { id: "b", url: "http://b", zone: "rack-2", disks: [{ id: "d0", weight: 2.5 }, { id: "d1" }, { id: "d2" }] }] },
      SOURCE,
    );
    expect(map).toEqual({
      epoch: 1,
      ec: { k: 4, m: 2, blockSize: BLOCK_BYTES_DEFAULT },
      zones: ["default", "rack-2"],
      nodes: [
        { id: "a", url: "https://a.example:8443", zone: "default", disks: [{ id: "d0", weight: 1 }, { id: "d1", weight: 1 }, { id: "d2", weight: 1 }] },
        { id: "b", url: "http://b", zone: "rack-2", disks: [{ id: "d0", weight: 2.5 }, { id: "d1", weight: 1 }, { id: "d2", weight: 1 }] },
      ],
    });
  });

  it("rounds the default blockSize down to a whole number of aligned chunks", () => {
    const map = parseClusterMap({ ...validRaw(), ec: { k: 10, m: 2 } }, SOURCE);
    expect(map.ec).toEqual({ k: 10, m: 2, blockSize: 1048560 });
    expect(parseClusterMap({ ...validRaw(), ec: { k: 8 } }, SOURCE).ec).toEqual({ k: 8, m: 2, blockSize: BLOCK_BYTES_DEFAULT });
  });

  it("returns a deeply frozen map that does not alias its input", () => {
    const raw = validRaw();
    const map = parseClusterMap(raw, SOURCE);
    expect(Object.isFrozen(map) && Object.isFrozen(map.ec) && Object.isFrozen(map.zones)).toBe(true);
    expect(Object.isFrozen(map.nodes[0]?.disks[0])).toBe(true);
    node(raw, 0).id = "changed";
    expect(map.nodes[0]?.id).toBe("n0");
  });

  it("gives the same map for the same input", () => {
    expect(parseClusterMap(validRaw(), SOURCE)).toEqual(parseClusterMap(validRaw(), SOURCE));
  });

  it("lists every disk with its node, key, weight and zone", () => {
    const disks = listDisks(parseClusterMap(validRaw(), SOURCE));
    expect(disks).toHaveLength(12);
    expect(disks[0]).toEqual({ nodeId: "n0", diskId: "d0", key: "n0/d0", weight: 1, zone: "zone-a" });
    expect(disks[11]).toEqual({ nodeId: "n5", diskId: "d1", key: "n5/d1", weight: 1, zone: "zone-c" });
    expect(new Set(disks.map((disk) => disk.key)).size).toBe(12);
  });
});

describe("loadClusterMap", () => {
  let directory = "";
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), "tessera-map-"));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it("reads and validates a JSON map", async () => {
    const path = join(directory, "good.json");
    await writeFile(path, JSON.stringify(validRaw()));
    expect(await loadClusterMap(path)).toEqual(parseClusterMap(validRaw(), path));
  });

  it("names the path of a missing file", async () => {
    const path = join(directory, "missing.json");
    await expect(loadClusterMap(path)).rejects.toThrow(`cluster map ${path}: cannot read the file (ENOENT)`);
  });

  it("names the path of a file that is not JSON", async () => {
    const path = join(directory, "bad.json");
    await writeFile(path, "{ epoch: 1 ");
    await expect(loadClusterMap(path)).rejects.toThrow(new RegExp(`^cluster map ${path}: not valid JSON: `));
  });

  it("names the path of a valid JSON file that is not a valid map", async () => {
    const path = join(directory, "invalid.json");
    await writeFile(path, JSON.stringify({ ...validRaw(), epoch: -1 }));
    await expect(loadClusterMap(path)).rejects.toThrow(`cluster map ${path}: epoch must be an integer >= 1, got -1`);
  });

  it("loads a YAML map like a JSON one, and names the path of bad YAML", async () => {
    const path = join(directory, "map.yaml");
    const raw = validRaw();
    await writeFile(path, yamlStringify(raw));
    const fromYaml = await loadClusterMap(path);
    const jsonPath = join(directory, "same.json");
    await writeFile(jsonPath, JSON.stringify(raw));
    expect(fromYaml).toEqual(await loadClusterMap(jsonPath));
    const bad = join(directory, "bad.yml");
    await writeFile(bad, "epoch: [1\n");
    await expect(loadClusterMap(bad)).rejects.toThrow(new RegExp(`^cluster map ${bad}: not valid YAML: `));
  });
});
