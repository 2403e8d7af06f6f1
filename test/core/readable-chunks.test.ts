/**
 * readableChunks (core/readable-chunks.ts): every chunk as it was pushed (never joined), in
 * order; the stream's error is thrown; a stream that closes before its end
 * is an error, not a short body; stopping early destroys the stream.
 */
import { PassThrough, Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { readableChunks } from "../../core/readable-chunks.js";
import { Prng, seedFromEnv } from "../prng.js";

const seed = seedFromEnv(0xc4a2c5);

describe(`readableChunks (seed ${seed})`, () => {
  it("yields each chunk as written, even when many wait (a Readable's own iterator joins them)", async () => {
    const prng = new Prng(seed);
    const chunks = Array.from({ length: 64 }, () => prng.bytes(prng.int(1, 64 * 1024)));
    const stream = new PassThrough();
    for (const chunk of chunks) stream.write(chunk);
    stream.end();
    const seen: Buffer[] = [];
    for await (const chunk of readableChunks(stream)) {
      seen.push(chunk);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(seen.length).toBe(chunks.length);
    seen.forEach((chunk, index) => expect(chunk.equals(chunks[index] as Buffer)).toBe(true));
  });

  it("throws the stream's error", async () => {
    const stream = new PassThrough();
    stream.write(Buffer.from("abc"));
    setImmediate(() => stream.destroy(new Error("peer reset")));
    await expect((async () => {
      for await (const chunk of readableChunks(stream)) void chunk;
    })()).rejects.toThrow("peer reset");
  });

  it("treats a close before the end as an error", async () => {
    const stream = new PassThrough();
    stream.write(Buffer.from("abc"));
    setImmediate(() => stream.destroy());
    await expect((async () => {
      for await (const chunk of readableChunks(stream)) void chunk;
    })()).rejects.toThrow("closed before its end");
  });

  it("destroys the stream when the consumer stops early", async () => {
    const stream = Readable.from([Buffer.from("a"), Buffer.from("b"), Buffer.from("c")], { objectMode: false });
    for await (const chunk of readableChunks(stream)) {
      expect(chunk.toString()).toBe("a");
      break;
    }
    expect(stream.destroyed).toBe(true);
  });
});
