/**
 * The pieces every `tessera` role uses to read its settings from flags, TESSERA_* environment
 * variables and a config file (YAML or JSON): one UsageError type, values that remember where
 * they came from (so a message names the flag, variable or file field), and the parsers that
 * are the same for every role (listen address, log level, cluster secret, small files).
 *
 * A UsageError's message is printed as is and the process exits 2, without a stack trace.
 * Nothing here knows any role's fields: each role lists its own (gateway/config.ts, ...).
 */
import { readFile, stat } from "node:fs/promises";
import { isIP } from "node:net";
import { extname } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { parse as parseYaml } from "yaml";
import { isTesseraError } from "./errors.js";
import { ClusterSecret } from "./internal-auth.js";

/** A config or credentials file bigger than this is the wrong file; also bounds what we read and parse. */
export const SETTINGS_FILE_BYTES_MAX = 1024 * 1024;
export const PORT_MAX = 65_535;
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_LEVEL_DEFAULT: LogLevel = "info";
const HOSTNAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** A bad flag, environment variable or config field: printed as is, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** A setting as given, with where it came from ("--listen", "TESSERA_LISTEN", "--config f field 'listen'"). */
export interface Given {
  readonly value: string;
  readonly from: string;
}

export function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

export function given(value: string | undefined, from: string): Given | undefined {
  return value === undefined ? undefined : { value, from };
}

/** Drops undefined fields, so spreading a higher-precedence source never erases a lower one's value. */
export function definedFields<T extends object>(settings: T): Partial<T> {
  return Object.fromEntries(Object.entries(settings).filter(([, value]) => value !== undefined)) as Partial<T>;
}

type FlagOptions = NonNullable<ParseArgsConfig["options"]>;

/** node's parseArgs, strict, no positionals; its messages name the flag ("Unknown option '--bogus'"). */
export function parseFlags<O extends FlagOptions>(argv: readonly string[], options: O): ReturnType<typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: false }>>["values"] {
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError(error instanceof Error ? (error.message.split("\n")[0] ?? error.message) : String(error));
  }
}

/** HOST:PORT or [IPV6]:PORT; port 0 asks the system for a free port. */
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

/** A port number alone (TESSERA_PORT); `lowest` is 0 where "any free port" makes sense, else 1. */
export function parsePort(port: Given, lowest: 0 | 1): number {
  const value = Number(port.value);
  if (!/^[0-9]{1,5}$/.test(port.value) || value < lowest || value > PORT_MAX) {
    throw new UsageError(`${port.from}: '${port.value}' is not a port number (${lowest}..${PORT_MAX})`);
  }
  return value;
}

export function isHostName(text: string): boolean {
  return HOSTNAME_PATTERN.test(text);
}

export function parseLogLevel(level: Given | undefined): LogLevel {
  if (level === undefined) return LOG_LEVEL_DEFAULT;
  const found = LOG_LEVELS.find((known) => known === level.value);
  if (found === undefined) throw new UsageError(`${level.from}: '${level.value}' is not one of ${LOG_LEVELS.join(", ")}`);
  return found;
}

/** The cluster secret file, or a UsageError naming where its path came from. */
export async function loadClusterSecret(file: Given): Promise<ClusterSecret> {
  try {
    return await ClusterSecret.fromFile(file.value);
  } catch (error) {
    if (isTesseraError(error, "ERR_INVALID_ARGUMENT")) throw new UsageError(`${file.from}: ${error.message}`);
    throw error;
  }
}

/** A small text file (config, credentials), refused when over SETTINGS_FILE_BYTES_MAX. */
export async function readSettingsText(path: string, where: string): Promise<string> {
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new UsageError(`${where}: not a regular file`);
    if (info.size > SETTINGS_FILE_BYTES_MAX) throw new UsageError(`${where}: over ${SETTINGS_FILE_BYTES_MAX} bytes; not a settings file`);
    return await readFile(path, "utf8");
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`${where}: cannot read it (${errnoOf(error)})`);
  }
}

/** A small YAML or JSON file (by extension: .json is JSON, anything else YAML), parsed. */
export async function readSettingsFile(path: string, where: string): Promise<unknown> {
  const text = await readSettingsText(path, where);
  const isJson = extname(path).toLowerCase() === ".json";
  try {
    return isJson ? (JSON.parse(text) as unknown) : (parseYaml(text) as unknown);
  } catch (error) {
    const reason = error instanceof Error ? (error.message.split("\n")[0] ?? error.message) : String(error);
    throw new UsageError(`${where}: not valid ${isJson ? "JSON" : "YAML"}: ${reason}`);
  }
}

/** A config file's top level: a mapping with only the `known` fields. */
export function settingsMapping(parsed: unknown, known: ReadonlySet<string>, where: string): Record<string, unknown> {
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new UsageError(`${where}: must be a mapping of fields`);
  const fields = parsed as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!known.has(key)) throw new UsageError(`${where}: unknown field '${key}' (known: ${[...known].join(", ")})`);
  }
  return fields;
}

/** A scalar config-file field as a Given (numbers become their decimal text). */
export function fileScalar(fields: Record<string, unknown>, key: string, where: string): Given | undefined {
  const value = fields[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string" && typeof value !== "number") throw new UsageError(`${where}: field '${key}' must be a string or number`);
  return { value: String(value), from: `${where} field '${key}'` };
}

/** A list-of-strings config-file field. */
export function fileStringList(fields: Record<string, unknown>, key: string, where: string): { values: string[]; from: string } | undefined {
  const value = fields[key];
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) throw new UsageError(`${where}: field '${key}' must be a list of strings`);
  return { values: value as string[], from: `${where} field '${key}'` };
}

/** The errno code of a failed system call ("ENOENT"), else the message. */
export function errnoOf(error: unknown): string {
  if (typeof error === "object" && error !== null && "code" in error && typeof error.code === "string") return error.code;
  return error instanceof Error ? error.message : String(error);
}
