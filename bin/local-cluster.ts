/**
 * `tessera local` (what `npm start` runs): a whole cluster on this machine. One
 * `tessera storage-node` child process per node of the map (6 by default, 4+2) and one
 * `tessera gateway` child on 127.0.0.1:9000, with the map, the secret and every node's data
 * kept under ./data across restarts (bin/local-data.ts describes the layout and the ports).
 *
 * The terminal gets a few status lines, the endpoint, the credentials and an aws command that
 * works as printed; each process's own log goes to data/logs/<name>.log (error lines are
 * echoed). SIGINT (Ctrl-C), SIGTERM or SIGHUP stop the gateway first, then the nodes, each
 * with SIGTERM and SIGKILL after CHILD_STOP_DEADLINE_MS; a child that dies on its own is
 * named, with its last log lines, and stops everything. Exit codes: 0 after a clean stop, 1
 * when a process failed or had to be killed, 2 for a bad flag, variable or map.
 */
import { createWriteStream, type WriteStream } from "node:fs";
import { createServer } from "node:net";
import { relative, resolve } from "node:path";
import { assert } from "../core/assert.js";
import { UsageError, errnoOf, given, nonEmpty, parseFlags, parseLogLevel, parsePort, type LogLevel } from "../core/settings.js";
import { parseKeyPair, REGION_DEFAULT } from "../gateway/config.js";
import { SHUTDOWN_DEADLINE_MS as GATEWAY_SHUTDOWN_DEADLINE_MS } from "../gateway/main.js";
import type { AccessKeyPair } from "../gateway/s3/sigv4.js";
import type { ClusterMap } from "../placement/cluster-map.js";
import { SHUTDOWN_DEADLINE_MS as NODE_SHUTDOWN_DEADLINE_MS } from "../storage-node/main.js";
import { diskDirectory, localLayout, makeDirectories, nodePort, prepareMap, prepareSecret, rotateLog, type LocalLayout } from "./local-data.js";
import { SupervisedChild, exitText, withoutTesseraSettings, type ExitStatus } from "./supervised-child.js";

export const GATEWAY_PORT_DEFAULT = 9000;
export const DATA_DIR_DEFAULT = "data";
/** The development credentials, documented in the README; TESSERA_ACCESS_KEY/TESSERA_SECRET_KEY replace them. */
export const DEV_ACCESS_KEY = "tessera-dev";
export const DEV_SECRET_KEY = "tessera-dev-secret";
/**
 * From spawning to every process logging "listening". Seven processes load TypeScript through
 * tsx, check the codec and open LMDB at once: a few seconds on a 2-core laptop, more on a cold
 * tsx cache. Past this something is wrong, and waiting longer only hides it.
 */
export const CHILD_START_TIMEOUT_MS = 60_000;
/** SIGTERM to SIGKILL for one child: a little over the longest deadline the roles keep themselves. */
export const CHILD_STOP_DEADLINE_MS = 10_000;
/** An error line echoed to the terminal is cut here; the whole line is in the log file. */
const ECHO_LINE_CHARS_MAX = 500;
/** Log lines of a dead child shown on the terminal: enough for a stack trace's top. */
const DEATH_LINES_SHOWN = 12;
/** pino's number for "error": lines at or above it are echoed to the terminal. */
const PINO_ERROR_LEVEL = 50;
/** Roles log "listening" at info: quieter levels would hide the line readiness waits for. */
const LOCAL_LOG_LEVELS: readonly LogLevel[] = ["info", "debug", "trace"];

assert(CHILD_STOP_DEADLINE_MS > Math.max(GATEWAY_SHUTDOWN_DEADLINE_MS, NODE_SHUTDOWN_DEADLINE_MS), "children stop by themselves before SIGKILL");

