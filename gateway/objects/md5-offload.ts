/**
 * The MD5 of PUT bodies (the S3 ETag) computed in worker threads, so the gateway's event loop
 * only cuts, encodes and sends stripes while another core hashes. MD5 is the dearest step of
 * a PUT on the event loop (about 600 MB/s on a core, a third of the loop's time at 64 MiB).
 *
 * A body's pieces are gathered into batches of MD5_BATCH_BYTES, each copied once into a
 * pooled buffer that is transferred (not cloned) to the body's worker, which hashes them in
 * order and transfers the buffer back for reuse: fresh buffers would pile up as garbage in the
 * worker, whose GC hardly runs (tens of MiB of gateway RSS during a large PUT). A body that ends before its first batch fills (every small object) is hashed right
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
/**
 * Bytes of one body queued at its worker before `update` makes the PUT wait: one batch being
 * hashed and one waiting. Every concurrent PUT holds this much more gateway memory.
 */
export const MD5_IN_FLIGHT_BYTES_MAX = 2 * MiB;
/**
 * Hashing threads: all cores but the event loop's, at least one. More only add contention:
 * one thread hashes a body's batches in order, so bodies are spread over them.
 */
export const MD5_WORKERS = Math.max(1, availableParallelism() - 1);

/** Batch buffers kept for reuse (1 MiB each): eight PUTs at the in-flight bound; more are allocated and dropped. */
export const MD5_POOLED_BUFFERS_MAX = 16;
/**
 * The pool is emptied once no batch buffer has been taken for this long. It serves bursts of
 * concurrent large PUTs; kept through a quiet spell it is up to 16 MiB that GETs and the
 * healer could use (a heap snapshot taken while the healer rebuilt an emptied node, with no
 * PUT running, found 13 of its buffers: the largest group of the gateway's live ArrayBuffers).
 * Ten seconds: a pause between PUTs costs nothing; the first PUT after a quiet spell allocates.
 */
export const MD5_POOL_IDLE_MS = 10_000;

assert(MD5_IN_FLIGHT_BYTES_MAX >= 2 * MD5_BATCH_BYTES, "a batch can be filled while the previous one is hashed");

type ToWorker = { readonly id: number; readonly bytes: ArrayBuffer; readonly length: number } | { readonly id: number; readonly end: "digest" | "drop" };
type FromWorker = { readonly id: number; readonly hashed: number; readonly bytes: ArrayBuffer } | { readonly id: number; readonly digest: Uint8Array };

const pooledBuffers: ArrayBuffer[] = [];
/** When a batch buffer was last taken (Date.now()). */
let lastTakenAt = 0;
/** Runs while the pool holds buffers: empties it once idle (MD5_POOL_IDLE_MS). */
let idleTimer: NodeJS.Timeout | undefined;

function batchBuffer(): ArrayBuffer {
  lastTakenAt = Date.now();
  return pooledBuffers.pop() ?? new ArrayBuffer(MD5_BATCH_BYTES);
}

function recycle(buffer: ArrayBuffer): void {
  if (buffer.byteLength !== MD5_BATCH_BYTES || pooledBuffers.length >= MD5_POOLED_BUFFERS_MAX) return;
  pooledBuffers.push(buffer);
  idleTimer ??= setTimeout(checkIdle, MD5_POOL_IDLE_MS).unref();
}

function checkIdle(): void {
  idleTimer = undefined;
  trimIdleMd5Pool(Date.now());
  // Taken from since: look again when it would have been idle that long.
  if (pooledBuffers.length > 0) idleTimer = setTimeout(checkIdle, Math.max(1, lastTakenAt + MD5_POOL_IDLE_MS - Date.now())).unref();
}

/** Empties the pool if no buffer was taken in the MD5_POOL_IDLE_MS before `now`; returns how many it dropped. */
export function trimIdleMd5Pool(now: number): number {
  if (now - lastTakenAt < MD5_POOL_IDLE_MS) return 0;
  const dropped = pooledBuffers.length;
  pooledBuffers.length = 0;
  return dropped;
}

