/**
 * `tessera heal ...` and `tessera cluster ...`: the operator's commands. Those that ask a
 * running gateway go through its admin API (SigV4 with the gateway's S3 keys); the map edits
 * change the map file (raising its epoch) and, with --reload, tell the gateway to load it.
 */
import { UsageError, nonEmpty, parseFlags } from "../core/settings.js";
import { AdminApiError, AdminClient } from "../gateway/healer/admin-client.js";
import { renderClusterStatus, renderHealStatus } from "./admin-format.js";
import { applyEdit, readRawMap, writeRawMap, type MapEdit, type RawDisk } from "./map-edit.js";

/** Where the gateway is by default: what `npm start` runs. */
export const ENDPOINT_DEFAULT = "http://127.0.0.1:9000";
/** `tessera heal status --watch` refreshes this often unless told otherwise. */
export const WATCH_INTERVAL_SECONDS_DEFAULT = 2;
/** The development keys of `tessera local` (public; README says so): the default for a local cluster. */
const DEV_CREDENTIALS = { accessKeyId: "tessera-dev", secretAccessKey: "tessera-dev-secret" };

export const HEAL_USAGE = `usage: tessera heal <command> [flags]

commands:
  status [--watch] [--interval SECONDS] [--json]   progress: scanned, queued, repaired, failed, at risk, MB/s, ETA
  scan [--kind scan|scrub|rebalance]               start a scan now (scrub: read and verify every shard)
  throttle [--concurrency N] [--bandwidth BYTES]   change the rebuild limits at run time (bandwidth: "50MiB", 0 = unlimited)
  repair --bucket B --key K [--verify]             repair one object now and print what was done

${"gateway flags (every command)"}:
  --endpoint URL        the gateway (env TESSERA_ENDPOINT; default ${ENDPOINT_DEFAULT})
  --access-key KEY      one of the gateway's S3 keys (env TESSERA_ACCESS_KEY; default the tessera local dev key)
  --secret-key SECRET   its secret (env TESSERA_SECRET_KEY)
  --region REGION       the gateway's region (env TESSERA_REGION; default us-east-1)
`;

export const CLUSTER_USAGE = `usage: tessera cluster <command> [flags]

commands:
  status [--json]                                   nodes, disks, states, usage (asks the gateway)
  reload                                            make the gateway load its map file again (as SIGHUP does)
  add-node --map FILE --id ID --url URL [--zone Z] --disk ID[:WEIGHT] ...   add a node; its disks fill up over time
  remove-node --map FILE --id ID                    decommission: the node leaves the map, the healer moves its shards off
  add-disk --map FILE --node ID --disk ID[:WEIGHT]  add a disk to a node
  remove-disk --map FILE --node ID --disk ID        drain a disk (its shards move to the others)
  set-weight --map FILE --node ID --disk ID --weight W   re-weight a disk (shards move to match)

Map edits raise the map's epoch and write the file; add --reload to tell the gateway at once
(it also takes the gateway flags of \`tessera heal --help\`). Every gateway of the cluster must load the same map.
`;

const GATEWAY_FLAGS = {
  endpoint: { type: "string" },
  "access-key": { type: "string" },
  "secret-key": { type: "string" },
  region: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

type Flags = Record<string, string | boolean | string[] | undefined>;

function client(flags: Flags, env: NodeJS.ProcessEnv): AdminClient {
  const accessKey = (flags["access-key"] as string | undefined) ?? nonEmpty(env.TESSERA_ACCESS_KEY);
  const secretKey = (flags["secret-key"] as string | undefined) ?? nonEmpty(env.TESSERA_SECRET_KEY);
  if ((accessKey === undefined) !== (secretKey === undefined)) throw new UsageError("give both --access-key and --secret-key (or TESSERA_ACCESS_KEY and TESSERA_SECRET_KEY), or neither for the tessera local dev key");
  const endpoint = (flags.endpoint as string | undefined) ?? nonEmpty(env.TESSERA_ENDPOINT) ?? ENDPOINT_DEFAULT;
  try {
    new URL(endpoint);
  } catch {
    throw new UsageError(`--endpoint: '${endpoint}' is not a URL`);
  }
  const credentials = accessKey === undefined || secretKey === undefined ? DEV_CREDENTIALS : { accessKeyId: accessKey, secretAccessKey: secretKey };
  return new AdminClient({ endpoint, credentials, region: (flags.region as string | undefined) ?? nonEmpty(env.TESSERA_REGION) ?? "us-east-1" });
}

function wholeFlag(flags: Flags, name: string, min: number): number | undefined {
  const text = flags[name] as string | undefined;
  if (text === undefined) return undefined;
  const value = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < min) throw new UsageError(`--${name}: must be a whole number >= ${min}, got '${text}'`);
  return value;
}

