/**
 * The baseline server process: s3rver (a single-node S3 server in Node, no erasure coding) on
 * a free loopback port, storing under the directory given. Run by bench/targets.ts:
 * `node --import tsx bench/baseline-server.ts DIR`. Its credentials are fixed (bench/targets.ts).
 */
import S3rver from "s3rver";
import { announceListening } from "./child.js";

async function main(directory: string | undefined): Promise<void> {
  if (directory === undefined) throw new Error("usage: baseline-server.ts DIR");
  const server = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory });
  const { port } = await server.run();
  announceListening(port);
  const stop = (): void => {
    void server.close().finally(() => process.exit(0));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

await main(process.argv[2]);
