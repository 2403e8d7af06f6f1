/**
 * The gateway's settings from flags, TESSERA_* environment variables and an optional config
 * file (YAML or JSON, same fields in camelCase), in that order of precedence, per field.
 * Every problem is a UsageError whose message names the flag, variable or file field; the CLI
 * prints it and exits 2. Secret keys are never echoed in a message.
 *
 * Credentials: one pair from --access-key/--secret-key (or TESSERA_ACCESS_KEY and
 * TESSERA_SECRET_KEY, or the config file's accessKey/secretKey), plus any number from
 * --credentials-file (a YAML or JSON list of {accessKeyId, secretAccessKey}). At least one
 * pair is required: a gateway never starts open.
 *
 * TESSERA_PORT sets the port of the listen address (the one name every role and `tessera
 * local` share); an explicit --listen flag wins over it.
 */
import { resolve } from "node:path";
import type { ClusterSecret } from "../core/internal-auth.js";
import { isTesseraError } from "../core/errors.js";
import {
  UsageError,
  definedFields,
  fileScalar,
  fileStringList,
  given,
  isHostName,
  loadClusterSecret,
  nonEmpty,
  parseFlags,
  parseListen,
  parseLogLevel,
  parsePort,
  readSettingsFile,
  settingsMapping,
  LOG_LEVELS,
  type Given,
  type LogLevel,
} from "../core/settings.js";
import { loadClusterMap, type ClusterMap } from "../placement/cluster-map.js";
import { INLINE_OBJECT_BYTES_MAX, SMALL_COPIES_BYTES_DEFAULT } from "./objects/small-objects.js";
import type { AccessKeyPair } from "./s3/sigv4.js";

/** Loopback unless told otherwise (DESIGN.md: security); 9000 is the S3 port `npm start` prints. */
export const GATEWAY_LISTEN_DEFAULT = "127.0.0.1:9000";
/** The region clients sign for when none is configured: what the AWS SDKs and CLI default to. */
export const REGION_DEFAULT = "us-east-1";
/** `<bucket>.localhost` reaches loopback on most systems, so virtual-hosted clients work locally. */
export const BASE_DOMAINS_DEFAULT: readonly string[] = ["localhost"];
/** MinIO's minimum; AWS's own access key ids are 20 characters. */
export const ACCESS_KEY_CHARS_MIN = 3;
/** AWS's documented maximum for an access key id. */
export const ACCESS_KEY_CHARS_MAX = 128;
/** A shorter secret is guessable offline from a single signed request (MinIO's minimum too). */
export const SECRET_KEY_CHARS_MIN = 8;
/** AWS secrets are 40 characters; anything far longer is a wrong paste. Bounds the HMAC key too. */
export const SECRET_KEY_CHARS_MAX = 128;
/** Access keys held in memory; a longer list belongs in an identity service, not a file. */
export const CREDENTIALS_MAX = 1_000;
/** Virtual-hosted base domains; each one is tried per request, so the list stays short. */
export const BASE_DOMAINS_MAX = 16;
/** Letters, digits and . _ - : safe in the SigV4 credential scope (no '/') and in a shell. */
const ACCESS_KEY_PATTERN = new RegExp(`^[A-Za-z0-9._-]{${ACCESS_KEY_CHARS_MIN},${ACCESS_KEY_CHARS_MAX}}$`);
/** Printable ASCII without spaces: what an environment variable or a shell passes unharmed. */
const SECRET_KEY_PATTERN = /^[\x21-\x7e]+$/;
/** Region names as AWS writes them (us-east-1), which is also what the SigV4 scope carries. */
const REGION_PATTERN = /^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/;

