/**
 * Real storage-node processes for tests: `node bin/tessera.js storage-node ...` on temporary
 * disk directories, a temporary secret file and port 0. `startNode` waits for the node's
 * "listening" log line and returns its URL. Every process and directory a test makes is
 * recorded, and `cleanupNodes()` (register it with afterAll via `useNodeHarness()`) kills
 * whatever is still running with SIGKILL and removes the directories.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll } from "vitest";
import { supervisedEnv, withoutTesseraSettings } from "../../bin/supervised-child.js";
import { HttpNodeClient } from "../../core/http-node-client.js";
import { ClusterSecret } from "../../core/internal-auth.js";
import { Prng } from "../prng.js";

/** Start-up: tsx loads the TypeScript, the codec self-test runs, LMDB opens; slow on a busy 2-core box. */
export const NODE_START_TIMEOUT_MS = 20_000;
/** After SIGTERM a node has its own deadline (6 s); past this the harness uses SIGKILL. */
export const NODE_STOP_TIMEOUT_MS = 10_000;
/** Output kept per process for failure messages: the tail is what explains a crash. */
const OUTPUT_TAIL_CHARS = 16_000;

const BIN = fileURLToPath(new URL("../../bin/tessera.js", import.meta.url));

export interface NodeDirs {
  /** Temporary root holding everything below; removed at cleanup. */
  readonly root: string;
  /** Disk directories; their basenames are the disk ids. */
  readonly disks: readonly string[];
  readonly diskIds: readonly string[];
  readonly secretFile: string;
  readonly secret: ClusterSecret;
}

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface NodeProcess {
  readonly nodeId: string;
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly dirs: NodeDirs;
  readonly exited: Promise<ExitStatus>;
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL if it has not exited after NODE_STOP_TIMEOUT_MS. */
  stop(): Promise<ExitStatus>;
  /** Everything the process printed lately (stdout and stderr). */
  output(): string;
  /** A client for this node, closed at cleanup. */
  client(): HttpNodeClient;
}

const running = new Set<ChildProcess>();
const directories = new Set<string>();
const clients = new Set<HttpNodeClient>();

/** Registers cleanupNodes with afterAll for the calling test file. */
export function useNodeHarness(): void {
  afterAll(cleanupNodes);
}

export async function cleanupNodes(): Promise<void> {
  await Promise.all([...clients].map((client) => client.close().catch(() => undefined)));
  clients.clear();
  await Promise.all([...running].map((child) => killAndWait(child)));
  await Promise.all([...directories].map((dir) => rm(dir, { recursive: true, force: true })));
  directories.clear();
}

async function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGKILL");
  await exited;
}

/** Fresh temporary disk directories and a secret file (secret drawn from `prng`). */
export async function makeNodeDirs(prng: Prng, diskNames: readonly string[] = ["a", "b"]): Promise<NodeDirs> {
  const root = await mkdtemp(join(tmpdir(), "tessera-node-"));
  directories.add(root);
  const secretText = prng.bytes(32).toString("hex");
  const secretFile = join(root, "secret");
  await writeFile(secretFile, `${secretText}\n`, { mode: 0o600 });
  return {
    root,
    disks: diskNames.map((name) => join(root, name)),
    diskIds: [...diskNames],
    secretFile,
    secret: ClusterSecret.fromBytes(Buffer.from(secretText, "utf8")),
  };
}

/** A temporary directory removed at cleanup. */
export async function makeTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  directories.add(dir);
  return dir;
}

export interface StartOptions {
  readonly nodeId?: string;
  /** Reuse these directories (a restart); default: fresh ones. */
  readonly dirs?: NodeDirs;
  readonly extraArgs?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly logLevel?: string;
  /** Flags for node itself, before the script (V8's tracing flags, which NODE_OPTIONS refuses). */
  readonly nodeFlags?: readonly string[];
  /** Every piece of the node's output (stdout and stderr), for a test that reads all of it: output() keeps only a tail. */
  readonly onOutput?: (piece: string) => void;
}

function nodeArgs(nodeId: string, dirs: NodeDirs, options: StartOptions): string[] {
  const args = ["storage-node", "--id", nodeId, "--listen", "127.0.0.1:0", "--secret-file", dirs.secretFile, "--log-level", options.logLevel ?? "warn"];
  for (const disk of dirs.disks) args.push("--disk", disk);
  return [...args, ...(options.extraArgs ?? [])];
}

