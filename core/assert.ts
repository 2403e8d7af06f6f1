/**
 * Invariant checks. A failed assertion is a bug in Tessera, never an operating error
 * (a full disk, a lost node, a lying client): those are handled with TesseraError.
 */
export class AssertionError extends Error {
  override readonly name = "AssertionError";
}

export function assert(condition: unknown, why: string): asserts condition {
  if (!condition) throw new AssertionError(`invariant broken: ${why}`);
}
