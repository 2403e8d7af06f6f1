/**
 * `tessera gateway` as a real process: every bad flag, variable and file exits 2 with a
 * message naming it (and never a stack trace or a secret); good settings from a config file,
 * a credentials file and TESSERA_* variables start a gateway that listens, answers S3 and stops
 * cleanly on SIGTERM and SIGINT.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ListBucketsCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SupervisedChild, withoutTesseraSettings } from "../../bin/supervised-child.js";
import { GATEWAY_HEAP_GROWING_PERCENT } from "../../gateway/main.js";
import { PROCESS_START_TIMEOUT_MS, PROCESS_STOP_DEADLINE_MS, runTessera } from "../cluster-harness.js";

/** Six nodes nobody listens on: the gateway contacts nodes per request, never at start-up. */
const MAP = {
  epoch: 1,
  ec: { k: 4, m: 2 },
  nodes: Array.from({ length: 6 }, (_, index) => ({ id: `n${index + 1}`, url: `http://127.0.0.1:${index + 1}`, disks: [{ id: "d0" }] })),
};
const SECRET_KEY = "test-secret-value";

/** Processes spawned at once: each loads tsx and the gateway's modules; more only thrash two cores. */
const CLI_RUNS_CONCURRENT = 4;

let scratch: string;
const file = (name: string): string => join(scratch, name);

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "tessera-gateway-cli-"));
  const files: Record<string, string> = {
    "map.json": JSON.stringify(MAP),
    "small-map.json": JSON.stringify({ ...MAP, nodes: MAP.nodes.slice(0, 3) }),
    secret: `${randomBytes(32).toString("hex")}\n`,
    "short-secret": "too-short\n",
    "credentials.yaml": "- accessKeyId: file-key\n  secretAccessKey: file-secret-1\n- accessKeyId: other-key\n  secretAccessKey: other-secret-1\n",
    "credentials-mapping.yaml": "accessKeyId: file-key\nsecretAccessKey: file-secret-1\n",
    "credentials-short.json": JSON.stringify([{ accessKeyId: "ok-key", secretAccessKey: "ok-secret-1" }, { accessKeyId: "bad-one", secretAccessKey: "short" }]),
    "credentials-field.yaml": "- accessKey: file-key\n  secretAccessKey: file-secret-1\n",
    "credentials-half.yaml": "- accessKeyId: file-key\n",
    "config-field.yaml": "mapp: map.json\n",
    "config-broken.yaml": "map: [unclosed\n",
    "config-list.json": "[1, 2]",
  };
  await Promise.all(Object.entries(files).map(([name, text]) => writeFile(file(name), text, { mode: 0o600 })));
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

async function mapConcurrently<T, R>(items: readonly T[], concurrency: number, run: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let index = next++; index < items.length; index = next++) results[index] = await run(items[index] as T);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return results;
}

