/**
 * The storage node's settings from flags, TESSERA_* environment variables and an optional
 * config file (YAML or JSON, same fields), in that order of precedence. Every problem is a
 * UsageError whose message names the flag; the CLI prints it and exits 2, no stack trace.
 *
 * Disk ids: `--disk PATH` takes the directory's basename as the disk id (/data/ssd1 -> ssd1),
 * so ids survive reordering the flags; `--disk ID=PATH` names it explicitly. Ids end up in
 * every record's placement, so a disk must keep its id for life: rename the flag, never the id.
 */
import { mkdir, stat } from "node:fs/promises";
import { isIP } from "node:net";
import { basename, extname, resolve } from "node:path";
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";
import { isTesseraError } from "../core/errors.js";
import { ClusterSecret } from "../core/internal-auth.js";
import { NODE_DISKS_MAX } from "../core/limits.js";
import { NAME_ID_PATTERN } from "../core/storage-api.js";

/** Loopback unless told otherwise (DESIGN.md: security); 9101 is the first node's port by convention. */
export const LISTEN_DEFAULT = "127.0.0.1:9101";
const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** A config file bigger than this is not a config file; bounds what we read and parse. */
const CONFIG_FILE_BYTES_MAX = 1024 * 1024;
const PORT_MAX = 65_535;
const HOSTNAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

export const STORAGE_NODE_USAGE = `usage: tessera storage-node --id ID --disk DIR [--disk DIR ...] --secret-file FILE [flags]

  --id ID               node id, as in the cluster map (env TESSERA_NODE_ID)
  --listen HOST:PORT    address to serve on; port 0 picks a free port (default ${LISTEN_DEFAULT}; env TESSERA_LISTEN)
  --disk [ID=]DIR       a disk directory, created if missing; id defaults to the directory's name
                        (repeat per disk; env TESSERA_DISKS, comma-separated)
  --secret-file FILE    the cluster secret, at least 32 bytes (env TESSERA_SECRET_FILE)
  --capacity-bytes N    cap each disk's usable bytes (env TESSERA_CAPACITY_BYTES)
  --config FILE         YAML or JSON file with the fields id, listen, disks, secretFile,
                        capacityBytes, logLevel (env TESSERA_CONFIG); flags and env win
  --log-level LEVEL     ${LOG_LEVELS.join(", ")} (default info; env TESSERA_LOG_LEVEL)
  --help                show this message
`;

/** A bad flag, environment variable or config field: printed as is, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

export interface DiskConfig {
  readonly id: string;
  readonly path: string;
}

export interface StorageNodeConfig {
  readonly nodeId: string;
  readonly host: string;
  readonly port: number;
  readonly disks: readonly DiskConfig[];
  readonly secret: ClusterSecret;
  readonly secretFile: string;
  readonly capacityBytes?: number;
  readonly logLevel: LogLevel;
}

/** Settings as given, before validation; each names where it came from for messages. */
interface RawSettings {
  id?: Given;
  listen?: Given;
  disks?: { readonly values: string[]; readonly from: string };
  secretFile?: Given;
  capacityBytes?: Given;
  logLevel?: Given;
}

interface Given {
  readonly value: string;
  readonly from: string;
}

