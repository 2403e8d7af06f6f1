/**
 * A gateway over six in-memory storage nodes, in this process: fast, seeded tests of the
 * whole S3 path (SigV4, routing, erasure encode/decode, records, listing) through the real
 * AWS SDK. Nodes can be switched off to simulate failures. Tests that cross a process
 * boundary use test/cluster-harness.ts instead.
 */
import type { AddressInfo } from "node:net";
import { S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import pino from "pino";
import { TesseraError } from "../../core/errors.js";
import type { StorageNode } from "../../core/storage-api.js";
import { Cluster } from "../../gateway/objects/cluster.js";
import { createGateway, type Gateway } from "../../gateway/server.js";
import { parseClusterMap } from "../../placement/cluster-map.js";
import { MemoryNode } from "../../storage-node/memory-node.js";

export const ACCESS_KEY = "TESSERATEST";
export const SECRET_KEY = "tessera-test-secret-key";
export const REGION = "us-east-1";

/** Wraps a node so a test can take it down: every call then fails as an unreachable node would. */
export function switchable(node: StorageNode): StorageNode & { down: boolean } {
  const state = { down: false };
  const fail = (): never => {
    throw new TesseraError("ERR_NODE_UNAVAILABLE", `node ${node.nodeId} is down (test)`);
  };
  const proxy = new Proxy(node, {
    get(target, property, receiver) {
      if (property === "down") return state.down;
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (state.down) {
          if (property === "readShard") return (async function* () { yield* []; fail(); })();
          return Promise.reject(new TesseraError("ERR_NODE_UNAVAILABLE", `node ${node.nodeId} is down (test)`));
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
    set(_target, property, value) {
      if (property !== "down") return false;
      state.down = Boolean(value);
      return true;
    },
  });
  return proxy as StorageNode & { down: boolean };
}

export interface InProcessCluster {
  readonly gateway: Gateway;
  readonly endpoint: string;
  readonly nodes: (StorageNode & { down: boolean })[];
  client(options?: { secret?: string }): S3Client;
  stop(): Promise<void>;
}

export async function startInProcessCluster(options: { nodes?: number; k?: number; m?: number; blockSize?: number } = {}): Promise<InProcessCluster> {
  const count = options.nodes ?? 6;
  const map = parseClusterMap(
    {
      epoch: 1,
      ec: { k: options.k ?? 4, m: options.m ?? 2, blockSize: options.blockSize ?? 1024 * 1024 },
      nodes: Array.from({ length: count }, (_, index) => ({ id: `n${index + 1}`, url: `http://127.0.0.1:${20001 + index}`, disks: [{ id: "d0" }] })),
    },
    "in-process test map",
  );
  const nodes = map.nodes.map((node) => switchable(new MemoryNode({ nodeId: node.id, diskIds: ["d0"] })));
  const cluster = new Cluster(map, new Map(nodes.map((node) => [node.nodeId, node])));
  const gateway = await createGateway({
    cluster,
    credentials: [{ accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY }],
    region: REGION,
    baseDomains: ["localhost"],
    logger: pino({ level: process.env.DEBUG_GATEWAY === "1" ? "error" : "silent" }),
  });
  await gateway.app.listen({ host: "127.0.0.1", port: 0 });
  const endpoint = `http://127.0.0.1:${(gateway.app.server.address() as AddressInfo).port}`;
  const clients: S3Client[] = [];
  return {
    gateway,
    endpoint,
    nodes,
    client: (clientOptions = {}) => {
      const client = new S3Client({
        region: REGION,
        endpoint,
        forcePathStyle: true,
        credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: clientOptions.secret ?? SECRET_KEY },
        maxAttempts: 1,
      });
      clients.push(client);
      return client;
    },
    stop: async () => {
      for (const client of clients) client.destroy();
      await gateway.close();
    },
  };
}

/** An SDK response body as one Buffer. */
export async function bodyOf(output: { Body?: unknown }): Promise<Buffer> {
  const body = output.Body as { transformToByteArray(): Promise<Uint8Array> } | undefined;
  return Buffer.from((await body?.transformToByteArray()) ?? new Uint8Array());
}

/** The S3 error a promise rejects with, as name and HTTP status; fails if it resolves. */
export async function s3Error(promise: Promise<unknown>): Promise<{ name: string; status: number | undefined }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof S3ServiceException) return { name: error.name, status: error.$metadata.httpStatusCode };
    throw error;
  }
  throw new Error("expected an S3 error");
}