describe("tessera gateway: validation", () => {
  const base = (): string[] => ["gateway", "--map", file("map.json"), "--secret-file", file("secret"), "--listen", "127.0.0.1:0", "--access-key", "test-key", "--secret-key", SECRET_KEY];
  const without = (flag: string): string[] => {
    const args = base();
    args.splice(args.indexOf(flag), 2);
    return args;
  };
  const noKeys = (): string[] => without("--access-key").filter((arg, index, all) => arg !== "--secret-key" && all[index - 1] !== "--secret-key");

  // Arguments and environment are thunks: the scratch files exist only once beforeAll ran.
  const cases: Array<[string, () => string[], RegExp, (() => NodeJS.ProcessEnv)?]> = [
    ["unknown flag", () => [...base(), "--bogus"], /Unknown option '--bogus'/],
    ["a positional argument", () => [...base(), "extra"], /Unexpected argument 'extra'/],
    ["missing --map", () => without("--map"), /--map is required \(or TESSERA_MAP\)/],
    ["map that does not exist", () => [...without("--map"), "--map", file("nope.json")], /--map: cluster map .*nope\.json: cannot read the file \(ENOENT\)/],
    ["map with too few disks", () => [...without("--map"), "--map", file("small-map.json")], /--map: cluster map .*small-map\.json: ec\.k \+ ec\.m = 6 needs at least 6 disks, the map has 3/],
    ["bad map from the environment", () => without("--map"), /TESSERA_MAP: cluster map .*nope\.json: cannot read the file/, () => ({ TESSERA_MAP: "nope.json" })],
    ["missing --secret-file", () => without("--secret-file"), /--secret-file is required \(or TESSERA_SECRET_FILE\)/],
    ["secret too short", () => [...without("--secret-file"), "--secret-file", file("short-secret")], /--secret-file: secret file .*: the secret must be 32\.\.4096 bytes, got 9/],
    ["listen without a port", () => [...without("--listen"), "--listen", "127.0.0.1"], /--listen: '127\.0\.0\.1' is not HOST:PORT/],
    ["listen port out of range", () => [...without("--listen"), "--listen", "127.0.0.1:70000"], /--listen: port 70000 is over 65535/],
    ["bad TESSERA_PORT", () => without("--listen"), /TESSERA_PORT: 'http' is not a port number \(0\.\.65535\)/, () => ({ TESSERA_PORT: "http" })],
    ["bad access key", () => [...without("--access-key"), "--access-key", "a b"], /--access-key: 'a b' is not an access key \(3\.\.128 letters, digits, '\.', '_', '-'\)/],
    ["access key too short", () => [...without("--access-key"), "--access-key", "ab"], /--access-key: 'ab' is not an access key/],
    ["secret key too short", () => [...without("--secret-key"), "--secret-key", "short"], /--secret-key: must be at least 8 characters, got 5/],
    ["secret key with a space", () => [...without("--secret-key"), "--secret-key", "has a space"], /--secret-key: must be printable ASCII without spaces/],
    ["access key without its secret", () => without("--secret-key"), /--access-key: an access key needs its secret key/],
    ["secret key without its access key", () => noKeys(), /TESSERA_SECRET_KEY: a secret key needs its access key/, () => ({ TESSERA_SECRET_KEY: SECRET_KEY })],
    ["no credentials at all", () => noKeys(), /no credentials: give --access-key and --secret-key/],
    ["bad access key from the environment", () => noKeys(), /TESSERA_ACCESS_KEY: 'key\/with\/slashes' is not an access key/, () => ({ TESSERA_ACCESS_KEY: "key/with/slashes", TESSERA_SECRET_KEY: SECRET_KEY })],
    ["credentials file missing", () => [...base(), "--credentials-file", file("nope.yaml")], /--credentials-file .*nope\.yaml: cannot read it \(ENOENT\)/],
    ["credentials file not a list", () => [...base(), "--credentials-file", file("credentials-mapping.yaml")], /--credentials-file .*: must be a list of \{accessKeyId, secretAccessKey\}/],
    ["credentials entry with a short secret", () => [...base(), "--credentials-file", file("credentials-short.json")], /--credentials-file .*credentials-short\.json entry 2 field 'secretAccessKey': must be at least 8 characters, got 5/],
    ["credentials entry with an unknown field", () => [...base(), "--credentials-file", file("credentials-field.yaml")], /entry 1: unknown field 'accessKey'/],
    ["credentials entry without its secret", () => [...base(), "--credentials-file", file("credentials-half.yaml")], /entry 1: needs both accessKeyId and secretAccessKey/],
    ["an access key given twice", () => [...without("--access-key"), "--access-key", "file-key", "--credentials-file", file("credentials.yaml")], /entry 1: access key 'file-key' is already given by --access-key/],
    ["bad region", () => [...base(), "--region", "US_East"], /--region: 'US_East' is not a region name/],
    ["bad base domain", () => [...base(), "--base-domain", "localhost", "--base-domain", "not a host"], /--base-domain: 'not a host' is not a host name/],
    ["bad log level", () => [...base(), "--log-level", "loud"], /--log-level: 'loud' is not one of fatal, error, warn, info, debug, trace, silent/],
    ["config file missing", () => [...base(), "--config", file("nope.yaml")], /--config .*nope\.yaml: cannot read it \(ENOENT\)/],
    ["config file with an unknown field", () => [...base(), "--config", file("config-field.yaml")], /--config .*: unknown field 'mapp' \(known: map, secretFile/],
    ["config file that is not YAML", () => [...base(), "--config", file("config-broken.yaml")], /--config .*config-broken\.yaml: not valid YAML/],
    ["config file that is not a mapping", () => [...base(), "--config", file("config-list.json")], /--config .*config-list\.json: must be a mapping of fields/],
    ["config file from the environment", () => base(), /TESSERA_CONFIG .*config-field\.yaml: unknown field 'mapp'/, () => ({ TESSERA_CONFIG: file("config-field.yaml") })],
    ["small copies above the inline size", () => [...base(), "--small-copies-bytes", "65537"], /--small-copies-bytes: '65537' is not a size in bytes from 0 \(off\) to 65536/],
    ["small copies not a number", () => base(), /TESSERA_SMALL_COPIES_BYTES: '4k' is not a size in bytes/, () => ({ TESSERA_SMALL_COPIES_BYTES: "4k" })],
    ["bad heap growing percent", () => base(), /TESSERA_HEAP_GROWING_PERCENT: '1.5' is not a whole number of percent in 0\.\.900/, () => ({ TESSERA_HEAP_GROWING_PERCENT: "1.5" })],
  ];

  it("exits 2 with a message naming each bad flag, variable or file field", async () => {
    const results = await mapConcurrently(cases, CLI_RUNS_CONCURRENT, ([, args, , env]) => runTessera(args(), env?.()));
    results.forEach((result, index) => {
      const [name, , message] = cases[index] ?? ["?", () => [], /./];
      expect({ name, code: result.code, stdout: result.stdout }).toEqual({ name, code: 2, stdout: "" });
      expect(result.stderr, name).toMatch(/^tessera gateway: /);
      expect(result.stderr, name).toMatch(message);
      expect(result.stderr, name).toContain("(tessera gateway --help shows every flag)");
      expect(result.stderr, name).not.toMatch(/\n\s+at /);
      expect(result.stderr, name).not.toContain(SECRET_KEY);
    });
  });

  it("--help prints every flag and exits 0", async () => {
    const result = await runTessera(["gateway", "--help"]);
    expect(result.code).toBe(0);
    for (const flag of ["--map", "--secret-file", "--listen", "--access-key", "--secret-key", "--credentials-file", "--region", "--base-domain", "--config", "--log-level", "--small-copies-bytes"]) {
      expect(result.stdout).toContain(flag);
    }
  });

  it("tessera with no command prints the commands, gateway and local among them", async () => {
    const result = await runTessera([]);
    expect(result.code).toBe(2);
    expect(result.stdout).toMatch(/local .*npm start/);
    expect(result.stdout).toMatch(/gateway /);
  });
});

/** A port that was free a moment ago. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen({ host: "127.0.0.1", port: 0 }, resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address !== "object") throw new Error("no address");
  return address.port;
}

function startGateway(args: readonly string[], env: NodeJS.ProcessEnv): { child: SupervisedChild; output: () => string } {
  let output = "";
  const child = SupervisedChild.start({ name: "gateway", args: ["gateway", ...args], env: withoutTesseraSettings(process.env, env), detached: false, onLine: (line) => (output += `${line}\n`) });
  return { child, output: () => output };
}

describe("tessera gateway: serving", () => {
  it("starts from a config file, a credentials file and TESSERA_* variables; answers S3; SIGTERM stops it with exit 0", async () => {
    const config = file("gateway.yaml");
    await writeFile(config, `map: ${file("map.json")}\nlisten: 127.0.0.1:0\nregion: eu-test-1\ncredentialsFile: ${file("credentials.yaml")}\nbaseDomains: [s3.test]\nsmallCopiesBytes: 2048\n`);
    const { child, output } = startGateway(["--config", config], { TESSERA_SECRET_FILE: file("secret"), TESSERA_LOG_LEVEL: "info" });
    try {
      const { url, port } = await child.listening(PROCESS_START_TIMEOUT_MS);
      expect(url).toBe(`http://127.0.0.1:${port}`);
      expect(output()).toMatch(/"region":"eu-test-1"/);
      expect(output()).toContain(`"smallCopiesBytes":2048`);
      // The role's V8 heap tuning, applied and reported (core/role-process.ts).
      expect(output()).toContain(`"heapGrowingPercent":${GATEWAY_HEAP_GROWING_PERCENT}`);
      // Started by a supervisor: glibc's malloc settings were in its environment from the start.
      expect(output()).toContain(`"malloc":"MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072"`);
      const environ = (await readFile(`/proc/${child.pid}/environ`, "utf8")).split("\0");
      expect(environ).toEqual(expect.arrayContaining(["MALLOC_ARENA_MAX=2", "MALLOC_MMAP_THRESHOLD_=131072"]));
      const unsigned = await fetch(`${url}/`);
      expect(unsigned.status).toBe(403);
      expect(await unsigned.text()).toMatch(/<Code>AccessDenied<\/Code>/);
      // A key from the credentials file is accepted: the request gets past auth to the (absent) nodes.
      const s3 = new S3Client({ endpoint: url, region: "eu-test-1", forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: "other-key", secretAccessKey: "other-secret-1" } });
      const listing = await s3.send(new ListBucketsCommand({})).then(
        () => "ok",
        (error: { name?: string }) => error.name ?? "unknown",
      );
      s3.destroy();
      expect(listing).not.toMatch(/SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied/);
      const { status, forced } = await child.stop(PROCESS_STOP_DEADLINE_MS);
      expect({ status, forced }).toEqual({ status: { code: 0, signal: null }, forced: false });
      expect(output()).toMatch(/"msg":"stopped"/);
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("listens on TESSERA_PORT when --listen is not given, keeps its own MALLOC_ARENA_MAX, and stops on SIGINT with exit 0", async () => {
    const port = await freePort();
    // An operator's own malloc setting wins over the supervisor's.
    const { child, output } = startGateway(["--map", file("map.json"), "--secret-file", file("secret")], { TESSERA_PORT: String(port), TESSERA_ACCESS_KEY: "env-key", TESSERA_SECRET_KEY: SECRET_KEY, MALLOC_ARENA_MAX: "4" });
    try {
      expect((await child.listening(PROCESS_START_TIMEOUT_MS)).port).toBe(port);
      expect(output()).toContain(`"malloc":"MALLOC_ARENA_MAX=4 MALLOC_MMAP_THRESHOLD_=131072"`);
      child.kill("SIGINT");
      expect(await child.exited).toEqual({ code: 0, signal: null });
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("an explicit --listen wins over TESSERA_PORT", async () => {
    const { child } = startGateway(["--map", file("map.json"), "--secret-file", file("secret"), "--listen", "127.0.0.1:0"], { TESSERA_PORT: "1", TESSERA_ACCESS_KEY: "env-key", TESSERA_SECRET_KEY: SECRET_KEY });
    try {
      expect((await child.listening(PROCESS_START_TIMEOUT_MS)).port).not.toBe(1);
    } finally {
      await child.stop(PROCESS_STOP_DEADLINE_MS);
    }
  });
});
