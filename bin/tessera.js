#!/usr/bin/env node
// The `tessera` command. It runs the JavaScript in dist/ that `node bin/build.js` compiles
// (npm ci and npm install do it) when that build is of exactly the current sources; else the
// TypeScript sources through tsx's loader, so that an edited source never runs stale and
// `npx tessera ...` works even without a build. Both run the same code; dist/ costs each
// process about 40 MiB less memory (bin/build.js). TESSERA_RUN_SOURCES=1 forces the sources.
import { distIsFresh } from "./build.js";

let main;
if (process.env.TESSERA_RUN_SOURCES !== "1" && distIsFresh()) {
  ({ main } = await import("../dist/bin/cli.js"));
} else {
  const { register } = await import("tsx/esm/api");
  register();
  ({ main } = await import("./cli.ts"));
}
process.exitCode = await main(process.argv.slice(2));
