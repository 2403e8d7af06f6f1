/**
 * A whole real cluster for tests: N `tessera storage-node` processes and one `tessera gateway`,
 * each a child process on 127.0.0.1 with a port the system picked, in a temporary directory.
 *
 * Nodes start first on port 0; their "listening" lines give their ports, from which the map is
 * written; then the gateway starts (port 0 too). A restarted process gets its previous port
 * back, so the map stays true. `stop()` kills every process and removes the directory; a test
 * process that exits without calling it still SIGKILLs every child (bin/supervised-child.ts)
 * and removes the directory.
 *
 *   const cluster = await startCluster({ nodes: 6, k: 4, m: 2 });
 *   afterAll(() => cluster.stop());
 *   const s3 = new S3Client({ endpoint: cluster.endpoint, region: cluster.region, credentials: cluster.credentials, forcePathStyle: true });
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SupervisedChild, TESSERA_BIN, withoutTesseraSettings, type ExitStatus } from "../bin/supervised-child.js";
import { EC_K_DEFAULT, EC_M_DEFAULT } from "../core/limits.js";
import type { AccessKeyPair } from "../gateway/s3/sigv4.js";
import { parseClusterMap, type ClusterMap } from "../placement/cluster-map.js";

/** Start-up of one process: tsx loads the TypeScript, the codec self-test runs, LMDB opens; slow on a busy 2-core box. */
export const PROCESS_START_TIMEOUT_MS = 30_000;
/** SIGTERM to SIGKILL in `stop()` of one process: a little over the roles' own shutdown deadlines (6 s, 8 s). */
export const PROCESS_STOP_DEADLINE_MS = 10_000;
/** A flag-validation run that has not exited by now started serving by mistake: it is killed. */
export const CLI_RUN_TIMEOUT_MS = 20_000;
/** Output kept per process for failure messages: the tail is what explains a crash. */
const OUTPUT_TAIL_CHARS = 64 * 1024;
/** Random bytes of the cluster secret (hex-encoded in its file): the 32-byte minimum. */
const SECRET_BYTES = 32;
export const TEST_CREDENTIALS: AccessKeyPair = { accessKeyId: "tessera-test", secretAccessKey: "tessera-test-secret" };
export const TEST_REGION = "us-east-1";

export interface ClusterOptions {
  /** Storage nodes (default k + m). */
  readonly nodes?: number;
  readonly k?: number;
  readonly m?: number;
  readonly blockSize?: number;
  readonly disksPerNode?: number;
  readonly credentials?: AccessKeyPair;
  readonly region?: string;
  /** info or chattier: readiness waits for each process's info-level "listening" line. */
  readonly logLevel?: "info" | "debug" | "trace";
  /** Extra flags for the gateway. */
  readonly gatewayArgs?: readonly string[];
  /** Extra environment for every process (bench/profile.ts preloads its CPU sampler through NODE_OPTIONS). */
  readonly env?: NodeJS.ProcessEnv;
}

export interface HarnessProcess {
  /** The current process's pid (a restart changes it). */
  readonly pid: number;
  readonly port: number;
  readonly url: string;
  readonly running: boolean;
  /** Resolves when the current process exits. */
  readonly exited: Promise<ExitStatus>;
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after PROCESS_STOP_DEADLINE_MS. */
  stop(): Promise<ExitStatus>;
  /** Starts it again on the same port (stopping it first if it still runs); resolves once it listens. */
  restart(): Promise<void>;
  /** Everything it printed lately, across restarts. */
  output(): string;
}

export interface HarnessNode extends HarnessProcess {
  readonly id: string;
  /** Its disk directories; their basenames are the disk ids of the map. */
  readonly dirs: readonly string[];
}

export interface TestCluster {
  readonly endpoint: string;
  readonly credentials: AccessKeyPair;
  readonly region: string;
  readonly map: ClusterMap;
  readonly mapFile: string;
  readonly secretFile: string;
  /** The temporary directory holding the map, the secret and every disk. */
  readonly root: string;
  readonly nodes: readonly HarnessNode[];
  readonly gateway: HarnessProcess;
  node(id: string): HarnessNode;
  /**
   * Starts one more storage node (the next id, as many disks as the others) and waits until it
   * listens. The map is the test's to change (the gateway learns of it on a reload).
   */
  addNode(): Promise<HarnessNode>;
  /** Kills every process (SIGKILL) and removes the temporary directory. */
  stop(): Promise<void>;
}