export const GATEWAY_USAGE = `usage: tessera gateway --map FILE --secret-file FILE [credentials] [flags]

  --map FILE                 the cluster map, JSON or YAML (env TESSERA_MAP)
  --secret-file FILE         the cluster secret shared with the storage nodes (env TESSERA_SECRET_FILE)
  --listen HOST:PORT         address to serve S3 on; port 0 picks a free port
                             (default ${GATEWAY_LISTEN_DEFAULT}; env TESSERA_LISTEN, or TESSERA_PORT for the port alone)
  --access-key KEY           an access key id, ${ACCESS_KEY_CHARS_MIN}..${ACCESS_KEY_CHARS_MAX} letters, digits, '.', '_', '-' (env TESSERA_ACCESS_KEY)
  --secret-key SECRET        its secret, at least ${SECRET_KEY_CHARS_MIN} characters (env TESSERA_SECRET_KEY;
                             prefer the environment: flags show in \`ps\`)
  --credentials-file FILE    more keys: a YAML or JSON list of {accessKeyId, secretAccessKey}
                             (env TESSERA_CREDENTIALS_FILE)
  --region REGION            the region clients sign for (default ${REGION_DEFAULT}; env TESSERA_REGION)
  --base-domain HOST         serve <bucket>.HOST as virtual-hosted-style requests; repeat for more
                             (default ${BASE_DOMAINS_DEFAULT.join(", ")}; env TESSERA_BASE_DOMAINS, comma-separated)
  --config FILE              YAML or JSON file with the fields map, secretFile, listen, accessKey,
                             secretKey, credentialsFile, region, baseDomains, logLevel,
                             smallCopiesBytes (env TESSERA_CONFIG);
                             flags and env win
  --log-level LEVEL          ${LOG_LEVELS.join(", ")} (default info; env TESSERA_LOG_LEVEL)
  --small-copies-bytes N     objects up to N bytes are stored as 1 + m whole copies instead of k + m
                             shards: half the record writes, more space; 0 turns it off
                             (0..${INLINE_OBJECT_BYTES_MAX}, default ${SMALL_COPIES_BYTES_DEFAULT}; env TESSERA_SMALL_COPIES_BYTES)
  --help                     show this message
`;

export interface GatewayConfig {
  readonly map: ClusterMap;
  readonly mapFile: string;
  readonly secret: ClusterSecret;
  readonly host: string;
  readonly port: number;
  readonly credentials: readonly AccessKeyPair[];
  readonly region: string;
  readonly baseDomains: readonly string[];
  readonly logLevel: LogLevel;
  /** Objects up to this size are stored as copies (gateway/objects/put-object.ts); 0: none. */
  readonly smallCopiesBytes: number;
}

interface GivenList {
  readonly values: readonly string[];
  readonly from: string;
}

/** Settings as given, before validation; each names where it came from for messages. */
interface RawSettings {
  map?: Given;
  secretFile?: Given;
  listen?: Given;
  port?: Given;
  accessKey?: Given;
  secretKey?: Given;
  credentialsFile?: Given;
  region?: Given;
  baseDomains?: GivenList;
  logLevel?: Given;
  smallCopiesBytes?: Given;
}