export const LOCAL_USAGE = `usage: tessera local [--data-dir DIR] [--port PORT] [--log-level LEVEL]

Runs a whole Tessera cluster on this machine: one storage node process per node of the
cluster map (6 by default, erasure-coded 4+2) and an S3 gateway. Ctrl-C stops them all.

  --data-dir DIR      map, secret, node data and logs (default ./${DATA_DIR_DEFAULT}; env TESSERA_DATA_DIR)
  --port PORT         the gateway's port; the i-th node listens on PORT + 100 + i
                      (default ${GATEWAY_PORT_DEFAULT}, nodes 9101..9106; env TESSERA_PORT)
  --log-level LEVEL   ${LOCAL_LOG_LEVELS.join(", ")}, for the logs in DIR/logs (default info; env TESSERA_LOG_LEVEL)
  --help              show this message

Credentials: TESSERA_ACCESS_KEY and TESSERA_SECRET_KEY, else the development pair
${DEV_ACCESS_KEY} / ${DEV_SECRET_KEY}.
`;

/** An operating failure (a port in use, a process that died): printed as is, exit code 1. */
export class LocalClusterError extends Error {
  override readonly name = "LocalClusterError";
}

interface LocalSettings {
  readonly dataDir: string;
  readonly gatewayPort: number;
  readonly credentials: AccessKeyPair;
  readonly devCredentials: boolean;
  readonly logLevel: LogLevel;
}

const FLAG_OPTIONS = {
  "data-dir": { type: "string" },
  port: { type: "string" },
  "log-level": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

function loadLocalSettings(argv: readonly string[], env: NodeJS.ProcessEnv): LocalSettings | "help" {
  const values = parseFlags(argv, FLAG_OPTIONS);
  if (values.help === true) return "help";
  const port = given(values.port, "--port") ?? given(nonEmpty(env.TESSERA_PORT), "TESSERA_PORT");
  const pair = parseKeyPair(given(nonEmpty(env.TESSERA_ACCESS_KEY), "TESSERA_ACCESS_KEY"), given(nonEmpty(env.TESSERA_SECRET_KEY), "TESSERA_SECRET_KEY"));
  const level = given(values["log-level"], "--log-level") ?? given(nonEmpty(env.TESSERA_LOG_LEVEL), "TESSERA_LOG_LEVEL");
  const logLevel = parseLogLevel(level);
  if (!LOCAL_LOG_LEVELS.includes(logLevel)) throw new UsageError(`${level?.from}: tessera local needs ${LOCAL_LOG_LEVELS.join(", ")} (it waits for each process's "listening" line)`);
  return {
    dataDir: resolve(values["data-dir"] ?? nonEmpty(env.TESSERA_DATA_DIR) ?? DATA_DIR_DEFAULT),
    gatewayPort: port === undefined ? GATEWAY_PORT_DEFAULT : parsePort(port, 1),
    credentials: pair ?? { accessKeyId: DEV_ACCESS_KEY, secretAccessKey: DEV_SECRET_KEY },
    devCredentials: pair === undefined,
    logLevel,
  };
}

export async function runLocalCluster(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  // Listening before anything is spawned: a Ctrl-C during start-up still stops every child.
  const signals = new StopSignals();
  try {
    const settings = loadLocalSettings(argv, env);
    if (settings === "help") {
      process.stdout.write(LOCAL_USAGE);
      return 0;
    }
    return await runCluster(settings, env, signals);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`tessera local: ${error.message}\n(tessera local --help shows every flag)\n`);
      return 2;
    }
    if (!(error instanceof LocalClusterError)) throw error;
    process.stderr.write(`tessera local: ${error.message}\n`);
    return 1;
  } finally {
    signals.dispose();
  }
}

// --- Signals ----------------------------------------------------------------------------

/**
 * The first SIGINT, SIGTERM or SIGHUP asks for a stop; later ones are ignored (npm forwards
 * the terminal's Ctrl-C, so one keypress can arrive twice), since the stop has its deadline.
 */
