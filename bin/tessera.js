#!/usr/bin/env node
// The `tessera` command. Tessera runs from its TypeScript sources through tsx's loader,
// so `npx tessera ...` works straight after `npm ci` with no build step.
import { register } from "tsx/esm/api";

register();
const { main } = await import("./cli.ts");
process.exitCode = await main(process.argv.slice(2));
