/**
 * `tessera heal` and `tessera cluster` as a user runs them (real CLI processes) against a
 * gateway over memory nodes: status, a map edit with --reload, and the exit codes and
 * messages of bad flags and an unreachable gateway.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attachHealer, type AttachedHealer } from "../../gateway/healer/attach.js";
import { Cluster } from "../../gateway/objects/cluster.js";
import { createGateway, type Gateway } from "../../gateway/server.js";
import { parseClusterMap } from "../../placement/cluster-map.js";
import { MemoryNode } from "../../storage-node/memory-node.js";
import { runTessera } from "../cluster-harness.js";
import { FAST_HEALER } from "./memory-cluster.js";

const CREDENTIALS = { accessKeyId: "cli-test", secretAccessKey: "cli-test-secret" };
const KEYS = { TESSERA_ACCESS_KEY: CREDENTIALS.accessKeyId, TESSERA_SECRET_KEY: CREDENTIALS.secretAccessKey };

function rawMap(nodes: number, epoch: number): unknown {
  return { epoch, ec: { k: 4, m: 2, blockSize: 65536 }, nodes: Array.from({ length: nodes }, (_, index) => ({ id: `n${index + 1}`, url: `http://127.0.0.1:${24001 + index}`, disks: [{ id: "d0" }] })) };
}

describe("tessera heal / tessera cluster", () => {
  let directory: string;
  let mapFile: string;
  let gateway: Gateway;
  let attached: AttachedHealer;
  let endpoint: string;

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), "tessera-cli-"));
    mapFile = join(directory, "cluster.json");
    await writeFile(mapFile, JSON.stringify(rawMap(6, 1)));
    const map = parseClusterMap(rawMap(6, 1), mapFile);
    const cluster = new Cluster(map, new Map(map.nodes.map((node) => [node.id, new MemoryNode({ nodeId: node.id, diskIds: ["d0"] })])));
    const logger = pino({ level: "silent" });
    gateway = await createGateway({ cluster, credentials: [CREDENTIALS], region: "us-east-1", baseDomains: ["localhost"], logger });
    attached = await attachHealer({ app: gateway.app, cluster, credentials: [CREDENTIALS], settings: FAST_HEALER, logger, mapFile, connect: (node) => new MemoryNode({ nodeId: node.id, diskIds: ["d0"] }) });
    await gateway.app.listen({ host: "127.0.0.1", port: 0 });
    endpoint = `http://127.0.0.1:${(gateway.app.server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await attached?.stop();
    await gateway?.close();
    await rm(directory, { recursive: true, force: true });
  });

  it("prints the healer's status and the cluster's", async () => {
    const heal = await runTessera(["heal", "status", "--endpoint", endpoint], KEYS);
    expect(heal.stderr).toBe("");
    expect(heal.code).toBe(0);
    expect(heal.stdout).toMatch(/^Tessera healer {2}map epoch 1 {2}4\+2/);
    expect(heal.stdout).toContain("throttle: 8 objects at once, bandwidth unlimited");
    const json = await runTessera(["heal", "status", "--json", "--endpoint", endpoint], KEYS);
    expect(JSON.parse(json.stdout)).toMatchObject({ epoch: 1, ec: { k: 4, m: 2 } });
    const cluster = await runTessera(["cluster", "status", "--endpoint", endpoint], KEYS);
    expect(cluster.code).toBe(0);
    expect(cluster.stdout).toContain("cluster map epoch 1  4+2, 64 KiB stripes");
    expect(cluster.stdout).toMatch(/\nn6\s+member\s+ok/);
  });

  it("adds a node to the map file and reloads the gateway", async () => {
    const result = await runTessera(["cluster", "add-node", "--map", mapFile, "--id", "n7", "--url", "http://127.0.0.1:24007", "--disk", "d0", "--reload", "--endpoint", endpoint], KEYS);
    expect(result.stderr).toBe("");
    expect(result.stdout).toContain(`${mapFile}: add-node done, epoch 1 -> 2`);
    expect(JSON.parse(await readFile(mapFile, "utf8"))).toMatchObject({ epoch: 2 });
    expect(attached.healer.cluster.map.epoch).toBe(2);
    expect(attached.healer.cluster.map.nodes.map((node) => node.id)).toContain("n7");
  });

  it("exits 2 with the problem for bad flags, and 1 when the gateway cannot be reached", async () => {
    const unknown = await runTessera(["heal", "bogus"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("tessera: unknown command 'bogus'");
    const noMap = await runTessera(["cluster", "remove-node", "--id", "n1"]);
    expect(noMap.code).toBe(2);
    expect(noMap.stderr).toContain("--map is required");
    const badKind = await runTessera(["heal", "scan", "--kind", "everything", "--endpoint", endpoint], KEYS);
    expect(badKind.code).toBe(2);
    expect(badKind.stderr).toContain("--kind: must be scan, scrub or rebalance, got 'everything'");
    const unreachable = await runTessera(["heal", "status", "--endpoint", "http://127.0.0.1:1"]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain("cannot reach the gateway (ECONNREFUSED)");
    const refused = await runTessera(["heal", "status", "--endpoint", endpoint], { TESSERA_ACCESS_KEY: "cli-test", TESSERA_SECRET_KEY: "wrong-secret" });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("the gateway refused: SignatureDoesNotMatch");
  });
});
