/**
 * `tessera <role> [flags]`: dispatches to each role's entry point. Each role validates its
 * own flags and prints a clear message for a bad one (exit code 2), never a stack trace.
 */
export const USAGE = `usage: tessera <command> [flags]

commands:
  storage-node   run a storage node (tessera storage-node --help)
  help           show this message
`;

type Role = (argv: string[]) => Promise<number>;

const ROLES: Record<string, () => Promise<Role>> = {
  "storage-node": async () => (await import("../storage-node/main.js")).runStorageNode,
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
  const run = await load();
  return run(rest);
}
