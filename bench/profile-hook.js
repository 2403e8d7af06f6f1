// Preloaded into every Tessera process by bench/profile.ts (NODE_OPTIONS="--import <this>"),
// because Node 20 refuses --cpu-prof in NODE_OPTIONS: samples the process's JS thread with
// the inspector from its start and writes BENCH_CPU_PROFILE_DIR/CPU.<pid>.cpuprofile as it
// exits (the in-process inspector answers synchronously, so this works in an exit handler).
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";

/** Microseconds between samples: --cpu-prof's default. */
const SAMPLING_INTERVAL_US = 1000;

const directory = process.env.BENCH_CPU_PROFILE_DIR;
if (directory !== undefined && directory !== "") {
  const session = new Session();
  session.connect();
  session.post("Profiler.enable");
  session.post("Profiler.setSamplingInterval", { interval: SAMPLING_INTERVAL_US });
  session.post("Profiler.start");
  let written = false;
  const write = () => {
    if (written) return;
    written = true;
    session.post("Profiler.stop", (error, result) => {
      if (error === null && result !== undefined) writeFileSync(`${directory}/CPU.${process.pid}.cpuprofile`, JSON.stringify(result.profile));
    });
  };
  process.on("exit", write);
  // bench/profile.ts asks for the profile with SIGUSR2 before it stops the process: a process
  // that does not exit on its own (killed at the stop deadline) would write none.
  process.on("SIGUSR2", write);
}