class StopSignals {
  readonly requested: Promise<NodeJS.Signals>;
  #resolve: (signal: NodeJS.Signals) => void = () => undefined;
  #received = false;
  readonly #onSignal = (signal: NodeJS.Signals): void => {
    if (this.#received) {
      say(`(${signal} again: already stopping; every process is gone within ${CHILD_STOP_DEADLINE_MS / 1000} s of the first signal)`);
      return;
    }
    this.#received = true;
    this.#resolve(signal);
  };

  constructor() {
    this.requested = new Promise((resolve) => (this.#resolve = resolve));
    for (const signal of STOP_SIGNALS) process.on(signal, this.#onSignal);
    // A closed terminal (SIGHUP) makes writes fail; that must not crash the supervisor mid-stop.
    process.stdout.on("error", () => undefined);
    process.stderr.on("error", () => undefined);
  }

  dispose(): void {
    for (const signal of STOP_SIGNALS) process.off(signal, this.#onSignal);
  }
}

const STOP_SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

// --- The cluster ------------------------------------------------------------------------

interface ChildPlan {
  readonly name: string;
  readonly role: "storage node" | "gateway";
  readonly port: number;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
}

interface Running {
  readonly plan: ChildPlan;
  readonly child: SupervisedChild;
  readonly log: WriteStream;
  readonly logFile: string;
}

async function runCluster(settings: LocalSettings, env: NodeJS.ProcessEnv, signals: StopSignals): Promise<number> {
  const layout = localLayout(settings.dataDir);
  await makeDirectories(layout);
  const secret = await prepareSecret(layout);
  const prepared = await prepareMap(layout, settings.gatewayPort);
  for (const warning of secret.warnings) say(`warning: ${warning}`);
  const plans = planChildren(settings, layout, prepared.map, env);
  await Promise.all(plans.map((plan) => checkPortFree(plan)));
  const { k, m } = prepared.map.ec;
  say(`Starting Tessera: ${prepared.map.nodes.length} storage nodes (${k}+${m}) and an S3 gateway; data in ${shown(layout.dataDir)}${describeFiles(prepared.created, secret.created, prepared.moved)}`);
  const started = Date.now();
  const children = await Promise.all(plans.map((plan) => startChild(plan, layout)));
  let failure: unknown;
  try {
    await supervise(children, settings, signals, started);
  } catch (error) {
    failure = error;
  }
  const unclean = await stopAll(children);
  if (failure !== undefined) throw failure;
  if (unclean.length > 0) throw new LocalClusterError(`stopped, but not cleanly:\n  ${unclean.join("\n  ")}\n(logs in ${shown(layout.logsDir)})`);
  say("Stopped.");
  return 0;
}

function describeFiles(mapCreated: boolean, secretCreated: boolean, moved: boolean): string {
  if (mapCreated || secretCreated) return " (first run: cluster.json and cluster.secret written)";
  return moved ? " (node ports moved with the gateway port: cluster.json rewritten, epoch raised)" : "";
}

function planChildren(settings: LocalSettings, layout: LocalLayout, map: ClusterMap, env: NodeJS.ProcessEnv): ChildPlan[] {
  const common = ["--secret-file", layout.secretFile, "--log-level", settings.logLevel];
  const nodes = map.nodes.map((node, index): ChildPlan => {
    const port = nodePort(settings.gatewayPort, index);
    const disks = node.disks.flatMap((disk) => ["--disk", `${disk.id}=${diskDirectory(layout, node.id, disk.id)}`]);
    return { name: node.id, role: "storage node", port, args: ["storage-node", "--id", node.id, "--listen", `127.0.0.1:${port}`, ...disks, ...common], env: withoutTesseraSettings(env) };
  });
  // Credentials travel in the environment: command lines are visible to every user in `ps`.
  const credentials = { TESSERA_ACCESS_KEY: settings.credentials.accessKeyId, TESSERA_SECRET_KEY: settings.credentials.secretAccessKey };
  const gateway: ChildPlan = {
    name: "gateway",
    role: "gateway",
    port: settings.gatewayPort,
    args: ["gateway", "--map", layout.mapFile, "--listen", `127.0.0.1:${settings.gatewayPort}`, ...common],
    env: withoutTesseraSettings(env, credentials),
  };
  return [...nodes, gateway];
}

async function checkPortFree(plan: ChildPlan): Promise<void> {
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: "127.0.0.1", port: plan.port, exclusive: true }, resolve);
    });
  } catch (error) {
    const hint = errnoOf(error) === "EADDRINUSE" ? " (an earlier `tessera local` still running? set TESSERA_PORT to move every port)" : "";
    throw new LocalClusterError(`port ${plan.port} for the ${plan.role === "gateway" ? "gateway" : `storage node ${plan.name}`} is not free on 127.0.0.1: ${errnoOf(error)}${hint}`);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

async function startChild(plan: ChildPlan, layout: LocalLayout): Promise<Running> {
  const logFile = await rotateLog(layout, plan.name);
  const log = createWriteStream(logFile, { flags: "w" });
  log.on("error", (error) => process.stderr.write(`tessera local: cannot write ${logFile}: ${errnoOf(error)}\n`));
  const child = SupervisedChild.start({
    name: plan.name,
    args: plan.args,
    env: plan.env,
    detached: true,
    onLine: (line) => {
      log.write(`${line}\n`);
      echoIfError(plan.name, line);
    },
  });
  return { plan, child, log, logFile };
}

interface LogEntry {
  readonly level: number;
  readonly time: string;
  readonly text: string;
}

/** A pino JSON line's level, time and message (with its error's), or undefined for other output. */
function parseLogLine(line: string): LogEntry | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const entry = JSON.parse(line) as { level?: unknown; time?: unknown; msg?: unknown; err?: { message?: unknown } };
    if (typeof entry.level !== "number") return undefined;
    const reason = typeof entry.err?.message === "string" ? `: ${entry.err.message}` : "";
    return { level: entry.level, time: typeof entry.time === "string" ? entry.time : "", text: `${String(entry.msg)}${reason}` };
  } catch {
    return undefined;
  }
}