/** One role process, restartable on its port. */
class ManagedProcess implements HarnessProcess {
  readonly #name: string;
  readonly #args: (port: number) => string[];
  readonly #env: NodeJS.ProcessEnv;
  #child: SupervisedChild | undefined;
  #port = 0;
  #output = "";

  constructor(name: string, args: (port: number) => string[], env: NodeJS.ProcessEnv) {
    this.#name = name;
    this.#args = args;
    this.#env = env;
  }

  get pid(): number {
    return this.#current().pid;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get running(): boolean {
    return this.#child?.running ?? false;
  }

  get exited(): Promise<ExitStatus> {
    return this.#current().exited;
  }

  /** Spawns it on the remembered port (0 the first time) and waits for "listening". */
  async start(): Promise<void> {
    const child = SupervisedChild.start({ name: this.#name, args: this.#args(this.#port), env: this.#env, detached: false, onLine: (line) => this.#keep(line) });
    this.#child = child;
    try {
      this.#port = (await child.listening(PROCESS_START_TIMEOUT_MS)).port;
    } catch (error) {
      child.kill("SIGKILL");
      throw new Error(`${error instanceof Error ? error.message : String(error)}; its output:\n${this.#output}`);
    }
  }

  kill(signal: NodeJS.Signals): void {
    this.#child?.kill(signal);
  }

  async stop(): Promise<ExitStatus> {
    return (await this.#current().stop(PROCESS_STOP_DEADLINE_MS)).status;
  }

  async restart(): Promise<void> {
    if (this.running) await this.stop();
    await this.start();
  }

  output(): string {
    return this.#output;
  }

  #keep(line: string): void {
    this.#output = (this.#output + line + "\n").slice(-OUTPUT_TAIL_CHARS);
  }

  #current(): SupervisedChild {
    if (this.#child === undefined) throw new Error(`${this.#name} was never started`);
    return this.#child;
  }
}

/** The test's environment without the developer's own TESSERA_* settings. */
function cleanEnvironment(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return withoutTesseraSettings(process.env, extra);
}

function startNodes(root: string, secretFile: string, options: Required<Pick<ClusterOptions, "nodes" | "disksPerNode" | "logLevel" | "env">>): Array<ManagedProcess & { id: string; dirs: string[] }> {
  return Array.from({ length: options.nodes }, (_, index) => nodeProcess(root, secretFile, index, options));
}

/** Storage node `n<index + 1>` with its disk directories under `root` (not started yet). */
function nodeProcess(root: string, secretFile: string, index: number, options: Required<Pick<ClusterOptions, "disksPerNode" | "logLevel" | "env">>): ManagedProcess & { id: string; dirs: string[] } {
  const id = `n${index + 1}`;
  const dirs = Array.from({ length: options.disksPerNode }, (__, disk) => join(root, id, `d${disk}`));
  const args = (port: number): string[] => [
    "storage-node", "--id", id, "--listen", `127.0.0.1:${port}`, "--secret-file", secretFile, "--log-level", options.logLevel,
    ...dirs.flatMap((dir) => ["--disk", dir]),
  ];
  return Object.assign(new ManagedProcess(id, args, cleanEnvironment(options.env)), { id, dirs });
}

function buildMap(nodes: ReadonlyArray<{ id: string; url: string; dirs: readonly string[] }>, options: ClusterOptions): ClusterMap {
  const ec = { k: options.k ?? EC_K_DEFAULT, m: options.m ?? EC_M_DEFAULT, ...(options.blockSize === undefined ? {} : { blockSize: options.blockSize }) };
  const raw = {
    epoch: 1,
    ec,
    nodes: nodes.map((node) => ({ id: node.id, url: node.url, disks: node.dirs.map((_, disk) => ({ id: `d${disk}`, weight: 1 })) })),
  };
  return parseClusterMap(raw, "the test cluster map");
}

export async function startCluster(options: ClusterOptions = {}): Promise<TestCluster> {
  const root = await mkdtemp(join(tmpdir(), "tessera-cluster-"));
  const removeRoot = (): void => rmSync(root, { recursive: true, force: true });
  process.once("exit", removeRoot);
  const processes: ManagedProcess[] = [];
  const killAll = async (): Promise<void> => {
    await Promise.all(processes.filter((each) => each.running).map(async (each) => {
      each.kill("SIGKILL");
      await each.exited;
    }));
  };
  try {
    return await assemble(root, options, processes, async () => {
      await killAll();
      await rm(root, { recursive: true, force: true });
      process.off("exit", removeRoot);
    });
  } catch (error) {
    await killAll();
    await rm(root, { recursive: true, force: true });
    process.off("exit", removeRoot);
    throw error;
  }
}

async function assemble(root: string, options: ClusterOptions, processes: ManagedProcess[], stop: () => Promise<void>): Promise<TestCluster> {
  const secretFile = join(root, "cluster.secret");
  await writeFile(secretFile, `${randomBytes(SECRET_BYTES).toString("hex")}\n`, { mode: 0o600 });
  const logLevel = options.logLevel ?? "info";
  const nodeCount = options.nodes ?? (options.k ?? EC_K_DEFAULT) + (options.m ?? EC_M_DEFAULT);
  const nodes = startNodes(root, secretFile, { nodes: nodeCount, disksPerNode: options.disksPerNode ?? 1, logLevel, env: options.env ?? {} });
  processes.push(...nodes);
  for (const node of nodes) for (const dir of node.dirs) await mkdir(dir, { recursive: true });
  await Promise.all(nodes.map((node) => node.start()));
  const map = buildMap(nodes.map((node) => ({ id: node.id, url: node.url, dirs: node.dirs })), options);
  const mapFile = join(root, "cluster.json");
  await writeFile(mapFile, `${JSON.stringify(map, null, 2)}\n`);
  const credentials = options.credentials ?? TEST_CREDENTIALS;
  const region = options.region ?? TEST_REGION;
  const gatewayArgs = (port: number): string[] => [
    "gateway", "--map", mapFile, "--secret-file", secretFile, "--listen", `127.0.0.1:${port}`, "--region", region, "--log-level", logLevel,
    ...(options.gatewayArgs ?? []),
  ];
  const gateway = new ManagedProcess("gateway", gatewayArgs, cleanEnvironment({ ...options.env, TESSERA_ACCESS_KEY: credentials.accessKeyId, TESSERA_SECRET_KEY: credentials.secretAccessKey }));
  processes.push(gateway);
  await gateway.start();
  const node = (id: string): HarnessNode => {
    const found = nodes.find((each) => each.id === id);
    if (found === undefined) throw new Error(`no node ${id} in the test cluster (${nodes.map((each) => each.id).join(", ")})`);
    return found;
  };
  const addNode = async (): Promise<HarnessNode> => {
    const added = nodeProcess(root, secretFile, nodes.length, { disksPerNode: options.disksPerNode ?? 1, logLevel, env: options.env ?? {} });
    processes.push(added);
    nodes.push(added);
    for (const dir of added.dirs) await mkdir(dir, { recursive: true });
    await added.start();
    return added;
  };
  return { endpoint: gateway.url, credentials, region, map, mapFile, secretFile, root, nodes, gateway, node, addNode, stop };
}

export interface CliResult extends ExitStatus {
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `node bin/tessera.js ...args` to completion, without the developer's TESSERA_* settings (for flag tests). */
export async function runTessera(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const child = spawn(process.execPath, [TESSERA_BIN, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: cleanEnvironment(env),
    timeout: CLI_RUN_TIMEOUT_MS,
    killSignal: "SIGKILL",
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (piece: Buffer) => (stdout += piece.toString("utf8")));
  child.stderr.on("data", (piece: Buffer) => (stderr += piece.toString("utf8")));
  const status = await new Promise<ExitStatus>((resolve) => child.once("close", (code, signal) => resolve({ code, signal })));
  return { ...status, stdout, stderr };
}