const print = (text: string): void => void process.stdout.write(text);

async function healStatus(flags: Flags, env: NodeJS.ProcessEnv): Promise<void> {
  const admin = client(flags, env);
  const interval = wholeFlag(flags, "interval", 1) ?? WATCH_INTERVAL_SECONDS_DEFAULT;
  for (;;) {
    const status = await admin.healStatus();
    const text = flags.json === true ? `${JSON.stringify(status, null, 2)}\n` : renderHealStatus(status);
    if (flags.watch === true && process.stdout.isTTY) print(`\x1b[H\x1b[2J${text}`);
    else print(flags.watch === true ? `${new Date().toISOString()}\n${text}` : text);
    if (flags.watch !== true) return;
    await new Promise((resolve) => setTimeout(resolve, interval * 1000));
  }
}

const HEAL_COMMANDS: Record<string, { flags: Record<string, { type: "string" | "boolean" }>; run: (flags: Flags, env: NodeJS.ProcessEnv) => Promise<void> }> = {
  status: { flags: { watch: { type: "boolean" }, interval: { type: "string" }, json: { type: "boolean" } }, run: healStatus },
  scan: {
    flags: { kind: { type: "string" } },
    run: async (flags, env) => {
      const kind = (flags.kind as string | undefined) ?? "scan";
      if (kind !== "scan" && kind !== "scrub" && kind !== "rebalance") throw new UsageError(`--kind: must be scan, scrub or rebalance, got '${kind}'`);
      print(`${JSON.stringify(await client(flags, env).requestScan(kind))}\n`);
    },
  },
  throttle: {
    flags: { concurrency: { type: "string" }, bandwidth: { type: "string" } },
    run: async (flags, env) => {
      const concurrency = wholeFlag(flags, "concurrency", 1);
      const bandwidth = flags.bandwidth as string | undefined;
      print(`${JSON.stringify(await client(flags, env).throttle({ ...(concurrency === undefined ? {} : { concurrency }), ...(bandwidth === undefined ? {} : { bandwidth }) }))}\n`);
    },
  },
  repair: {
    flags: { bucket: { type: "string" }, key: { type: "string" }, verify: { type: "boolean" } },
    run: async (flags, env) => {
      const bucket = flags.bucket as string | undefined;
      const key = flags.key as string | undefined;
      if (bucket === undefined || key === undefined) throw new UsageError("--bucket and --key are required");
      print(`${JSON.stringify(await client(flags, env).repair(bucket, key, flags.verify === true), null, 2)}\n`);
    },
  },
};

function diskFlag(text: string): RawDisk {
  const [id, weight] = text.split(":");
  if (id === undefined || id === "") throw new UsageError(`--disk: '${text}' is not ID or ID:WEIGHT`);
  if (weight === undefined) return { id };
  const value = Number(weight);
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`--disk: the weight in '${text}' must be a positive number`);
  return { id, weight: value };
}

function required(flags: Flags, name: string): string {
  const value = flags[name];
  if (typeof value !== "string" || value === "") throw new UsageError(`--${name} is required`);
  return value;
}