/** Spawns a node and resolves once it logs that it listens. */
export async function startNode(prng: Prng, options: StartOptions = {}): Promise<NodeProcess> {
  const nodeId = options.nodeId ?? "n1";
  const dirs = options.dirs ?? (await makeNodeDirs(prng));
  const child = spawnTessera(nodeArgs(nodeId, dirs, options), options.env, options.nodeFlags);
  const tail = captureOutput(child);
  const onOutput = options.onOutput;
  if (onOutput !== undefined) for (const stream of [child.stdout, child.stderr]) stream?.on("data", (piece: Buffer) => onOutput(piece.toString("utf8")));
  const exited = exitOf(child);
  const { url, port } = await waitForListening(child, tail, exited);
  assertPid(child);
  const stop = async (): Promise<ExitStatus> => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), NODE_STOP_TIMEOUT_MS);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  };
  const client = (): HttpNodeClient => {
    const made = new HttpNodeClient({ nodeId, url, secret: dirs.secret });
    clients.add(made);
    return made;
  };
  return { nodeId, url, port, pid: child.pid, dirs, exited, kill: (signal) => child.kill(signal), stop, output: () => tail.text, client };
}

function assertPid(child: ChildProcess): asserts child is ChildProcess & { pid: number } {
  if (child.pid === undefined) throw new Error("spawned node has no pid");
}

/**
 * Spawns `node bin/tessera.js ...args`, tracked for cleanup, in the environment a supervisor
 * gives a role (supervisedEnv: the malloc settings, and this process's pid to watch, so that a
 * test run killed mid-way, whose afterAll never runs, leaves no node behind).
 */
export function spawnTessera(args: readonly string[], env: NodeJS.ProcessEnv = {}, nodeFlags: readonly string[] = []): ChildProcess {
  // The developer's own TESSERA_* settings must not leak into a test's node.
  const child = spawn(process.execPath, [...nodeFlags, BIN, ...args], { stdio: ["ignore", "pipe", "pipe"], env: supervisedEnv(withoutTesseraSettings(process.env, env)) });
  running.add(child);
  child.once("exit", () => running.delete(child));
  return child;
}

function captureOutput(child: ChildProcess): { text: string } {
  const tail = { text: "" };
  const append = (piece: Buffer): void => {
    tail.text = (tail.text + piece.toString("utf8")).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  return tail;
}

function exitOf(child: ChildProcess): Promise<ExitStatus> {
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
}

function waitForListening(child: ChildProcess, tail: { text: string }, exited: Promise<ExitStatus>): Promise<{ url: string; port: number }> {
  return new Promise((resolve, reject) => {
    let buffered = "";
    const timer = setTimeout(() => reject(new Error(`node did not listen within ${NODE_START_TIMEOUT_MS} ms:\n${tail.text}`)), NODE_START_TIMEOUT_MS);
    const onData = (piece: Buffer): void => {
      buffered += piece.toString("utf8");
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        const listening = parseListening(line);
        if (listening === undefined) continue;
        clearTimeout(timer);
        child.stdout?.off("data", onData);
        resolve(listening);
      }
    };
    child.stdout?.on("data", onData);
    void exited.then((status) => {
      clearTimeout(timer);
      reject(new Error(`node exited (${status.code ?? status.signal}) before listening:\n${tail.text}`));
    });
  });
}

function parseListening(line: string): { url: string; port: number } | undefined {
  try {
    const entry: unknown = JSON.parse(line);
    if (typeof entry !== "object" || entry === null) return undefined;
    const { msg, url, port } = entry as Record<string, unknown>;
    return msg === "listening" && typeof url === "string" && typeof port === "number" ? { url, port } : undefined;
  } catch {
    return undefined;
  }
}

export interface CliResult extends ExitStatus {
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `tessera ...args` to completion (for flag validation tests). */
export async function runTessera(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const child = spawnTessera(args, env);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (piece: Buffer) => (stdout += piece.toString("utf8")));
  child.stderr?.on("data", (piece: Buffer) => (stderr += piece.toString("utf8")));
  const status = await exitOf(child);
  return { ...status, stdout, stderr };
}