const PINO_LEVEL_NAMES: Readonly<Record<number, string>> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };

/** A log line as a person reads it: "12:04:31.123 ERROR message: cause"; other output as is. */
function readableLine(line: string): string {
  const entry = parseLogLine(line);
  if (entry === undefined) return line;
  return `${entry.time.slice(11, 23)} ${PINO_LEVEL_NAMES[entry.level] ?? entry.level} ${entry.text}`;
}

/** Errors reach the terminal as they happen; everything else stays in the log file. */
function echoIfError(name: string, line: string): void {
  const entry = parseLogLine(line);
  if (entry === undefined || entry.level < PINO_ERROR_LEVEL) return;
  process.stderr.write(`${name}: ${entry.text}`.slice(0, ECHO_LINE_CHARS_MAX) + ` (${name}.log)\n`);
}

type Stopped = { readonly kind: "signal"; readonly signal: NodeJS.Signals } | { readonly kind: "died"; readonly running: Running; readonly status: ExitStatus };
type Outcome = { readonly kind: "ready" } | Stopped;

function firstDeath(children: readonly Running[]): Promise<Stopped> {
  return Promise.race(children.map((running) => running.child.exited.then((status): Stopped => ({ kind: "died", running, status }))));
}

/** Returns when a stop was asked for; throws LocalClusterError when a child failed. */
async function supervise(children: readonly Running[], settings: LocalSettings, signals: StopSignals, started: number): Promise<void> {
  const stopped = signals.requested.then((signal): Stopped => ({ kind: "signal", signal }));
  const died = firstDeath(children);
  const ready = Promise.all(children.map((running) => running.child.listening(CHILD_START_TIMEOUT_MS))).then((): Outcome => ({ kind: "ready" }));
  // Once a signal or a death has won the race, ready's later rejection is expected, not unhandled.
  ready.catch(() => undefined);
  let outcome: Outcome;
  try {
    outcome = await Promise.race([ready, died, stopped]);
  } catch (error) {
    throw new LocalClusterError(`${error instanceof Error ? error.message : String(error)}; stopping everything`);
  }
  if (outcome.kind === "ready") {
    printReady(children, settings, Date.now() - started);
    outcome = await Promise.race([died, stopped]);
  }
  if (outcome.kind === "died") throw new LocalClusterError(describeDeath(outcome.running, outcome.status));
  if (outcome.kind === "signal") say(`\n${outcome.signal}: stopping the gateway, then the storage nodes...`);
}

