/**
 * `tessera storage-node ...`: validate the settings (storage-node/config.ts), check the codec
 * against its golden vectors, open the disks, serve the internal API, and on SIGTERM or
 * SIGINT shut down within SHUTDOWN_DEADLINE_MS. Exit codes: 0 after a clean shutdown,
 * 1 when the node cannot start or stop cleanly, 2 for a bad flag (message only, no stack).
 *
 * Logs are pino JSON lines on stdout (pretty when stdout is a terminal). Once serving, the
 * node logs `{"msg":"listening","url":...,"port":...}` (whatever --log-level says): scripts and
 * tests wait for that line.
 */
import type { Logger } from "pino";
import { assert } from "../core/assert.js";
import { codecSelfTest } from "../core/codec-self-test.js";
import { RequestVerifier } from "../core/internal-auth.js";
import { applyHeapGrowingPercent, armShutdownDeadline, createRoleLogger, heapGrowingPercent, mallocSettings, RUNS_FROM, waitForStopSignal } from "../core/role-process.js";
import { STORAGE_NODE_USAGE, UsageError, loadStorageNodeConfig, type StorageNodeConfig } from "./config.js";
import { SHUTDOWN_ABORT_MS, SHUTDOWN_DRAIN_MS, StorageServer } from "./server.js";

/**
 * From the signal to the process's exit, whatever happens: drain (SHUTDOWN_DRAIN_MS), abort
 * (SHUTDOWN_ABORT_MS), then closing the disks; past it the process exits 1 regardless, so a
 * supervisor never waits on a hung node.
 */
export const SHUTDOWN_DEADLINE_MS = 6_000;
/**
 * The node's V8 heap growing percent (core/role-process.ts; TESSERA_HEAP_GROWING_PERCENT
 * overrides it). One node process receiving 256 KiB shards from 16 writers, alternating runs
 * (bench/node-batch.ts --shards): 1,709-1,738 µs of CPU per shard against 2,136-2,218 under
 * V8's own rule (majors 4-5 against 45-48), and 1,848-2,021 µs at 100 percent (73-80 majors:
 * a limit of twice live is still inside the ArrayBuffers' churn). In the cluster, PUT 64 MiB
 * ×4: the nodes' CPU 3.8-4.2 → 2.4-2.9 s per GB. The cost is memory: up to about 50 MB more
 * of dropped ArrayBuffers awaiting a scavenge per node.
 */
export const NODE_HEAP_GROWING_PERCENT = 300;
/** Exit code after a broken invariant (EX_SOFTWARE): a bug, never an operating error. */
const EXIT_INVARIANT_BROKEN = 70;

assert(SHUTDOWN_DRAIN_MS + SHUTDOWN_ABORT_MS < SHUTDOWN_DEADLINE_MS, "the shutdown deadline leaves time to close the disks after drain and abort");

export async function runStorageNode(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let config: StorageNodeConfig;
  let heapGrowing: number;
  try {
    const command = await loadStorageNodeConfig(argv, env);
    if (command.kind === "help") {
      process.stdout.write(STORAGE_NODE_USAGE);
      return 0;
    }
    config = command.config;
    heapGrowing = heapGrowingPercent(env, NODE_HEAP_GROWING_PERCENT);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`tessera storage-node: ${error.message}\n(tessera storage-node --help shows every flag)\n`);
    return 2;
  }
  applyHeapGrowingPercent(heapGrowing);
  const logger = createRoleLogger(config.logLevel, { nodeId: config.nodeId });
  try {
    return await serve(config, heapGrowing, logger);
  } catch (error) {
    logger.fatal({ err: error }, "storage node failed");
    return 1;
  }
}

async function serve(config: StorageNodeConfig, heapGrowingPercent: number, logger: Logger): Promise<number> {
  // Parity written by this build must decode with the next: never serve with a wrong codec.
  await codecSelfTest();
  // Loaded only now, so a bad flag is reported without loading the disk engine (LMDB).
  const { LocalNode } = await import("./local-node.js");
  const node = await LocalNode.open({
    nodeId: config.nodeId,
    disks: config.disks.map((disk) => ({ id: disk.id, path: disk.path })),
    ...(config.capacityBytes === undefined ? {} : { capacityBytes: config.capacityBytes }),
    directIo: config.directIo,
    logger: logger.child({ component: "local-node" }),
  });
  const server = new StorageServer({
    node,
    verifier: new RequestVerifier({ secret: config.secret, nodeId: config.nodeId }),
    logger,
    onFatal: () => process.exit(EXIT_INVARIANT_BROKEN),
  });
  const stopping = waitForStopSignal(logger);
  try {
    const { url, port } = await server.listen(config.host, config.port);
    // At info whatever the log level: scripts and tests wait for this line.
    logger.child({}, { level: "info" }).info({ url, port, disks: config.disks, heapGrowingPercent, malloc: mallocSettings(process.env), code: RUNS_FROM }, "listening");
    const signal = await stopping;
    logger.info({ signal }, "shutting down");
  } finally {
    const deadline = armShutdownDeadline(logger, SHUTDOWN_DEADLINE_MS);
    await server.close();
    await node.close();
    deadline.disarm();
  }
  logger.info("stopped");
  return 0;
}
