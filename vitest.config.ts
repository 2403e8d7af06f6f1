import { configDefaults, defineConfig } from "vitest/config";

/**
 * `npm test` runs every suite but the node-kill durability suite (test/durability), which
 * is run by `npm run test:durability` (CI scale; .ci/run runs it after npm test) and
 * `npm run test:durability:full` (the sizes and the MTTR measurement): it starts
 * dozens of processes, so it runs on its own. TESSERA_DURABILITY (any value) selects it.
 */
const durability = process.env.TESSERA_DURABILITY !== undefined;

export default defineConfig({
  test: {
    include: durability ? ["test/durability/**/*.test.ts"] : ["test/**/*.test.ts"],
    exclude: durability ? configDefaults.exclude : [...configDefaults.exclude, "test/durability/**"],
    // Two cores on CI: more workers only add contention.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
