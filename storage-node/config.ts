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
import { basename, resolve } from "node:path";
import type { ClusterSecret } from "../core/internal-auth.js";
import { NODE_DISKS_MAX } from "../core/limits.js";
import {
  LOG_LEVELS,
  UsageError,
  definedFields,
  errnoOf,
  fileScalar,
  fileStringList,
  given,
  loadClusterSecret,
  nonEmpty,
  parseFlags,
  parseListen,
  parseLogLevel,
  readSettingsFile,
  settingsMapping,
  type Given,
  type LogLevel,
} from "../core/settings.js";
import { NAME_ID_PATTERN } from "../core/storage-api.js";
import { DIRECT_IO_MODES, type DirectIoMode } from "./direct-io.js";

export { UsageError };

/** Loopback unless told otherwise (DESIGN.md: security); 9101 is the first node's port by convention. */
export const LISTEN_DEFAULT = "127.0.0.1:9101";

export const STORAGE_NODE_USAGE = `usage: tessera storage-node --id ID --disk DIR [--disk DIR ...] --secret-file FILE [flags]

  --id ID               node id, as in the cluster map (env TESSERA_NODE_ID)
  --listen HOST:PORT    address to serve on; port 0 picks a free port (default ${LISTEN_DEFAULT}; env TESSERA_LISTEN)
  --disk [ID=]DIR       a disk directory, created if missing; id defaults to the directory's name
                        (repeat per disk; env TESSERA_DISKS, comma-separated)
  --secret-file FILE    the cluster secret, at least 32 bytes (env TESSERA_SECRET_FILE)
  --capacity-bytes N    cap each disk's usable bytes (env TESSERA_CAPACITY_BYTES)
  --direct-io MODE      auto: shard files with O_DIRECT where the file system takes it;
                        off: through the page cache (default auto; env TESSERA_DIRECT_IO)
  --config FILE         YAML or JSON file with the fields id, listen, disks, secretFile,
                        capacityBytes, directIo, logLevel (env TESSERA_CONFIG); flags and env win
  --log-level LEVEL     ${LOG_LEVELS.join(", ")} (default info; env TESSERA_LOG_LEVEL)
  --help                show this message
`;

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
  readonly directIo: DirectIoMode;
  readonly logLevel: LogLevel;
}

/** Settings as given, before validation; each names where it came from for messages. */
interface RawSettings {
  id?: Given;
  listen?: Given;
  disks?: { readonly values: string[]; readonly from: string };
  secretFile?: Given;
  capacityBytes?: Given;
  directIo?: Given;
  logLevel?: Given;
}

const FLAG_OPTIONS = {
  id: { type: "string" },
  listen: { type: "string" },
  disk: { type: "string", multiple: true },
  "secret-file": { type: "string" },
  "capacity-bytes": { type: "string" },
  "direct-io": { type: "string" },
  config: { type: "string" },
  "log-level": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

export type ParsedCommand = { readonly kind: "help" } | { readonly kind: "run"; readonly config: StorageNodeConfig };

/** Flags, then environment, then config file; validated. Throws UsageError. */
export async function loadStorageNodeConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<ParsedCommand> {
  const values = parseFlags(argv, FLAG_OPTIONS);
  if (values.help === true) return { kind: "help" };
  const configPath = values.config ?? nonEmpty(env.TESSERA_CONFIG);
  const fromFile = configPath === undefined ? {} : await readConfigFile(configPath);
  const raw: RawSettings = { ...fromFile, ...fromEnvironment(env), ...fromFlags(values) };
  return { kind: "run", config: await validate(raw) };
}

function defined(settings: RawSettings): RawSettings {
  return definedFields(settings);
}

function fromFlags(values: ReturnType<typeof parseFlags<typeof FLAG_OPTIONS>>): RawSettings {
  return defined({
    id: given(values.id, "--id"),
    listen: given(values.listen, "--listen"),
    disks: values.disk === undefined ? undefined : { values: values.disk, from: "--disk" },
    secretFile: given(values["secret-file"], "--secret-file"),
    capacityBytes: given(values["capacity-bytes"], "--capacity-bytes"),
    directIo: given(values["direct-io"], "--direct-io"),
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
    directIo: given(nonEmpty(env.TESSERA_DIRECT_IO), "TESSERA_DIRECT_IO"),
    logLevel: given(nonEmpty(env.TESSERA_LOG_LEVEL), "TESSERA_LOG_LEVEL"),
  });
}

const CONFIG_FIELDS = new Set(["id", "listen", "disks", "secretFile", "capacityBytes", "directIo", "logLevel"]);

async function readConfigFile(path: string): Promise<RawSettings> {
  const where = `--config ${path}`;
  const fields = settingsMapping(await readSettingsFile(path, where), CONFIG_FIELDS, where);
  return defined({
    id: fileScalar(fields, "id", where),
    listen: fileScalar(fields, "listen", where),
    disks: fileStringList(fields, "disks", where),
    secretFile: fileScalar(fields, "secretFile", where),
    capacityBytes: fileScalar(fields, "capacityBytes", where),
    directIo: fileScalar(fields, "directIo", where),
    logLevel: fileScalar(fields, "logLevel", where),
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
  const secret = await loadClusterSecret(raw.secretFile);
  const capacityBytes = raw.capacityBytes === undefined ? undefined : parseCapacity(raw.capacityBytes);
  const directIo = parseDirectIo(raw.directIo);
  const logLevel = parseLogLevel(raw.logLevel);
  return {
    nodeId: raw.id.value,
    host,
    port,
    disks,
    secret,
    secretFile: resolve(raw.secretFile.value),
    ...(capacityBytes === undefined ? {} : { capacityBytes }),
    directIo,
    logLevel,
  };
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

function parseDirectIo(mode: Given | undefined): DirectIoMode {
  if (mode === undefined) return "auto";
  const known = DIRECT_IO_MODES.find((candidate) => candidate === mode.value);
  if (known === undefined) throw new UsageError(`${mode.from}: '${mode.value}' is not a direct I/O mode (${DIRECT_IO_MODES.join(" or ")})`);
  return known;
}

function parseCapacity(capacity: Given): number {
  const bytes = Number(capacity.value);
  if (!/^[0-9]+$/.test(capacity.value) || !Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new UsageError(`${capacity.from}: '${capacity.value}' is not a positive whole number of bytes`);
  }
  return bytes;
}