const FLAG_OPTIONS = {
  map: { type: "string" },
  "secret-file": { type: "string" },
  listen: { type: "string" },
  "access-key": { type: "string" },
  "secret-key": { type: "string" },
  "credentials-file": { type: "string" },
  region: { type: "string" },
  "base-domain": { type: "string", multiple: true },
  config: { type: "string" },
  "log-level": { type: "string" },
  "small-copies-bytes": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const CONFIG_FIELDS = new Set(["map", "secretFile", "listen", "accessKey", "secretKey", "credentialsFile", "region", "baseDomains", "logLevel", "smallCopiesBytes"]);

export type GatewayCommand = { readonly kind: "help" } | { readonly kind: "run"; readonly config: GatewayConfig };

/** Flags, then environment, then config file; validated. Throws UsageError. */
export async function loadGatewayConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<GatewayCommand> {
  const values = parseFlags(argv, FLAG_OPTIONS);
  if (values.help === true) return { kind: "help" };
  const configPath = values.config ?? nonEmpty(env.TESSERA_CONFIG);
  const configFrom = values.config === undefined ? "TESSERA_CONFIG" : "--config";
  const fromFile = configPath === undefined ? {} : await readConfigFile(configPath, `${configFrom} ${configPath}`);
  const fromFlagValues = fromFlags(values);
  const raw: RawSettings = { ...fromFile, ...fromEnvironment(env), ...fromFlagValues };
  // An explicit --listen is the whole address; TESSERA_PORT only moves the port of any other.
  if (fromFlagValues.listen !== undefined) delete raw.port;
  return { kind: "run", config: await validate(raw) };
}

function fromFlags(values: ReturnType<typeof parseFlags<typeof FLAG_OPTIONS>>): RawSettings {
  return definedFields<RawSettings>({
    map: given(values.map, "--map"),
    secretFile: given(values["secret-file"], "--secret-file"),
    listen: given(values.listen, "--listen"),
    accessKey: given(values["access-key"], "--access-key"),
    secretKey: given(values["secret-key"], "--secret-key"),
    credentialsFile: given(values["credentials-file"], "--credentials-file"),
    region: given(values.region, "--region"),
    baseDomains: values["base-domain"] === undefined ? undefined : { values: values["base-domain"], from: "--base-domain" },
    logLevel: given(values["log-level"], "--log-level"),
    smallCopiesBytes: given(values["small-copies-bytes"], "--small-copies-bytes"),
  });
}

function fromEnvironment(env: NodeJS.ProcessEnv): RawSettings {
  const domains = nonEmpty(env.TESSERA_BASE_DOMAINS);
  return definedFields<RawSettings>({
    map: given(nonEmpty(env.TESSERA_MAP), "TESSERA_MAP"),
    secretFile: given(nonEmpty(env.TESSERA_SECRET_FILE), "TESSERA_SECRET_FILE"),
    listen: given(nonEmpty(env.TESSERA_LISTEN), "TESSERA_LISTEN"),
    port: given(nonEmpty(env.TESSERA_PORT), "TESSERA_PORT"),
    accessKey: given(nonEmpty(env.TESSERA_ACCESS_KEY), "TESSERA_ACCESS_KEY"),
    secretKey: given(nonEmpty(env.TESSERA_SECRET_KEY), "TESSERA_SECRET_KEY"),
    credentialsFile: given(nonEmpty(env.TESSERA_CREDENTIALS_FILE), "TESSERA_CREDENTIALS_FILE"),
    region: given(nonEmpty(env.TESSERA_REGION), "TESSERA_REGION"),
    baseDomains: domains === undefined ? undefined : { values: domains.split(",").map((domain) => domain.trim()), from: "TESSERA_BASE_DOMAINS" },
    logLevel: given(nonEmpty(env.TESSERA_LOG_LEVEL), "TESSERA_LOG_LEVEL"),
    smallCopiesBytes: given(nonEmpty(env.TESSERA_SMALL_COPIES_BYTES), "TESSERA_SMALL_COPIES_BYTES"),
  });
}

async function readConfigFile(path: string, where: string): Promise<RawSettings> {
  const fields = settingsMapping(await readSettingsFile(path, where), CONFIG_FIELDS, where);
  return definedFields<RawSettings>({
    map: fileScalar(fields, "map", where),
    secretFile: fileScalar(fields, "secretFile", where),
    listen: fileScalar(fields, "listen", where),
    accessKey: fileScalar(fields, "accessKey", where),
    secretKey: fileScalar(fields, "secretKey", where),
    credentialsFile: fileScalar(fields, "credentialsFile", where),
    region: fileScalar(fields, "region", where),
    baseDomains: fileStringList(fields, "baseDomains", where),
    logLevel: fileScalar(fields, "logLevel", where),
    smallCopiesBytes: fileScalar(fields, "smallCopiesBytes", where),
  });
}

// --- Validation -------------------------------------------------------------------------

async function validate(raw: RawSettings): Promise<GatewayConfig> {
  if (raw.map === undefined) throw new UsageError("--map is required (or TESSERA_MAP)");
  const map = await loadMap(raw.map);
  if (raw.secretFile === undefined) throw new UsageError("--secret-file is required (or TESSERA_SECRET_FILE)");
  const secret = await loadClusterSecret(raw.secretFile);
  const listen = parseListen(raw.listen ?? { value: GATEWAY_LISTEN_DEFAULT, from: "the default listen address" });
  const port = raw.port === undefined ? listen.port : parsePort(raw.port, 0);
  const credentials = await loadCredentials(raw);
  return {
    map,
    mapFile: resolve(raw.map.value),
    secret,
    host: listen.host,
    port,
    credentials,
    region: parseRegion(raw.region),
    baseDomains: parseBaseDomains(raw.baseDomains),
    logLevel: parseLogLevel(raw.logLevel),
    smallCopiesBytes: parseSmallCopiesBytes(raw.smallCopiesBytes),
  };
}

/** Objects up to this many bytes are stored as 1 + m copies; 0 stores every object erasure-coded. */
function parseSmallCopiesBytes(bytes: Given | undefined): number {
  if (bytes === undefined) return SMALL_COPIES_BYTES_DEFAULT;
  const value = Number(bytes.value);
  if (!/^[0-9]{1,6}$/.test(bytes.value) || value > INLINE_OBJECT_BYTES_MAX) {
    throw new UsageError(`${bytes.from}: '${bytes.value}' is not a size in bytes from 0 (off) to ${INLINE_OBJECT_BYTES_MAX} (copies live in records, as inline objects do)`);
  }
  return value;
}

async function loadMap(file: Given): Promise<ClusterMap> {
  try {
    return await loadClusterMap(file.value);
  } catch (error) {
    if (isTesseraError(error, "ERR_INVALID_CLUSTER_MAP")) throw new UsageError(`${file.from}: ${error.message}`);
    throw error;
  }
}

function parseRegion(region: Given | undefined): string {
  if (region === undefined) return REGION_DEFAULT;
  if (!REGION_PATTERN.test(region.value)) throw new UsageError(`${region.from}: '${region.value}' is not a region name (lower-case letters, digits and '-', like ${REGION_DEFAULT})`);
  return region.value;
}

function parseBaseDomains(domains: GivenList | undefined): readonly string[] {
  if (domains === undefined) return BASE_DOMAINS_DEFAULT;
  if (domains.values.length > BASE_DOMAINS_MAX) throw new UsageError(`${domains.from}: at most ${BASE_DOMAINS_MAX} base domains, got ${domains.values.length}`);
  for (const domain of domains.values) {
    if (!isHostName(domain)) throw new UsageError(`${domains.from}: '${domain}' is not a host name`);
  }
  return [...new Set(domains.values.map((domain) => domain.toLowerCase()))];
}

// --- Credentials ------------------------------------------------------------------------

/** An access key id, or a UsageError naming where it came from. */
export function parseAccessKey(accessKey: Given): string {
  if (!ACCESS_KEY_PATTERN.test(accessKey.value)) {
    throw new UsageError(`${accessKey.from}: '${accessKey.value}' is not an access key (${ACCESS_KEY_CHARS_MIN}..${ACCESS_KEY_CHARS_MAX} letters, digits, '.', '_', '-')`);
  }
  return accessKey.value;
}

/** A secret access key, or a UsageError naming where it came from (never quoting the secret). */
export function parseSecretKey(secretKey: Given): string {
  const length = secretKey.value.length;
  if (length < SECRET_KEY_CHARS_MIN) throw new UsageError(`${secretKey.from}: must be at least ${SECRET_KEY_CHARS_MIN} characters, got ${length}`);
  if (length > SECRET_KEY_CHARS_MAX) throw new UsageError(`${secretKey.from}: must be at most ${SECRET_KEY_CHARS_MAX} characters, got ${length}`);
  if (!SECRET_KEY_PATTERN.test(secretKey.value)) throw new UsageError(`${secretKey.from}: must be printable ASCII without spaces`);
  return secretKey.value;
}

/** The one pair from flags, env or config file; both halves, or neither. */
export function parseKeyPair(accessKey: Given | undefined, secretKey: Given | undefined): AccessKeyPair | undefined {
  if (accessKey !== undefined && secretKey !== undefined) return { accessKeyId: parseAccessKey(accessKey), secretAccessKey: parseSecretKey(secretKey) };
  if (secretKey !== undefined) throw new UsageError(`${secretKey.from}: a secret key needs its access key (--access-key or TESSERA_ACCESS_KEY)`);
  if (accessKey !== undefined) throw new UsageError(`${accessKey.from}: an access key needs its secret key (--secret-key or TESSERA_SECRET_KEY)`);
  return undefined;
}

async function loadCredentials(raw: RawSettings): Promise<AccessKeyPair[]> {
  const pair = parseKeyPair(raw.accessKey, raw.secretKey);
  const fromFile = raw.credentialsFile === undefined ? [] : await readCredentialsFile(raw.credentialsFile);
  const all = pair === undefined || raw.accessKey === undefined ? fromFile : [{ pair, from: raw.accessKey.from }, ...fromFile];
  if (all.length === 0) {
    throw new UsageError("no credentials: give --access-key and --secret-key (or TESSERA_ACCESS_KEY and TESSERA_SECRET_KEY), or --credentials-file");
  }
  const seen = new Map<string, string>();
  for (const { pair: each, from } of all) {
    const earlier = seen.get(each.accessKeyId);
    if (earlier !== undefined) throw new UsageError(`${from}: access key '${each.accessKeyId}' is already given by ${earlier}`);
    seen.set(each.accessKeyId, from);
  }
  return all.map(({ pair: each }) => each);
}

async function readCredentialsFile(file: Given): Promise<Array<{ pair: AccessKeyPair; from: string }>> {
  const where = `${file.from} ${file.value}`;
  const parsed = await readSettingsFile(file.value, where);
  if (!Array.isArray(parsed)) throw new UsageError(`${where}: must be a list of {accessKeyId, secretAccessKey}`);
  if (parsed.length > CREDENTIALS_MAX) throw new UsageError(`${where}: at most ${CREDENTIALS_MAX} entries, got ${parsed.length}`);
  return parsed.map((entry: unknown, index) => {
    const from = `${where} entry ${index + 1}`;
    const fields = settingsMapping(entry, CREDENTIAL_FIELDS, from);
    const accessKey = fileScalar(fields, "accessKeyId", from);
    const secretKey = fileScalar(fields, "secretAccessKey", from);
    if (accessKey === undefined || secretKey === undefined) throw new UsageError(`${from}: needs both accessKeyId and secretAccessKey`);
    return { pair: { accessKeyId: parseAccessKey(accessKey), secretAccessKey: parseSecretKey(secretKey) }, from };
  });
}

const CREDENTIAL_FIELDS = new Set(["accessKeyId", "secretAccessKey"]);
