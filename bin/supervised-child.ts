/**
 * One `node bin/tessera.js <role> ...` child process, as `tessera local` and the test harness
 * run them: its output split into lines for the caller (a log file, a test's memory), its
 * "listening" log line awaited, and a stop that sends SIGTERM and then SIGKILL after a deadline.
 *
 * Every child still running when this process exits (normally, by an uncaught error, or by
 * process.exit) gets SIGKILL, so a crashed supervisor or test leaves no storage node behind.
 * Nothing can run after a SIGKILL of the supervisor itself, so each child also watches its
 * supervisor's pid (TESSERA_SUPERVISOR_PID, bin/cli.ts) and stops itself within a second of
 * it going away.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { assert } from "../core/assert.js";
import { withRoleMallocEnv } from "../core/role-process.js";
import { SUPERVISOR_PID_VARIABLE } from "./cli.js";

/** A longer output line is cut here: bounds what one child can make us buffer. */
export const LINE_CHARS_MAX = 64 * 1024;
/** Output lines kept per child to explain a failure: a crash's cause is in its last lines. */
export const TAIL_LINES = 20;

/** The launcher, bin/tessera.js, whether this module runs as bin/supervised-child.ts or compiled as dist/bin/supervised-child.js. */
export const TESSERA_BIN = fileURLToPath(new URL(import.meta.url.endsWith(".js") ? "../../bin/tessera.js" : "./tessera.js", import.meta.url));

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface Listening {
  readonly url: string;
  readonly port: number;
}

export interface ChildSpec {
  /** Names the child in messages: "n1", "gateway". */
  readonly name: string;
  /** Arguments after bin/tessera.js. */
  readonly args: readonly string[];
  /** The child's whole environment (plus ROLE_MALLOC_ENV where it does not set those itself). */
  readonly env: NodeJS.ProcessEnv;
  /**
   * Its own process group: a terminal's Ctrl-C then reaches only the supervisor, which stops
   * the children itself, in order and once (a second signal would cut a role's clean stop short).
   */
  readonly detached: boolean;
  /** Every line the child prints, stdout and stderr, without the newline. */
  readonly onLine?: (line: string) => void;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of running) child.kill("SIGKILL");
  });
}

/**
 * `env` without its TESSERA_* variables, then `extra`: a supervisor passes every setting a
 * child needs explicitly, so a stray TESSERA_CONFIG (or a developer's own settings, in tests)
 * must not reach it.
 */
export function withoutTesseraSettings(env: NodeJS.ProcessEnv, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith("TESSERA_"))), ...extra };
}

/**
 * The environment a supervisor starts a role with: `env`, plus glibc's malloc settings where it
 * does not set them (ROLE_MALLOC_ENV: glibc reads them only at start) and this process's pid,
 * which the child watches to stop itself if we die without stopping it (bin/cli.ts).
 */
export function supervisedEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...withRoleMallocEnv(env), [SUPERVISOR_PID_VARIABLE]: String(process.pid) };
}

export function exitText(status: ExitStatus): string {
  return status.signal === null ? `exit code ${status.code}` : `signal ${status.signal}`;
}

export class SupervisedChild {
  readonly name: string;
  readonly pid: number;
  /** Resolves once the process exited and its output is fully read. */
  readonly exited: Promise<ExitStatus>;
  readonly #child: ChildProcess;
  readonly #tail: string[] = [];
  readonly #listening: Promise<Listening>;
  #status: ExitStatus | undefined;

  private constructor(spec: ChildSpec, child: ChildProcess & { pid: number }) {
    this.name = spec.name;
    this.pid = child.pid;
    this.#child = child;
    this.exited = new Promise((resolve) => {
      child.once("close", (code: number | null, signal: NodeJS.Signals | null) => {
        running.delete(child);
        this.#status = { code, signal };
        resolve(this.#status);
      });
    });
    let onListening: (listening: Listening) => void = () => undefined;
    this.#listening = new Promise((resolve) => (onListening = resolve));
    const onLine = (line: string): void => {
      this.#tail.push(line);
      if (this.#tail.length > TAIL_LINES) this.#tail.shift();
      spec.onLine?.(line);
      const listening = parseListeningLine(line);
      if (listening !== undefined) onListening(listening);
    };
    splitLines(child.stdout, onLine);
    splitLines(child.stderr, onLine);
  }

  static start(spec: ChildSpec): SupervisedChild {
    installExitHook();
    const child = spawn(process.execPath, [TESSERA_BIN, ...spec.args], { stdio: ["ignore", "pipe", "pipe"], env: supervisedEnv(spec.env), detached: spec.detached });
    // A failed spawn also emits "close"; the error itself is reported through the exit status.
    child.on("error", () => undefined);
    assert(child.pid !== undefined, `node could be spawned for ${spec.name}`);
    running.add(child);
    return new SupervisedChild(spec, child as ChildProcess & { pid: number });
  }

  get running(): boolean {
    return this.#status === undefined;
  }

  /** The exit status once exited. */
  get status(): ExitStatus | undefined {
    return this.#status;
  }

  /** The last TAIL_LINES lines of output. */
  tail(): readonly string[] {
    return [...this.#tail];
  }

  /** Its address once it logs "listening"; rejects if it exits first or takes over `timeoutMs`. */
  async listening(timeoutMs: number): Promise<Listening> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.name} was not listening within ${timeoutMs} ms`)), timeoutMs);
    });
    const exited = this.exited.then((status): never => {
      throw new Error(`${this.name} exited (${exitText(status)}) before it was listening`);
    });
    try {
      return await Promise.race([this.#listening, exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  kill(signal: NodeJS.Signals): void {
    if (this.running) this.#child.kill(signal);
  }

  /** SIGTERM, then SIGKILL if still running after `deadlineMs`; `forced` says which ended it. */
  async stop(deadlineMs: number): Promise<{ status: ExitStatus; forced: boolean }> {
    let forced = false;
    this.kill("SIGTERM");
    const timer = setTimeout(() => {
      forced = true;
      this.kill("SIGKILL");
    }, deadlineMs);
    try {
      return { status: await this.exited, forced };
    } finally {
      clearTimeout(timer);
    }
  }
}

function splitLines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
  if (stream === null) return;
  let partial = "";
  stream.setEncoding("utf8");
  stream.on("data", (piece: string) => {
    const lines = (partial + piece).split("\n");
    partial = lines.pop() ?? "";
    if (partial.length > LINE_CHARS_MAX) {
      lines.push(partial);
      partial = "";
    }
    for (const line of lines) onLine(line);
  });
  stream.on("end", () => {
    if (partial !== "") onLine(partial);
  });
}

/** The pino line every role logs once serving: {"msg":"listening","url":...,"port":...}. */
export function parseListeningLine(line: string): Listening | undefined {
  if (!line.startsWith("{") || !line.includes('"listening"')) return undefined;
  try {
    const entry: unknown = JSON.parse(line);
    if (typeof entry !== "object" || entry === null) return undefined;
    const { msg, url, port } = entry as Record<string, unknown>;
    return msg === "listening" && typeof url === "string" && typeof port === "number" ? { url, port } : undefined;
  } catch {
    return undefined;
  }
}
