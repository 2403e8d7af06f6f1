/**
 * Wiring the healer into a gateway process (gateway/main.ts): the healer itself (or, with
 * TESSERA_HEAL=off, only its failure detector, for status), the admin API and metrics routes,
 * and map reloads on SIGHUP or `POST /_tessera/admin/cluster/reload`. A reload must raise the
 * map's epoch (an unchanged file is a no-op; a changed one with the same epoch is refused).
 */
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { TesseraError } from "../../core/errors.js";
import type { StorageNode } from "../../core/storage-api.js";
import { loadClusterMap, type ClusterMap, type NodeConfig } from "../../placement/cluster-map.js";
import type { Cluster } from "../objects/cluster.js";
import { SigV4Verifier, staticCredentials, type AccessKeyPair } from "../s3/sigv4.js";
import { registerAdminRoutes } from "./admin-api.js";
import { Healer } from "./healer.js";
import { GatewayMetrics } from "./metrics.js";
import type { HealerSettings } from "./settings.js";

export interface AttachOptions {
  readonly app: FastifyInstance;
  readonly cluster: Cluster;
  readonly credentials: readonly AccessKeyPair[];
  readonly settings: HealerSettings;
  readonly logger: Logger;
  readonly mapFile: string;
  /** A client for a node the gateway did not know at start (a reload, a retired node). */
  readonly connect: (node: Pick<NodeConfig, "id" | "url">) => StorageNode & { close?: () => Promise<void> };
}

export interface AttachedHealer {
  readonly healer: Healer;
  reload(): Promise<ReloadResult>;
  stop(): Promise<void>;
}

export interface ReloadResult {
  readonly epoch: number;
  readonly unchanged: boolean;
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

function sameMap(a: ClusterMap, b: ClusterMap): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export async function attachHealer(options: AttachOptions): Promise<AttachedHealer> {
  const logger = options.logger.child({ component: "healer" });
  const connected: Array<StorageNode & { close?: () => Promise<void> }> = [];
  const connect = (node: Pick<NodeConfig, "id" | "url">): StorageNode => {
    const client = options.connect(node);
    connected.push(client);
    return client;
  };
  const healer = new Healer({ cluster: options.cluster, settings: options.settings, logger, connect });
  await healer.start({ detectOnly: !options.settings.enabled });
  const reload = async (): Promise<ReloadResult> => {
    const map = await loadClusterMap(options.mapFile);
    const served = options.cluster.map;
    if (sameMap(map, served)) return { epoch: map.epoch, unchanged: true, added: [], removed: [] };
    if (map.epoch <= served.epoch) {
      throw new TesseraError("ERR_INVALID_CLUSTER_MAP", `cluster map ${options.mapFile}: epoch ${map.epoch} does not rise above the served epoch ${served.epoch}; raise it with every change`);
    }
    return { ...(await healer.reloadMap(map)), unchanged: false };
  };
  const metrics = new GatewayMetrics(healer);
  const verifier = new SigV4Verifier({ credentials: staticCredentials(options.credentials) });
  registerAdminRoutes(options.app, { healer, verifier, metrics, reload, mapFile: options.mapFile });
  const onHangup = (): void => {
    reload()
      .then((result) => logger.info(result, "SIGHUP: cluster map reloaded"))
      .catch((error: unknown) => logger.error({ err: error }, "SIGHUP: cluster map refused; still serving the previous one"));
  };
  process.on("SIGHUP", onHangup);
  return {
    healer,
    reload,
    stop: async () => {
      process.off("SIGHUP", onHangup);
      await healer.stop();
      await Promise.all(connected.map((client) => client.close?.()));
    },
  };
}
