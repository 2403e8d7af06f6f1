import { configDefaults, defineConfig } from "vitest/config";

/**
 * `npm test` runs every suite but the node-kill durability suite (test/durability), which
 * is run by `npm run test:durability` (CI scale) and `npm run test:durability:full` (the
 * issue's sizes): two of its scenarios still fail (issue 6 is open), and a red suite must
 * not hide the rest. TESSERA_DURABILITY (any value) selects it.
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
