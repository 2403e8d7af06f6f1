/**
 * HttpNodeClient's refused-connection hint (StorageNode.refusing): real sockets on 127.0.0.1.
 * A port nothing listens on refuses at once; any answer from it, even an error, clears the hint.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { REFUSED_HINT_MS, HttpNodeClient } from "../../core/http-node-client.js";
import { ClusterSecret } from "../../core/internal-auth.js";
import { isTesseraError } from "../../core/errors.js";

const servers: Server[] = [];
const clients: HttpNodeClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

/** A server that answers every request with `status`; resolves with its port. */
async function listen(status: number, port = 0): Promise<number> {
  const server = createServer((_request, response) => response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify({ code: "ERR_INTERNAL", message: "test" })));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

/** A port that was just free: a server bound it and let it go. */
async function freePort(): Promise<number> {
  const port = await listen(200);
  const server = servers.pop() as Server;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("HttpNodeClient.refusing", () => {
  it("is set by a refused connection, and cleared by the node's next answer, even an error", async () => {
    const port = await freePort();
    const client = new HttpNodeClient({ nodeId: "n1", url: `http://127.0.0.1:${port}`, secret: ClusterSecret.fromBytes(Buffer.alloc(32, 0xab)) });
    clients.push(client);
    expect(client.refusing()).toBe(false);
    const refused = await client.health().catch((error: unknown) => error);
    expect(isTesseraError(refused, "ERR_NODE_UNAVAILABLE")).toBe(true);
    expect(client.refusing()).toBe(true);
    await listen(500, port);
    const answered = await client.health().catch((error: unknown) => error);
    expect(isTesseraError(answered, "ERR_NODE_UNAVAILABLE")).toBe(true); // a 500: unavailable, but listening
    expect(client.refusing()).toBe(false);
  });

  it("lapses after REFUSED_HINT_MS without an exchange", async () => {
    const port = await freePort();
    const client = new HttpNodeClient({ nodeId: "n1", url: `http://127.0.0.1:${port}`, secret: ClusterSecret.fromBytes(Buffer.alloc(32, 0xab)) });
    clients.push(client);
    await client.health().catch(() => undefined);
    expect(client.refusing()).toBe(true);
    const now = Date.now();
    const realNow = Date.now;
    Date.now = () => now + REFUSED_HINT_MS + 1;
    try {
      expect(client.refusing()).toBe(false);
    } finally {
      Date.now = realNow;
    }
  });
});
