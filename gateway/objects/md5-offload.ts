/**
 * The MD5 of PUT bodies (the S3 ETag) computed in worker threads, so the gateway's event loop
 * only cuts, encodes and sends stripes while another core hashes. MD5 is the dearest step of
 * a PUT on the event loop (about 600 MB/s on a core, a third of the loop's time at 64 MiB).
 *
 * A body's pieces are gathered into batches of MD5_BATCH_BYTES, each copied once into a
 * buffer of its own and transferred (not cloned) to the body's worker, which hashes them in
 * order. A body that ends before its first batch fills (every small object) is hashed right
 * here: a round trip to a worker costs more than hashing a few KiB. At most
 * MD5_IN_FLIGHT_BYTES_MAX of a body wait for its worker: `update` returns a promise to
 * await when over it, so a slow worker slows the PUT instead of growing memory.
 */
import { createHash, type Hash } from "node:crypto";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { assert } from "../../core/assert.js";

const MiB = 1024 * 1024;
/** Bytes per message to a worker: one stripe; the copy costs about 5% of hashing it. */
export const MD5_BATCH_BYTES = 1 * MiB;
/** Bytes of one body queued at its worker before `update` makes the PUT wait. */
export const MD5_IN_FLIGHT_BYTES_MAX = 4 * MiB;
/**
 * Hashing threads: all cores but the event loop's, at least one. More only add contention:
 * one thread hashes a body's batches in order, so bodies are spread over them.
 */
export const MD5_WORKERS = Math.max(1, availableParallelism() - 1);

assert(MD5_IN_FLIGHT_BYTES_MAX >= 2 * MD5_BATCH_BYTES, "a batch can be filled while the previous one is hashed");

type ToWorker = { readonly id: number; readonly bytes: ArrayBuffer } | { readonly id: number; readonly end: "digest" | "drop" };
type FromWorker = { readonly id: number; readonly hashed: number } | { readonly id: number; readonly digest: Uint8Array };

