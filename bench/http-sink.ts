/**
 * The loopback HTTP ceiling's other end: a node:http server in its own process that reads and
 * discards every request body (PUT /), or answers GET /?bytes=N with N bytes from one reused
 * buffer. What a hop costs with no work at either end. `node --import tsx bench/http-sink.ts`.
 */
import { createServer } from "node:http";
import { announceListening } from "./child.js";
import { MiB } from "./limits.js";

/** Bytes per response write: large enough that syscalls do not dominate. */
const RESPONSE_PIECE_BYTES = 1 * MiB;
/** Largest GET answered: a ceiling run's object, never more. */
const RESPONSE_BYTES_MAX = 4096 * MiB;

const piece = Buffer.alloc(RESPONSE_PIECE_BYTES, 0x5a);

const server = createServer((request, response) => {
  if (request.method === "PUT") {
    request.on("data", () => undefined);
    request.on("end", () => response.writeHead(200, { "content-length": "0" }).end());
    return;
  }
  const bytes = Number(new URL(request.url ?? "/", "http://sink").searchParams.get("bytes") ?? "0");
  if (!Number.isSafeInteger(bytes) || bytes < 0 || bytes > RESPONSE_BYTES_MAX) {
    response.writeHead(400).end();
    return;
  }
  response.writeHead(200, { "content-length": String(bytes) });
  let left = bytes;
  const more = (): void => {
    while (left > 0) {
      const take = Math.min(left, piece.length);
      left -= take;
      if (!response.write(take === piece.length ? piece : piece.subarray(0, take))) {
        response.once("drain", more);
        return;
      }
    }
    response.end();
  };
  more();
});
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("a TCP server has a port");
  announceListening(address.port);
});
process.once("SIGTERM", () => server.close(() => process.exit(0)));
