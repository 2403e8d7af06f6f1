import { assert } from "./assert.js";

/** Cuts a byte stream into pieces of exactly `size` bytes, copying only across boundaries. */
export class FixedCutter {
  #pending: Buffer[] = [];
  #pendingBytes = 0;

  /** Bytes waiting for the rest of their piece. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /**
   * Feeds `input`; calls `emit` with every complete piece of `size()` bytes: a view of `input`
   * where one holds the whole piece, else the bytes joined into `allocate(size)` (a fresh
   * buffer by default; a caller that knows when a piece is done with may hand out reused ones).
   */
  feed(input: Buffer, size: () => number, emit: (piece: Buffer) => void, allocate: (bytes: number) => Buffer = Buffer.allocUnsafe): void {
    let rest = input;
    while (rest.length > 0) {
      const want = size() - this.#pendingBytes;
      assert(want > 0, "a cutter always wants at least one byte");
      if (this.#pendingBytes === 0 && rest.length >= want) {
        emit(rest.subarray(0, want));
      } else {
        const take = rest.subarray(0, Math.min(want, rest.length));
        this.#pending.push(take);
        this.#pendingBytes += take.length;
        if (take.length === want) {
          const piece = allocate(this.#pendingBytes);
          assert(piece.length === this.#pendingBytes, "an allocated piece is exactly one piece long");
          let at = 0;
          for (const part of this.#pending) at += part.copy(piece, at);
          this.#pending = [];
          this.#pendingBytes = 0;
          emit(piece);
        }
      }
      rest = rest.subarray(Math.min(want, rest.length));
    }
  }

  /** Takes the bytes still waiting (fewer than one piece), leaving the cutter empty. */
  drain(): Buffer {
    const rest = Buffer.concat(this.#pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    return rest;
  }
}