const FLAG_OPTIONS = {
  id: { type: "string" },
  listen: { type: "string" },
  disk: { type: "string", multiple: true },
  "secret-file": { type: "string" },
  "capacity-bytes": { type: "string" },
  config: { type: "string" },
  "log-level": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

export type ParsedCommand = { readonly kind: "help" } | { readonly kind: "run"; readonly config: StorageNodeConfig };

/** Flags, then environment, then config file; validated. Throws UsageError. */
export async function loadStorageNodeConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<ParsedCommand> {
  const { values } = parseFlags(argv);
  if (values.help === true) return { kind: "help" };
  const configPath = values.config ?? nonEmpty(env.TESSERA_CONFIG);
  const fromFile = configPath === undefined ? {} : await readConfigFile(configPath);
  const raw: RawSettings = { ...fromFile, ...fromEnvironment(env), ...fromFlags(values) };
  return { kind: "run", config: await validate(raw) };
}

function parseFlags(argv: readonly string[]): ReturnType<typeof parseArgs<{ options: typeof FLAG_OPTIONS }>> {
  try {
    return parseArgs({ args: [...argv], options: FLAG_OPTIONS, strict: true, allowPositionals: false });
  } catch (error) {
    // node's messages name the flag ("Unknown option '--bogus'"); keep them, drop the stack.
    throw new UsageError(error instanceof Error ? error.message.split("\n")[0] ?? error.message : String(error));
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

function given(value: string | undefined, from: string): { value: string; from: string } | undefined {
  return value === undefined ? undefined : { value, from };
}

/** Drops undefined fields so a spread never overwrites a lower-precedence value with nothing. */
function defined(settings: RawSettings): RawSettings {
  return Object.fromEntries(Object.entries(settings).filter(([, value]) => value !== undefined)) as RawSettings;
}

function fromFlags(values: ReturnType<typeof parseFlags>["values"]): RawSettings {
  return defined({
    id: given(values.id, "--id"),
    listen: given(values.listen, "--listen"),
    disks: values.disk === undefined ? undefined : { values: values.disk, from: "--disk" },
    secretFile: given(values["secret-file"], "--secret-file"),
    capacityBytes: given(values["capacity-bytes"], "--capacity-bytes"),
    logLevel: given(values["log-level"], "--log-level"),
  });
}

function fromEnvironment(env: NodeJS.ProcessEnv): RawSettings {
  const disks = nonEmpty(env.TESSERA_DISKS);
  return defined({
    id: given(nonEmpty(env.TESSERA_NODE_ID), "TESSERA_NODE_ID"),
    listen: given(nonEmpty(env.TESSERA_LISTEN), "TESSERA_LISTEN"),
    disks: disks === undefined ? undefined : { values: disks.split(",").map((disk) => disk.trim()), from: "TESSERA_DISKS" },
    secretFile: given(nonEmpty(env.TESSERA_SECRET_FILE), "TESSERA_SECRET_FILE"),
    capacityBytes: given(nonEmpty(env.TESSERA_CAPACITY_BYTES), "TESSERA_CAPACITY_BYTES"),
    logLevel: given(nonEmpty(env.TESSERA_LOG_LEVEL), "TESSERA_LOG_LEVEL"),
  });
}

const CONFIG_FIELDS = new Set(["id", "listen", "disks", "secretFile", "capacityBytes", "logLevel"]);

async function readConfigFile(path: string): Promise<RawSettings> {
  const where = `--config ${path}`;
  let text: string;
  try {
    const info = await stat(path);
    if (info.size > CONFIG_FILE_BYTES_MAX) throw new UsageError(`${where}: over ${CONFIG_FILE_BYTES_MAX} bytes; not a config file`);
    text = await readFile(path, "utf8");
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`${where}: cannot read it (${errnoOf(error)})`);
  }
  let parsed: unknown;
  try {
    parsed = extname(path).toLowerCase() === ".json" ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new UsageError(`${where}: not valid ${extname(path).toLowerCase() === ".json" ? "JSON" : "YAML"}: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`);
  }
  return settingsFromFile(parsed, where);
}

function settingsFromFile(parsed: unknown, where: string): RawSettings {
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new UsageError(`${where}: must be a mapping of fields`);
  const fields = parsed as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!CONFIG_FIELDS.has(key)) throw new UsageError(`${where}: unknown field '${key}' (known: ${[...CONFIG_FIELDS].join(", ")})`);
  }
  const scalar = (key: string): Given | undefined => {
    const value = fields[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "string" && typeof value !== "number") throw new UsageError(`${where}: field '${key}' must be a string or number`);
    return { value: String(value), from: `${where} field '${key}'` };
  };
  const disks = fields.disks;
  if (disks !== undefined && (!Array.isArray(disks) || !disks.every((disk) => typeof disk === "string"))) {
    throw new UsageError(`${where}: field 'disks' must be a list of directories`);
  }
  return defined({
    id: scalar("id"),
    listen: scalar("listen"),
    disks: disks === undefined ? undefined : { values: disks as string[], from: `${where} field 'disks'` },
    secretFile: scalar("secretFile"),
    capacityBytes: scalar("capacityBytes"),
    logLevel: scalar("logLevel"),
  });
}

// --- Validation -------------------------------------------------------------------------