function describeDeath(running: Running, status: ExitStatus): string {
  const lines = running.child.tail().slice(-DEATH_LINES_SHOWN).map((line) => `  | ${readableLine(line).slice(0, ECHO_LINE_CHARS_MAX)}`);
  return [
    `the ${running.plan.role === "gateway" ? "gateway" : `storage node ${running.plan.name}`} (pid ${running.child.pid}) exited unexpectedly (${exitText(status)}); stopping everything.`,
    `Its last lines (all in ${shown(running.logFile)}):`,
    ...lines,
  ].join("\n");
}

/** Gateway first (it finishes requests to the nodes), then every node at once. Returns what did not stop cleanly. */
async function stopAll(children: readonly Running[]): Promise<string[]> {
  const gateway = children.filter((running) => running.plan.role === "gateway");
  const nodes = children.filter((running) => running.plan.role !== "gateway");
  const results = [...(await stopEach(gateway)), ...(await stopEach(nodes))];
  await Promise.all(children.map((running) => new Promise<void>((resolve) => running.log.end(resolve))));
  return results.filter((result) => result.problem !== undefined).map((result) => `${result.name}: ${result.problem}`);
}

async function stopEach(children: readonly Running[]): Promise<Array<{ name: string; problem: string | undefined }>> {
  return Promise.all(
    children.map(async (running) => {
      const wasRunning = running.child.running;
      const { status, forced } = await running.child.stop(CHILD_STOP_DEADLINE_MS);
      const problem = forced ? `killed after ${CHILD_STOP_DEADLINE_MS} ms` : !wasRunning || status.code === 0 ? undefined : exitText(status);
      return { name: running.plan.name, problem };
    }),
  );
}

// --- What the terminal shows --------------------------------------------------------------

function printReady(children: readonly Running[], settings: LocalSettings, elapsedMs: number): void {
  const nodePorts = children.filter((running) => running.plan.role !== "gateway").map((running) => running.plan.port);
  const endpoint = `http://127.0.0.1:${settings.gatewayPort}`;
  const { accessKeyId, secretAccessKey } = settings.credentials;
  const layout = localLayout(settings.dataDir);
  const aws = `AWS_ACCESS_KEY_ID=${shellWord(accessKeyId)} AWS_SECRET_ACCESS_KEY=${shellWord(secretAccessKey)} AWS_DEFAULT_REGION=${REGION_DEFAULT} aws --endpoint-url ${endpoint} s3 mb s3://demo`;
  say(`Started ${nodePorts.length} storage nodes (127.0.0.1:${Math.min(...nodePorts)}-${Math.max(...nodePorts)}) and the gateway in ${(elapsedMs / 1000).toFixed(1)} s; logs in ${shown(layout.logsDir)}`);
  say("");
  say(`  S3 endpoint  ${endpoint}`);
  say(`  access key   ${accessKeyId}`);
  say(`  secret key   ${secretAccessKey}${settings.devCredentials ? "   (the development pair; set TESSERA_ACCESS_KEY and TESSERA_SECRET_KEY for your own)" : ""}`);
  say(`  region       ${REGION_DEFAULT}`);
  say("");
  say("Try it with the aws CLI (then `s3 cp FILE s3://demo/` and `s3 ls s3://demo` the same way):");
  say("");
  say(`  ${aws}`);
  say("");
  say("Press Ctrl-C to stop.");
}

/** A path as the user would type it: relative when under the working directory. */
function shown(path: string): string {
  const fromHere = relative(process.cwd(), path);
  return fromHere === "" ? "." : fromHere.startsWith("..") ? path : `./${fromHere}`;
}

/** Quotes `text` for a POSIX shell when it needs quoting, so a printed command works as printed. */
export function shellWord(text: string): string {
  return /^[A-Za-z0-9_.,:/+=@%-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}
