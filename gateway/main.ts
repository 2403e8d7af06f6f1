/**
 * `tessera gateway ...`: validate the settings (gateway/config.ts), check the codec against its
 * golden vectors, connect to every storage node of the map (HttpNodeClient), serve S3, and on
 * SIGTERM or SIGINT shut down within SHUTDOWN_DEADLINE_MS. Exit codes: 0 after a clean
 * shutdown, 1 when the gateway cannot start or stop cleanly, 2 for a bad flag (message only).
 *
 * Logs are pino JSON lines on stdout (pretty when stdout is a terminal). Once serving, the
 * gateway logs `{"msg":"listening","url":...,"port":...}`: scripts and tests wait for that line.
 */
import type { Logger } from "pino";
import { assert } from "../core/assert.js";
import { codecSelfTest } from "../core/codec-self-test.js";
import type { HttpNodeClient } from "../core/http-node-client.js";
import { applyHeapGrowingPercent, armShutdownDeadline, createRoleLogger, heapGrowingPercent, mallocSettings, RUNS_FROM, waitForStopSignal } from "../core/role-process.js";
import { UsageError } from "../core/settings.js";
import { GATEWAY_USAGE, loadGatewayConfig, type GatewayConfig } from "./config.js";
import type { AttachedHealer } from "./healer/attach.js";
import { healerSettingsFromEnv, type HealerSettings } from "./healer/settings.js";
import type { Gateway } from "./server.js";

/**
 * In-flight S3 requests get this long to finish after a stop signal (new ones get 503). A
 * 100 MiB PUT over loopback takes well under a second; a slower client is cut off after it.
 */
export const SHUTDOWN_DRAIN_MS = 5_000;
/**
 * From the signal to the process's exit, whatever happens: drain, cut the remaining
 * connections, let background work (garbage collection of superseded versions) settle, close
 * the node connections. Past it the process exits 1, so a supervisor never waits on a hung
 * gateway. `tessera local` waits a little longer than this before SIGKILL.
 */
export const SHUTDOWN_DEADLINE_MS = 8_000;

/**
 * The gateway's V8 heap growing percent (core/role-process.ts; TESSERA_HEAP_GROWING_PERCENT
 * overrides it). Cluster cells, nodes at their 300, two alternating pairs per value: PUT 64 MiB
 * ×4 292/293 MB/s and 3.7-3.8 gateway CPU s per GB, against 245/248 and 4.7 under V8's own
 * rule; GET 64 MiB ×4 439-450 against 391-416 MB/s; the gateway's peak RSS unchanged (203-219
 * MiB in those cells; 230 MiB with 16 concurrent 16 MiB transfers, test/gateway/
 * memory-concurrent.test.ts, against 237). At 200 the CPU fell a little further (3.5-3.6) but
 * RSS rose by 25 MiB, and at 300 the concurrent test peaked at 259 MiB, over the gateway's
 * 256 MiB bound (issue 7), which is why the gateway keeps less margin than a node.
 */
export const GATEWAY_HEAP_GROWING_PERCENT = 100;

assert(SHUTDOWN_DRAIN_MS < SHUTDOWN_DEADLINE_MS, "the shutdown deadline leaves time to settle after the drain");

export async function runGateway(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let config: GatewayConfig;
  let healing: HealerSettings;
  let heapGrowing: number;
  try {
    const command = await loadGatewayConfig(argv, env);
    if (command.kind === "help") {
      process.stdout.write(GATEWAY_USAGE);
      return 0;
    }
    config = command.config;
    healing = healerSettingsFromEnv(env);
    heapGrowing = heapGrowingPercent(env, GATEWAY_HEAP_GROWING_PERCENT);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`tessera gateway: ${error.message}\n(tessera gateway --help shows every flag)\n`);
    return 2;
  }
  applyHeapGrowingPercent(heapGrowing);
  const logger = createRoleLogger(config.logLevel, { role: "gateway" });
  try {
    return await serve(config, healing, heapGrowing, logger);
  } catch (error) {
    logger.fatal({ err: error }, "gateway failed");
    return 1;
  }
}

