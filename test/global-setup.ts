/**
 * Runs once before any test file: compiles dist/ if a source changed since the last build, so
 * that the processes tests spawn (bin/tessera.js) run the compiled code a user runs, not the
 * sources through tsx (the launcher's fallback, correct but heavier: bin/build.js).
 */
import { buildIfStale } from "../bin/build.js";

export default async function setup(): Promise<void> {
  await buildIfStale();
}
