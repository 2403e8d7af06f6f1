/**
 * The admin API on a gateway over memory nodes: SigV4 with the gateway's own keys (refused
 * unsigned, with a wrong secret, with a body), status, throttle at run time, scans on request,
 * map reloads (a rising epoch only), Prometheus metrics, and S3 still served beside it.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster } from "../../gateway/objects/cluster.js";
import { AdminApiError, AdminClient } from "../../gateway/healer/admin-client.js";
import { attachHealer, type AttachedHealer } from "../../gateway/healer/attach.js";
import { createGateway, type Gateway } from "../../gateway/server.js";
import { parseClusterMap } from "../../placement/cluster-map.js";
import { MemoryNode } from "../../storage-node/memory-node.js";
import { FAST_HEALER } from "./memory-cluster.js";

const CREDENTIALS = { accessKeyId: "admin-test", secretAccessKey: "admin-test-secret" };
const REGION = "us-east-1";

function rawMap(nodes: number, epoch: number): unknown {
  return { epoch, ec: { k: 4, m: 2, blockSize: 65536 }, nodes: Array.from({ length: nodes }, (_, index) => ({ id: `n${index + 1}`, url: `http://127.0.0.1:${22001 + index}`, disks: [{ id: "d0" }] })) };
}

describe("admin API", () => {
  let directory: string;
  let mapFile: string;
  let gateway: Gateway;
  let attached: AttachedHealer;
  let endpoint: string;
  let admin: AdminClient;

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), "tessera-admin-"));
    mapFile = join(directory, "cluster.json");
    await writeFile(mapFile, JSON.stringify(rawMap(6, 1)));
    const map = parseClusterMap(rawMap(6, 1), mapFile);
    const nodes = new Map(map.nodes.map((node) => [node.id, new MemoryNode({ nodeId: node.id, diskIds: ["d0"] })]));
    const cluster = new Cluster(map, nodes);
    const logger = pino({ level: "silent" });
    gateway = await createGateway({ cluster, credentials: [CREDENTIALS], region: REGION, baseDomains: ["localhost"], logger });
    attached = await attachHealer({ app: gateway.app, cluster, credentials: [CREDENTIALS], settings: FAST_HEALER, logger, mapFile, connect: (node) => new MemoryNode({ nodeId: node.id, diskIds: ["d0"] }) });
    await gateway.app.listen({ host: "127.0.0.1", port: 0 });
    endpoint = `http://127.0.0.1:${(gateway.app.server.address() as AddressInfo).port}`;
    admin = new AdminClient({ endpoint, credentials: CREDENTIALS, region: REGION });
  });

  afterAll(async () => {
    await attached?.stop();
    await gateway?.close();
    await rm(directory, { recursive: true, force: true });
  });

  it("answers the healer's status and the cluster's to a signed request", async () => {
    const status = await admin.healStatus();
    expect(status.epoch).toBe(1);
    expect(status.ec).toEqual({ k: 4, m: 2 });
    expect(status.throttle.concurrency).toBe(FAST_HEALER.concurrency);
    const cluster = await admin.clusterStatus();
    expect(cluster.nodes.map((node) => node.id)).toEqual(["n1", "n2", "n3", "n4", "n5", "n6"]);
    expect(cluster.nodes[0]?.disks[0]).toMatchObject({ id: "d0", weight: 1, out: false });
  });

  it("refuses unsigned requests, a wrong secret, and a body", async () => {
    const unsigned = await request(`${endpoint}/_tessera/admin/heal`);
    expect(unsigned.statusCode).toBe(403);
    expect(await unsigned.body.json()).toMatchObject({ error: { code: "AccessDenied" } });
    const wrong = new AdminClient({ endpoint, credentials: { ...CREDENTIALS, secretAccessKey: "not-the-secret" }, region: REGION });
    await expect(wrong.healStatus()).rejects.toMatchObject({ status: 403, code: "SignatureDoesNotMatch" });
    const withBody = await request(`${endpoint}/_tessera/admin/heal/scan`, { method: "POST", body: "x" });
    expect(withBody.statusCode).toBe(400);
    await expect(admin.call("GET", "/_tessera/admin/nothing-here")).rejects.toMatchObject({ status: 404, code: "NoSuchAdminEndpoint" });
  });

  it("changes the throttle at run time and names a bad value", async () => {
    expect(await admin.throttle({ concurrency: 3, bandwidth: "10MiB" })).toEqual({ concurrency: 3, bandwidthBytesPerSecond: 10 * 1024 * 1024 });
    expect(attached.healer.concurrency).toBe(3);
    await expect(admin.throttle({ concurrency: 0 })).rejects.toThrow(/concurrency must be a whole number in 1\.\.256, got '0'/);
    await expect(admin.throttle({ bandwidth: "fast" })).rejects.toThrow(/bandwidth must be bytes per second/);
    await expect(admin.call("POST", "/_tessera/admin/heal/scan", { kind: "everything" })).rejects.toBeInstanceOf(AdminApiError);
    expect(await admin.requestScan("scrub")).toEqual({ requested: "scrub" });
  });

  it("reloads a map only when its epoch rises", async () => {
    expect(await admin.reload()).toMatchObject({ epoch: 1, unchanged: true });
    await writeFile(mapFile, JSON.stringify(rawMap(7, 1)));
    await expect(admin.reload()).rejects.toMatchObject({ status: 409, code: "MapRefused" });
    await writeFile(mapFile, JSON.stringify(rawMap(7, 2)));
    expect(await admin.reload()).toMatchObject({ epoch: 2, unchanged: false, added: ["n7"], removed: [] });
    expect((await admin.healStatus()).epoch).toBe(2);
  });

  it("serves Prometheus metrics without authentication, and S3 beside the admin paths", async () => {
    const metrics = await request(`${endpoint}/_tessera/metrics`);
    expect(metrics.statusCode).toBe(200);
    const text = await metrics.body.text();
    for (const name of ["tessera_heal_objects_repaired_total", "tessera_heal_objects_at_risk", "tessera_heal_rebuild_bytes_per_second", "tessera_node_up_state", "tessera_gateway_process_cpu_seconds_total"]) expect(text).toContain(name);
    const s3 = await request(`${endpoint}/some-bucket`);
    expect(s3.statusCode).toBe(403);
    expect(s3.headers["content-type"]).toContain("application/xml");
  });
});