async function nodeClients(config: GatewayConfig): Promise<Map<string, HttpNodeClient>> {
  const { HttpNodeClient } = await import("../core/http-node-client.js");
  const clients = new Map<string, HttpNodeClient>();
  for (const node of config.map.nodes) clients.set(node.id, new HttpNodeClient({ nodeId: node.id, url: node.url, secret: config.secret }));
  assert(clients.size === config.map.nodes.length, "node ids in a valid map are unique");
  return clients;
}

async function serve(config: GatewayConfig, healing: HealerSettings, heapGrowingPercent: number, logger: Logger): Promise<number> {
  // Parity written by this build must decode with the next: never serve with a wrong codec.
  await codecSelfTest();
  // Loaded only now, so a bad flag is reported without loading fastify and the S3 layer.
  const [{ Cluster }, { createGateway }, { attachHealer }, { HttpNodeClient }] = await Promise.all([
    import("./objects/cluster.js"),
    import("./server.js"),
    import("./healer/attach.js"),
    import("../core/http-node-client.js"),
  ]);
  const clients = await nodeClients(config);
  const cluster = new Cluster(config.map, clients);
  const gateway = await createGateway({ cluster, credentials: config.credentials, region: config.region, baseDomains: config.baseDomains, logger, smallCopiesBytes: config.smallCopiesBytes });
  let healer: AttachedHealer | undefined;
  const stopping = waitForStopSignal(logger);
  try {
    healer = await attachHealer({
      app: gateway.app,
      cluster,
      credentials: config.credentials,
      settings: healing,
      logger,
      mapFile: config.mapFile,
      connect: (node) => new HttpNodeClient({ nodeId: node.id, url: node.url, secret: config.secret }),
    });
    // GETs ask the detector's suspect and down nodes last (a hung node no longer costs each GET a timeout).
    gateway.store.useHealth(healer.healer.detector);
    await gateway.app.listen({ host: config.host, port: config.port });
    const { url, port } = listeningAddress(gateway, config.host);
    const { k, m } = config.map.ec;
    logger.info({ url, port, map: config.mapFile, epoch: config.map.epoch, nodes: config.map.nodes.length, ec: `${k}+${m}`, region: config.region, smallCopiesBytes: config.smallCopiesBytes, heapGrowingPercent, malloc: mallocSettings(process.env), code: RUNS_FROM }, "listening");
    const signal = await stopping;
    logger.info({ signal }, "shutting down");
  } finally {
    await shutDown(gateway, clients, logger, healer);
  }
  logger.info("stopped");
  return 0;
}

function listeningAddress(gateway: Gateway, host: string): { url: string; port: number } {
  const address = gateway.app.server.address();
  assert(address !== null && typeof address === "object", "a listening TCP server has an address");
  const shownHost = host.includes(":") ? `[${host}]` : host;
  return { url: `http://${shownHost}:${address.port}`, port: address.port };
}

async function shutDown(gateway: Gateway, clients: ReadonlyMap<string, HttpNodeClient>, logger: Logger, healer: AttachedHealer | undefined): Promise<void> {
  const deadline = armShutdownDeadline(logger, SHUTDOWN_DEADLINE_MS);
  const drain = setTimeout(() => {
    logger.warn(`requests still running ${SHUTDOWN_DRAIN_MS} ms after the stop signal: cutting their connections`);
    gateway.app.server.closeAllConnections();
  }, SHUTDOWN_DRAIN_MS);
  try {
    // The healer saves its checkpoint while requests drain; its unfinished shard writes are
    // abandoned (the nodes discard them), and a restarted healer redoes them.
    await Promise.all([gateway.close(), healer?.stop()]);
  } finally {
    clearTimeout(drain);
    await Promise.all([...clients.values()].map((client) => client.close()));
    deadline.disarm();
  }
}
