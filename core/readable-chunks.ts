/**
 * A Readable's chunks as an async iterable, each chunk as it arrived. A Readable's own async
 * iterator calls read(), which joins everything buffered into one new Buffer: under load
 * (several chunks waiting) that is a copy of every byte, which profiles of the gateway show
 * as a tenth of its GET path. Here chunks are queued as 'data' events deliver them, the
 * stream is paused while CHUNKS_QUEUED_BYTES_MAX wait, and nothing is copied.
 */
import type { Readable } from "node:stream";
import { assert } from "./assert.js";

/** Bytes queued before the stream is paused: a few network reads (64 KiB each), as a Readable buffers by default. */
export const CHUNKS_QUEUED_BYTES_MAX = 256 * 1024;

export interface ReadableChunksOptions {
  /**
   * Destroy the stream when the consumer stops early (break, throw), as `for await` over it
   * would; default true. A server that still answers the request after refusing its body
   * keeps it (it drains the rest itself).
   */
  readonly destroyOnReturn?: boolean;
}

/** Yields the chunks of `stream` (a byte stream, not object mode); errors of the stream are thrown. */
export async function* readableChunks(stream: Readable, options: ReadableChunksOptions = {}): AsyncGenerator<Buffer> {
  assert(!stream.readableObjectMode, "a byte stream");
  const queue: Buffer[] = [];
  let queuedBytes = 0;
  let ended = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const waiting = wake;
    wake = undefined;
    waiting?.();
  };
  const onData = (chunk: Buffer): void => {
    queue.push(chunk);
    queuedBytes += chunk.length;
    if (queuedBytes >= CHUNKS_QUEUED_BYTES_MAX) stream.pause();
    notify();
  };
  const onEnd = (): void => {
    ended = true;
    notify();
  };
  const onError = (error: unknown): void => {
    failure ??= { error };
    notify();
  };
  // A stream destroyed without an error (the peer went away) must not end the body cleanly.
  const onClose = (): void => {
    if (!ended) failure ??= { error: new Error("stream closed before its end") };
    notify();
  };
  stream.on("data", onData);
  stream.once("end", onEnd);
  stream.once("error", onError);
  stream.once("close", onClose);
  try {
    for (;;) {
      const chunk = queue.shift();
      if (chunk !== undefined) {
        queuedBytes -= chunk.length;
        if (queuedBytes < CHUNKS_QUEUED_BYTES_MAX && stream.isPaused()) stream.resume();
        yield chunk;
      } else if (failure !== undefined) {
        throw failure.error;
      } else if (ended) {
        return;
      } else {
        await new Promise<void>((resolve) => (wake = resolve));
      }
    }
  } finally {
    stream.off("data", onData);
    stream.off("end", onEnd);
    stream.off("error", onError);
    stream.off("close", onClose);
    // Nobody listens any more: a late error must not become an uncaught 'error' event.
    if (failure === undefined) stream.on("error", () => undefined);
    if (!ended && !stream.destroyed && options.destroyOnReturn !== false) stream.destroy();
  }
}