function mapEdit(command: string, flags: Flags): MapEdit {
  switch (command) {
    case "add-node": {
      const disks = ((flags.disk as string[] | undefined) ?? []).map(diskFlag);
      if (disks.length === 0) throw new UsageError("--disk is required (repeat it for each disk: --disk d0 --disk d1:2)");
      const zone = flags.zone as string | undefined;
      return { kind: "add-node", node: { id: required(flags, "id"), url: required(flags, "url"), ...(zone === undefined ? {} : { zone }), disks } };
    }
    case "remove-node":
      return { kind: "remove-node", nodeId: required(flags, "id") };
    case "add-disk":
      return { kind: "add-disk", nodeId: required(flags, "node"), disk: diskFlag(((flags.disk as string[] | undefined) ?? [])[0] ?? required(flags, "disk")) };
    case "remove-disk":
      return { kind: "remove-disk", nodeId: required(flags, "node"), diskId: ((flags.disk as string[] | undefined) ?? [])[0] ?? required(flags, "disk") };
    default: {
      const weight = Number(required(flags, "weight"));
      if (!Number.isFinite(weight) || weight <= 0) throw new UsageError(`--weight: must be a positive number, got '${String(flags.weight)}'`);
      return { kind: "set-weight", nodeId: required(flags, "node"), diskId: ((flags.disk as string[] | undefined) ?? [])[0] ?? required(flags, "disk"), weight };
    }
  }
}

const MAP_EDIT_FLAGS = { map: { type: "string" }, id: { type: "string" }, url: { type: "string" }, zone: { type: "string" }, node: { type: "string" }, disk: { type: "string", multiple: true }, weight: { type: "string" }, reload: { type: "boolean" } } as const;

async function editMap(command: string, flags: Flags, env: NodeJS.ProcessEnv): Promise<void> {
  const path = required(flags, "map");
  const raw = await readRawMap(path);
  const next = applyEdit(raw, mapEdit(command, flags), path);
  await writeRawMap(path, next);
  print(`${path}: ${command} done, epoch ${raw.epoch} -> ${next.epoch}\n`);
  if (flags.reload === true) print(`gateway: ${JSON.stringify(await client(flags, env).reload())}\n`);
  else print("now load it: tessera cluster reload (or kill -HUP <gateway pid>) on every gateway; tessera heal status --watch follows the moves\n");
}

async function runSubcommand(usage: string, commands: Record<string, { flags: Record<string, unknown>; run: (flags: Flags, env: NodeJS.ProcessEnv) => Promise<void> }>, argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    print(usage);
    return command === undefined ? 2 : 0;
  }
  const found = commands[command];
  try {
    if (found === undefined) throw new UsageError(`unknown command '${command}'`);
    const flags = parseFlags(rest, { ...GATEWAY_FLAGS, ...found.flags } as typeof GATEWAY_FLAGS) as Flags;
    if (flags.help === true) {
      print(usage);
      return 0;
    }
    await found.run(flags, env);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`tessera: ${error.message}\n\n${usage}`);
      return 2;
    }
    if (error instanceof AdminApiError) {
      process.stderr.write(`tessera: the gateway refused: ${error.code}: ${error.message}\n`);
      return 1;
    }
    const code = (error as { code?: string }).code;
    if (code === "ECONNREFUSED" || code === "UND_ERR_CONNECT_TIMEOUT") {
      process.stderr.write(`tessera: cannot reach the gateway (${code}); is it running? (--endpoint, TESSERA_ENDPOINT)\n`);
      return 1;
    }
    throw error;
  }
}

export async function runHeal(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return runSubcommand(HEAL_USAGE, HEAL_COMMANDS, argv, env);
}

const CLUSTER_COMMANDS: Record<string, { flags: Record<string, unknown>; run: (flags: Flags, env: NodeJS.ProcessEnv) => Promise<void> }> = {
  status: {
    flags: { json: { type: "boolean" } },
    run: async (flags, env) => {
      const status = await client(flags, env).clusterStatus();
      print(flags.json === true ? `${JSON.stringify(status, null, 2)}\n` : renderClusterStatus(status));
    },
  },
  reload: { flags: {}, run: async (flags, env) => print(`${JSON.stringify(await client(flags, env).reload())}\n`) },
  ...Object.fromEntries(["add-node", "remove-node", "add-disk", "remove-disk", "set-weight"].map((command) => [command, { flags: MAP_EDIT_FLAGS, run: (flags: Flags, env: NodeJS.ProcessEnv) => editMap(command, flags, env) }])),
};

export async function runCluster(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return runSubcommand(CLUSTER_USAGE, CLUSTER_COMMANDS, argv, env);
}
