/**
 * The role settings every `tessera` process reads the same way (core/role-process.ts): the V8
 * heap growing percent from TESSERA_HEAP_GROWING_PERCENT, or the role's default, and the glibc
 * malloc settings a supervisor starts each role with. Whether V8 takes the percent is checked
 * on a real node process (test/storage-node/heap-growing.test.ts); that a started role has the
 * malloc settings, in test/gateway/main.test.ts.
 */
import { describe, expect, it } from "vitest";
import { HEAP_GROWING_PERCENT_MAX, heapGrowingPercent, mallocSettings, ROLE_MALLOC_ENV, withRoleMallocEnv } from "../../core/role-process.js";
import { UsageError } from "../../core/settings.js";

describe("heapGrowingPercent", () => {
  it("is the role's default when the variable is unset or empty", () => {
    expect(heapGrowingPercent({}, 300)).toBe(300);
    expect(heapGrowingPercent({ TESSERA_HEAP_GROWING_PERCENT: "" }, 100)).toBe(100);
  });

  it("takes a whole number of percent up to the bound, 0 meaning V8's own rule", () => {
    expect(heapGrowingPercent({ TESSERA_HEAP_GROWING_PERCENT: "0" }, 300)).toBe(0);
    expect(heapGrowingPercent({ TESSERA_HEAP_GROWING_PERCENT: "150" }, 300)).toBe(150);
    expect(heapGrowingPercent({ TESSERA_HEAP_GROWING_PERCENT: String(HEAP_GROWING_PERCENT_MAX) }, 300)).toBe(HEAP_GROWING_PERCENT_MAX);
  });

  it.each(["-1", "1.5", "1e2", " 100", "100%", "abc", String(HEAP_GROWING_PERCENT_MAX + 1), "99999"])("refuses %j with a message naming the variable", (text) => {
    expect(() => heapGrowingPercent({ TESSERA_HEAP_GROWING_PERCENT: text }, 300)).toThrow(UsageError);
    expect(() => heapGrowingPercent({ TESSERA_HEAP_GROWING_PERCENT: text }, 300)).toThrow(`TESSERA_HEAP_GROWING_PERCENT: '${text}' is not a whole number of percent in 0..${HEAP_GROWING_PERCENT_MAX}`);
  });
});

describe("the roles' malloc settings", () => {
  it("are added to a child's environment where it does not set them, and reported as set", () => {
    const env = withRoleMallocEnv({ PATH: "/bin" });
    expect(env).toEqual({ PATH: "/bin", MALLOC_ARENA_MAX: "2", MALLOC_MMAP_THRESHOLD_: "131072" });
    expect(mallocSettings(env)).toBe("MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072");
  });

  it("leave an operator's own value alone", () => {
    const env = withRoleMallocEnv({ MALLOC_ARENA_MAX: "8" });
    expect(env["MALLOC_ARENA_MAX"]).toBe("8");
    expect(env["MALLOC_MMAP_THRESHOLD_"]).toBe(ROLE_MALLOC_ENV["MALLOC_MMAP_THRESHOLD_"]);
    expect(mallocSettings(env)).toBe("MALLOC_ARENA_MAX=8 MALLOC_MMAP_THRESHOLD_=131072");
  });

  it("report glibc's defaults for a role started without them", () => {
    expect(mallocSettings({ PATH: "/bin" })).toBe("glibc defaults");
  });
});