async function validate(raw: RawSettings): Promise<StorageNodeConfig> {
  if (raw.id === undefined) throw new UsageError("--id is required (or TESSERA_NODE_ID)");
  if (!NAME_ID_PATTERN.test(raw.id.value)) throw new UsageError(`${raw.id.from}: '${raw.id.value}' is not a node id (letters, digits, - and _, at most 63)`);
  const { host, port } = parseListen(raw.listen ?? { value: LISTEN_DEFAULT, from: "default listen address" });
  if (raw.disks === undefined || raw.disks.values.length === 0) throw new UsageError("--disk is required at least once (or TESSERA_DISKS)");
  const disks = await prepareDisks(raw.disks);
  if (raw.secretFile === undefined) throw new UsageError("--secret-file is required (or TESSERA_SECRET_FILE)");
  const secret = await loadSecret(raw.secretFile);
  const capacityBytes = raw.capacityBytes === undefined ? undefined : parseCapacity(raw.capacityBytes);
  const logLevel = parseLogLevel(raw.logLevel);
  return {
    nodeId: raw.id.value,
    host,
    port,
    disks,
    secret,
    secretFile: resolve(raw.secretFile.value),
    ...(capacityBytes === undefined ? {} : { capacityBytes }),
    logLevel,
  };
}

/** HOST:PORT, [IPV6]:PORT. */
export function parseListen(listen: Given): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(listen.value);
  const host = match?.[1] ?? match?.[2];
  const portText = match?.[3];
  if (host === undefined || portText === undefined) throw new UsageError(`${listen.from}: '${listen.value}' is not HOST:PORT`);
  const port = Number(portText);
  if (port > PORT_MAX) throw new UsageError(`${listen.from}: port ${port} is over ${PORT_MAX}`);
  const hostOk = match?.[1] !== undefined ? isIP(host) === 6 : isIP(host) === 4 || HOSTNAME_PATTERN.test(host);
  if (!hostOk) throw new UsageError(`${listen.from}: '${host}' is not an IP address or host name`);
  return { host, port };
}

function parseDiskSpec(spec: string, from: string): DiskConfig {
  const equals = spec.indexOf("=");
  const named = equals > 0 && !spec.slice(0, equals).includes("/");
  const path = resolve(named ? spec.slice(equals + 1) : spec);
  const id = named ? spec.slice(0, equals) : basename(path);
  if (spec === "" || (named && spec.slice(equals + 1) === "")) throw new UsageError(`${from}: empty disk directory`);
  if (!NAME_ID_PATTERN.test(id)) {
    throw new UsageError(`${from}: disk id '${id}' (from '${spec}') must be letters, digits, - and _, at most 63; name it with ID=DIR`);
  }
  return { id, path };
}

async function prepareDisks(given: { values: string[]; from: string }): Promise<DiskConfig[]> {
  if (given.values.length > NODE_DISKS_MAX) throw new UsageError(`${given.from}: at most ${NODE_DISKS_MAX} disks, got ${given.values.length}`);
  const disks = given.values.map((spec) => parseDiskSpec(spec, given.from));
  const ids = new Set<string>();
  const paths = new Set<string>();
  for (const disk of disks) {
    if (ids.has(disk.id)) throw new UsageError(`${given.from}: two disks have the id '${disk.id}'; name them with ID=DIR`);
    if (paths.has(disk.path)) throw new UsageError(`${given.from}: directory ${disk.path} is given twice`);
    ids.add(disk.id);
    paths.add(disk.path);
    await ensureDirectory(disk, given.from);
  }
  return disks;
}

async function ensureDirectory(disk: DiskConfig, from: string): Promise<void> {
  try {
    await mkdir(disk.path, { recursive: true });
    if (!(await stat(disk.path)).isDirectory()) throw new UsageError(`${from}: ${disk.path} is not a directory`);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`${from}: cannot create disk directory ${disk.path} (${errnoOf(error)})`);
  }
}

async function loadSecret(file: Given): Promise<ClusterSecret> {
  try {
    return await ClusterSecret.fromFile(file.value);
  } catch (error) {
    if (isTesseraError(error, "ERR_INVALID_ARGUMENT")) throw new UsageError(`${file.from}: ${error.message}`);
    throw error;
  }
}

function parseCapacity(capacity: Given): number {
  const bytes = Number(capacity.value);
  if (!/^[0-9]+$/.test(capacity.value) || !Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new UsageError(`${capacity.from}: '${capacity.value}' is not a positive whole number of bytes`);
  }
  return bytes;
}

function parseLogLevel(level: Given | undefined): LogLevel {
  if (level === undefined) return "info";
  const found = LOG_LEVELS.find((known) => known === level.value);
  if (found === undefined) throw new UsageError(`${level.from}: '${level.value}' is not one of ${LOG_LEVELS.join(", ")}`);
  return found;
}

function errnoOf(error: unknown): string {
  if (typeof error === "object" && error !== null && "code" in error && typeof error.code === "string") return error.code;
  return error instanceof Error ? error.message : String(error);
}
