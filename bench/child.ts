/**
 * A bench helper process (the s3rver baseline, the loopback HTTP sink): a TypeScript file of
 * bench/ run by node with tsx's loader, ready once it prints the roles' "listening" JSON line.
 * Every child still running when the bench exits is SIGKILLed, so a crashed bench leaves none.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseListeningLine, type Listening } from "../bin/supervised-child.js";

/** tsx loads and the server binds: a second or two; more means it failed. */
export const CHILD_READY_TIMEOUT_MS = 30_000;
/** SIGTERM to SIGKILL when stopping a helper. */
export const CHILD_STOP_DEADLINE_MS = 5_000;
/** Output kept to explain a helper that failed to start. */
const OUTPUT_TAIL_CHARS = 8 * 1024;

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export interface HelperProcess extends Listening {
  readonly pid: number;
  /** SIGTERM, SIGKILL after CHILD_STOP_DEADLINE_MS; resolves once it exited. */
  stop(): Promise<void>;
}

/** Starts `bench/<file>` with `args`; resolves once it is listening. */
export async function startHelper(file: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<HelperProcess> {
  const script = fileURLToPath(new URL(`./${file}`, import.meta.url));
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], { stdio: ["ignore", "pipe", "pipe"], env });
  running.add(child);
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  void exited.then(() => running.delete(child));
  let output = "";
  const listening = new Promise<Listening>((resolve) => {
    let partial = "";
    const onData = (piece: Buffer): void => {
      output = (output + piece.toString("utf8")).slice(-OUTPUT_TAIL_CHARS);
      const lines = (partial + piece.toString("utf8")).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        const found = parseListeningLine(line);
        if (found !== undefined) resolve(found);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
  });
  let timer: NodeJS.Timeout | undefined;
  const failed = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${file} was not listening within ${CHILD_READY_TIMEOUT_MS} ms`)), CHILD_READY_TIMEOUT_MS);
    void exited.then(() => reject(new Error(`${file} exited before listening; its output:\n${output}`)));
  });
  try {
    const where = await Promise.race([listening, failed]);
    const stop = async (): Promise<void> => {
      const kill = setTimeout(() => child.kill("SIGKILL"), CHILD_STOP_DEADLINE_MS);
      child.kill("SIGTERM");
      await exited;
      clearTimeout(kill);
    };
    return { ...where, pid: child.pid as number, stop };
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** Prints the line startHelper waits for (in a helper process). */
export function announceListening(port: number): void {
  console.log(JSON.stringify({ msg: "listening", url: `http://127.0.0.1:${port}`, port }));
}
