/**
 * `tessera <command> [flags]`: dispatches to each role's entry point. Each validates its own
 * flags and prints a clear message for a bad one (exit code 2), never a stack trace.
 */
export const USAGE = `usage: tessera <command> [flags]

commands:
  local          run a whole local cluster: 6 storage nodes and a gateway (what \`npm start\` runs)
  gateway        run an S3 gateway over the storage nodes of a cluster map (tessera gateway --help)
  storage-node   run a storage node (tessera storage-node --help)
  heal           see and steer the healer of a running gateway (tessera heal --help)
  cluster        cluster status, map reloads, and node add / remove / decommission (tessera cluster --help)
  help           show this message
`;

/**
 * How often a supervised process checks that its supervisor still lives: an orphan left by a
 * supervisor that was SIGKILLed lingers at most this long. A check is one getppid() call.
 */
export const SUPERVISOR_CHECK_INTERVAL_MS = 1_000;
/** Set by `tessera local` and the test harness (bin/supervised-child.ts) on every child. */
export const SUPERVISOR_PID_VARIABLE = "TESSERA_SUPERVISOR_PID";

type Role = (argv: string[]) => Promise<number>;

const ROLES: Record<string, () => Promise<Role>> = {
  local: async () => (await import("./local-cluster.js")).runLocalCluster,
  gateway: async () => (await import("../gateway/main.js")).runGateway,
  "storage-node": async () => (await import("../storage-node/main.js")).runStorageNode,
  heal: async () => (await import("./admin-cli.js")).runHeal,
  cluster: async () => (await import("./admin-cli.js")).runCluster,
};

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  const load = ROLES[command];
  if (load === undefined) {
    process.stderr.write(`tessera: unknown command '${command}'\n\n${USAGE}`);
    return 2;
  }
  exitWithSupervisor(process.env);
  const run = await load();
  return run(rest);
}

/**
 * A child of `tessera local` stops itself (SIGTERM to itself: the role's clean shutdown) once
 * its supervisor is gone, even if the supervisor died by SIGKILL and could not stop it.
 */
function exitWithSupervisor(env: NodeJS.ProcessEnv): void {
  const supervisor = Number(env[SUPERVISOR_PID_VARIABLE]);
  if (!Number.isSafeInteger(supervisor) || supervisor <= 1) return;
  const check = (): void => {
    if (process.ppid === supervisor) return;
    clearInterval(timer);
    process.kill(process.pid, "SIGTERM");
  };
  const timer = setInterval(check, SUPERVISOR_CHECK_INTERVAL_MS);
  timer.unref();
  check();
}