/** The worker's code: plain JavaScript, so it runs whatever loader the gateway uses. */
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const hashes = new Map();
parentPort.on("message", (message) => {
  let hash = hashes.get(message.id);
  if (hash === undefined) { hash = createHash("md5"); hashes.set(message.id, hash); }
  if (message.bytes !== undefined) {
    hash.update(new Uint8Array(message.bytes));
    parentPort.postMessage({ id: message.id, hashed: message.bytes.byteLength });
    return;
  }
  hashes.delete(message.id);
  if (message.end === "digest") parentPort.postMessage({ id: message.id, digest: hash.digest() });
});
`;

interface Waiter {
  onHashed(bytes: number): void;
  onDigest(digest: Buffer): void;
  onFailure(error: Error): void;
}

/** One hashing thread and the bodies it hashes. */
class Md5Thread {
  readonly #worker: Worker;
  readonly #waiters = new Map<number, Waiter>();
  #failure: Error | undefined;

  constructor() {
    this.#worker = new Worker(WORKER_SOURCE, { eval: true });
    // An idle gateway must be able to exit; a thread with bodies in flight is waited for by their PUTs.
    this.#worker.unref();
    this.#worker.on("message", (message: FromWorker) => {
      const waiter = this.#waiters.get(message.id);
      // A dropped body's batches are still acknowledged as the worker hashes them: ignored.
      if (waiter === undefined) return;
      if ("hashed" in message) waiter.onHashed(message.hashed);
      else waiter.onDigest(Buffer.from(message.digest.buffer, message.digest.byteOffset, message.digest.byteLength));
    });
    this.#worker.on("error", (error) => this.#fail(error));
    this.#worker.on("exit", (code) => this.#fail(new Error(`the MD5 worker exited (code ${code})`)));
  }

  get failed(): boolean {
    return this.#failure !== undefined;
  }

  get load(): number {
    return this.#waiters.size;
  }

  open(id: number, waiter: Waiter): void {
    if (this.#failure !== undefined) throw this.#failure;
    this.#waiters.set(id, waiter);
  }

  close(id: number): void {
    this.#waiters.delete(id);
  }

  post(message: ToWorker): void {
    if (this.#failure !== undefined) throw this.#failure;
    this.#worker.postMessage(message, "bytes" in message ? [message.bytes] : []);
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const waiter of this.#waiters.values()) waiter.onFailure(error);
    this.#waiters.clear();
  }
}

let threads: Md5Thread[] = [];
let nextBodyId = 1;

function leastLoadedThread(): Md5Thread {
  threads = threads.filter((thread) => !thread.failed);
  while (threads.length < MD5_WORKERS) threads.push(new Md5Thread());
  return threads.reduce((best, thread) => (thread.load < best.load ? thread : best));
}

/** The MD5 of one body, fed piece by piece in order; `digest` once at the end. */
export class OffloadedMd5 {
  #batch: Buffer[] = [];
  #batchBytes = 0;
  #thread: Md5Thread | undefined;
  readonly #id = nextBodyId++;
  #inFlightBytes = 0;
  #failure: Error | undefined;
  #drained: (() => void) | undefined;
  #digest: { resolve: (digest: Buffer) => void; reject: (error: Error) => void } | undefined;
  #ended = false;

  /** Adds `piece` (read now, never kept past the call's end: it is copied into a batch). Await the result when it is a promise. */
  update(piece: Buffer): Promise<void> | undefined {
    assert(!this.#ended, "no update after digest");
    if (this.#failure !== undefined) throw this.#failure;
    if (piece.length === 0) return undefined;
    this.#batch.push(piece);
    this.#batchBytes += piece.length;
    if (this.#batchBytes < MD5_BATCH_BYTES) return undefined;
    this.#send();
    if (this.#inFlightBytes <= MD5_IN_FLIGHT_BYTES_MAX) return undefined;
    return new Promise<void>((resolve) => (this.#drained = resolve));
  }

  /** The MD5 of everything fed. Bodies that never filled a batch are hashed here, at once. */
  async digest(): Promise<Buffer> {
    assert(!this.#ended, "one digest per body");
    this.#ended = true;
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#thread === undefined) return this.#batch.reduce((hash: Hash, piece) => hash.update(piece), createHash("md5")).digest();
    if (this.#batchBytes > 0) this.#send();
    const thread = this.#thread;
    const digest = new Promise<Buffer>((resolve, reject) => (this.#digest = { resolve, reject }));
    thread.post({ id: this.#id, end: "digest" });
    return digest;
  }

  /** The body failed: the worker forgets its state (a body that was never sent costs nothing). */
  drop(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#thread !== undefined && !this.#thread.failed) {
      this.#thread.post({ id: this.#id, end: "drop" });
      this.#thread.close(this.#id);
    }
  }

  #send(): void {
    if (this.#thread === undefined) {
      this.#thread = leastLoadedThread();
      this.#thread.open(this.#id, {
        onHashed: (bytes) => this.#onHashed(bytes),
        onDigest: (digest) => this.#onDigest(digest),
        onFailure: (error) => this.#onFailure(error),
      });
    }
    // One copy, into memory of our own, which is then moved to the worker, not cloned.
    const bytes = new ArrayBuffer(this.#batchBytes);
    const view = Buffer.from(bytes);
    let at = 0;
    for (const piece of this.#batch) at += piece.copy(view, at);
    assert(at === this.#batchBytes, "the batch is copied whole");
    this.#batch = [];
    this.#batchBytes = 0;
    this.#inFlightBytes += at;
    this.#thread.post({ id: this.#id, bytes });
  }

  #onHashed(bytes: number): void {
    this.#inFlightBytes -= bytes;
    if (this.#inFlightBytes <= MD5_IN_FLIGHT_BYTES_MAX) this.#wake();
  }

  #onDigest(digest: Buffer): void {
    this.#thread?.close(this.#id);
    this.#digest?.resolve(digest);
  }

  #onFailure(error: Error): void {
    this.#failure = error;
    this.#wake();
    this.#digest?.reject(error);
  }

  #wake(): void {
    const wake = this.#drained;
    this.#drained = undefined;
    wake?.();
  }
}