/** Batch buffers pooled now (tests). */
export function md5PooledBuffers(): number {
  return pooledBuffers.length;
}

/** The worker's code: plain JavaScript, so it runs whatever loader the gateway uses. */
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const hashes = new Map();
parentPort.on("message", (message) => {
  let hash = hashes.get(message.id);
  if (hash === undefined) { hash = createHash("md5"); hashes.set(message.id, hash); }
  if (message.bytes !== undefined) {
    hash.update(new Uint8Array(message.bytes, 0, message.length));
    parentPort.postMessage({ id: message.id, hashed: message.length, bytes: message.bytes }, [message.bytes]);
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
    this.#worker.on("message", (message: FromWorker) => {
      if ("bytes" in message) recycle(message.bytes);
      const waiter = this.#waiters.get(message.id);
      // A dropped body's batches are still acknowledged as the worker hashes them: ignored.
      if (waiter === undefined) return;
      if ("hashed" in message) waiter.onHashed(message.hashed);
      else waiter.onDigest(Buffer.from(message.digest.buffer, message.digest.byteOffset, message.digest.byteLength));
    });
    this.#worker.on("error", (error) => this.#fail(error));
    this.#worker.on("exit", (code) => this.#fail(new Error(`the MD5 worker exited (code ${code})`)));
    // An idle gateway must be able to exit; a thread with bodies in flight is waited for by
    // their PUTs. After the listeners: adding a "message" listener refs the worker's port
    // again, and an unref before it left every gateway that had hashed a body unable to exit.
    this.#worker.unref();
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

  /** Adds `piece` (kept by reference until its batch is copied). Await the result when it is a promise. */
  update(piece: Buffer): Promise<void> | undefined {
    assert(!this.#ended, "no update after digest");
    if (this.#failure !== undefined) throw this.#failure;
    if (piece.length === 0) return undefined;
    this.#batch.push(piece);
    this.#batchBytes += piece.length;
    while (this.#batchBytes >= MD5_BATCH_BYTES) this.#send(MD5_BATCH_BYTES);
    if (this.#inFlightBytes <= MD5_IN_FLIGHT_BYTES_MAX) return undefined;
    return new Promise<void>((resolve) => (this.#drained = resolve));
  }

  /** The MD5 of everything fed. Bodies that never filled a batch are hashed here, at once. */
  async digest(): Promise<Buffer> {
    assert(!this.#ended, "one digest per body");
    this.#ended = true;
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#thread === undefined) return this.#batch.reduce((hash: Hash, piece) => hash.update(piece), createHash("md5")).digest();
    if (this.#batchBytes > 0) this.#send(this.#batchBytes);
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

  /** Copies the first `length` bytes gathered into a pooled buffer and moves it to the worker. */
  #send(length: number): void {
    assert(length > 0 && length <= MD5_BATCH_BYTES && length <= this.#batchBytes, "a batch fits its buffer");
    if (this.#thread === undefined) {
      this.#thread = leastLoadedThread();
      this.#thread.open(this.#id, {
        onHashed: (bytes) => this.#onHashed(bytes),
        onDigest: (digest) => this.#onDigest(digest),
        onFailure: (error) => this.#onFailure(error),
      });
    }
    const bytes = batchBuffer();
    const view = Buffer.from(bytes);
    let at = 0;
    while (at < length) {
      const piece = this.#batch[0] as Buffer;
      const take = Math.min(piece.length, length - at);
      piece.copy(view, at, 0, take);
      at += take;
      if (take === piece.length) this.#batch.shift();
      else this.#batch[0] = piece.subarray(take);
    }
    this.#batchBytes -= length;
    this.#inFlightBytes += length;
    this.#thread.post({ id: this.#id, bytes, length });
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
